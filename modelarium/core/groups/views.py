"""What the groups capability shows and returns: groups, members, rules."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from modelarium.config.settings import Settings
from modelarium.core.errors import UsageError

STRATEGIES = ("split", "canary")
ROLES = ("champion", "challenger", "retired")
NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
MEMBER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}/[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,190}")
"""``<endpoint>/<model>``: an endpoint name, a slash, the model as the endpoint names it."""


def check_name(name: str) -> str:
    text = (name or "").strip().lower()
    if not NAME.fullmatch(text):
        raise UsageError(
            f"a group name is 1-63 lowercase letters, digits and dashes, not {name[:70]!r}"
        )
    return text


def check_member(member: str) -> str:
    text = (member or "").strip()
    if not MEMBER.fullmatch(text) or "//" in text:
        raise UsageError(
            f"a member is <endpoint>/<model> (e.g. gpu-1/llama3:8b), not {member[:80]!r}"
        )
    return text


def split_member(member: str) -> tuple[str, str]:
    endpoint, _, model = member.partition("/")
    return endpoint, model


def member_name(n: int, repo: str, commit: str) -> str:
    """A canary member: ``rev2-Llama-3.1-8B-Instruct@0123abc``, generated, never typed (unique
    per group by its number)."""
    return f"rev{n}-{repo.rsplit('/', 1)[-1]}@{commit[:7]}"[:200]


def check_traffic(value: int | str) -> int:
    try:
        number = int(str(value).strip().rstrip("%"))
    except ValueError:
        raise UsageError(
            f"traffic is a percentage from 0 to 100, not {str(value)[:20]!r}"
        ) from None
    if not 0 <= number <= 100:
        raise UsageError(f"traffic is a percentage from 0 to 100, not {number}")
    return number


@dataclass(frozen=True)
class Rules:
    """The promotion rules a group is judged by (settings' defaults, the group's overrides)."""

    min_requests: int
    max_error_increase: float
    max_p95_ratio: float
    significance: float
    retention: float

    KEYS = ("min_requests", "max_error_increase", "max_p95_ratio", "significance", "retention")

    @classmethod
    def of(cls, settings: Settings, overrides: dict[str, Any] | None = None) -> Rules:
        values: dict[str, Any] = {
            "min_requests": settings.group_min_requests,
            "max_error_increase": settings.group_max_error_increase,
            "max_p95_ratio": settings.group_max_p95_ratio,
            "significance": settings.group_significance,
            "retention": settings.group_retention,
        }
        for key, value in (overrides or {}).items():
            if key in values and value is not None:
                values[key] = type(values[key])(value)
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def check_overrides(overrides: dict[str, Any]) -> dict[str, Any]:
    """Per-group rule overrides, validated: one clear line for a bad value."""
    clean: dict[str, Any] = {}
    for key, value in overrides.items():
        if value is None:
            continue
        if key == "min_requests":
            if int(value) < 1:
                raise UsageError("--min-requests must be at least 1")
            clean[key] = int(value)
        elif key == "max_error_increase":
            if not 0 <= float(value) <= 1:
                raise UsageError("--max-error-increase is a fraction from 0 to 1 (0.01 = 1 point)")
            clean[key] = float(value)
        elif key == "max_p95_ratio":
            if float(value) <= 0:
                raise UsageError("--max-p95-ratio must be above 0 (1.2 = at most 20% slower)")
            clean[key] = float(value)
        elif key == "significance":
            if not 0 < float(value) < 0.5:
                raise UsageError("--significance is a level between 0 and 0.5 (e.g. 0.05)")
            clean[key] = float(value)
        elif key == "retention":
            if float(value) <= 0:
                raise UsageError("--retention must be a positive duration (e.g. 30d)")
            clean[key] = float(value)
    return clean


@dataclass(frozen=True)
class MemberView:
    name: str
    role: str
    traffic: int

    @property
    def endpoint(self) -> str:
        return split_member(self.name)[0]

    @property
    def model(self) -> str:
        return split_member(self.name)[1]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "role": self.role, "traffic": self.traffic}


@dataclass(frozen=True)
class GroupView:
    id: int
    name: str
    strategy: str
    status: str
    rules: Rules
    overrides: dict[str, Any]
    table_name: str
    deployment: str | None
    revision: int
    created_by: str
    created_at: datetime
    members: tuple[MemberView, ...]

    @property
    def champion(self) -> MemberView | None:
        return next((m for m in self.members if m.role == "champion"), None)

    @property
    def challengers(self) -> list[MemberView]:
        return [m for m in self.members if m.role == "challenger"]

    @property
    def active(self) -> list[MemberView]:
        """Champion and challengers (not retired members)."""
        return [m for m in self.members if m.role != "retired"]

    def member(self, name: str) -> MemberView | None:
        return next((m for m in self.members if m.name == name), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "strategy": self.strategy,
            "status": self.status,
            "rules": self.rules.to_json(),
            "overrides": self.overrides,
            "table": self.table_name,
            "deployment": self.deployment,
            "revision": self.revision,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "members": [m.to_json() for m in self.members],
        }
