"""What the endpoint registry shows and returns: views, check records, pick results."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from modelarium.core.alerts import Observation
from modelarium.core.clients.addresses import AddressPolicy
from modelarium.core.db.models.endpoints import Endpoint
from modelarium.core.logging import get_logger

log = get_logger(__name__)


DOWN_RULE = "endpoint_down"
CHUNK = 500
"""Rows per statement when a cycle writes many endpoints at once."""


@dataclass(frozen=True)
class ResolvedEndpoint:
    """Everything a client needs to call an endpoint, key decrypted (never log or show it)."""

    name: str
    base_url: str
    type: str
    api_key: str | None = field(default=None, repr=False)
    revision: int = 0
    """Bumped by every edit: an approval bound to it refuses to run against an edited endpoint."""
    policy: AddressPolicy | None = field(default=None, repr=False, compare=False)
    """The address guard its client must connect through."""


@dataclass(frozen=True)
class EndpointView:
    """An endpoint as shown to people: whether a key is set and its last four, never the key."""

    id: int
    name: str
    base_url: str
    type: str
    health_path: str | None
    owner: str
    shared_with: str
    active: bool
    api_key_set: bool
    api_key_last4: str | None
    status: str
    consecutive_failures: int
    consecutive_successes: int
    last_check_at: datetime | None
    last_ok_at: datetime | None
    last_error: str | None
    status_changed_at: datetime | None
    response_ms: float | None
    latency_ms: float | None
    cooldown_until: datetime | None
    server_version: str | None
    models: tuple[str, ...]
    models_at: datetime | None
    last_used_at: datetime | None
    use_count: int
    created_by: str
    created_at: datetime
    updated_at: datetime

    def in_cooldown(self, now: datetime) -> bool:
        return self.cooldown_until is not None and self.cooldown_until > now

    def serves(self, model: str) -> bool:
        wanted = model_key(model)
        return any(model_key(m) == wanted for m in self.models)

    @property
    def key_hint(self) -> str:
        if not self.api_key_set:
            return "none"
        return f"set (…{self.api_key_last4})" if self.api_key_last4 else "set"

    def data(self) -> dict[str, Any]:
        """JSON-friendly form for ``--json`` replies (still without the key)."""

        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "name": self.name,
            "base_url": self.base_url,
            "type": self.type,
            "health_path": self.health_path,
            "owner": self.owner,
            "shared_with": self.shared_with,
            "active": self.active,
            "api_key": {"set": self.api_key_set, "last4": self.api_key_last4},
            "status": self.status,
            "consecutive_failures": self.consecutive_failures,
            "consecutive_successes": self.consecutive_successes,
            "last_check_at": iso(self.last_check_at),
            "last_ok_at": iso(self.last_ok_at),
            "last_error": self.last_error,
            "status_changed_at": iso(self.status_changed_at),
            "response_ms": self.response_ms,
            "latency_ms": self.latency_ms,
            "cooldown_until": iso(self.cooldown_until),
            "server_version": self.server_version,
            "models": list(self.models),
            "models_at": iso(self.models_at),
            "last_used_at": iso(self.last_used_at),
            "use_count": self.use_count,
        }


@dataclass(frozen=True)
class CheckRecord:
    seq: int
    checked_at: datetime
    ok: bool
    response_ms: float | None
    error: str | None
    manual: bool


@dataclass(frozen=True)
class CheckOutcome:
    """One check applied to an endpoint: its result and what it did to the status."""

    endpoint: EndpointView
    ok: bool
    response_ms: float
    error: str | None
    previous_status: str

    @property
    def changed(self) -> bool:
        return self.previous_status != self.endpoint.status


@dataclass
class CycleReport:
    """One round of checks over every active endpoint."""

    checked: int = 0
    ok: int = 0
    failed: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    changes: list[tuple[str, str, str]] = field(default_factory=list)
    observations: list[Observation] = field(default_factory=list)
    probe_seconds: float = 0.0
    seconds: float = 0.0

    @property
    def summary(self) -> str:
        counts = ", ".join(f"{n} {s}" for s, n in sorted(self.statuses.items())) or "none"
        changed = (
            "; " + ", ".join(f"{name} {old}->{new}" for name, old, new in self.changes[:10])
            if self.changes
            else ""
        )
        more = f" (+{len(self.changes) - 10} more)" if len(self.changes) > 10 else ""
        return (
            f"checked {self.checked} endpoint(s) in {self.seconds:.1f}s "
            f"({self.failed} failed check(s)); {counts}{changed}{more}"
        )


@dataclass(frozen=True)
class PickCandidate:
    endpoint: EndpointView
    eligible: bool
    reason: str


@dataclass(frozen=True)
class PickResult:
    model: str
    chosen: EndpointView
    candidates: tuple[PickCandidate, ...]
    reason: str


def model_key(name: str) -> str:
    """How model names compare: case-insensitive, ``llama3`` == ``llama3:latest``."""
    key = name.strip().lower()
    return key.removesuffix(":latest")


def _view(row: Endpoint) -> EndpointView:
    return EndpointView(
        id=row.id,
        name=row.name,
        base_url=row.base_url,
        type=row.type,
        health_path=row.health_path,
        owner=row.owner,
        shared_with=row.shared_with,
        active=row.active,
        api_key_set=row.api_key_token is not None,
        api_key_last4=row.api_key_last4,
        status=row.status,
        consecutive_failures=row.consecutive_failures,
        consecutive_successes=row.consecutive_successes,
        last_check_at=row.last_check_at,
        last_ok_at=row.last_ok_at,
        last_error=row.last_error,
        status_changed_at=row.status_changed_at,
        response_ms=row.response_ms,
        latency_ms=row.latency_ms,
        cooldown_until=row.cooldown_until,
        server_version=row.server_version,
        models=tuple(row.models or ()),
        models_at=row.models_at,
        last_used_at=row.last_used_at,
        use_count=row.use_count,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


_TARGET_COLUMNS = (
    Endpoint.id,
    Endpoint.name,
    Endpoint.type,
    Endpoint.base_url,
    Endpoint.health_path,
    Endpoint.api_key_token,
    Endpoint.revision,
    Endpoint.status,
    Endpoint.consecutive_failures,
)
"""What a check needs: the cycle reads these, not whole rows."""

_STATE_COLUMNS = (
    Endpoint.id,
    Endpoint.name,
    Endpoint.revision,
    Endpoint.active,
    Endpoint.status,
    Endpoint.consecutive_failures,
    Endpoint.consecutive_successes,
    Endpoint.check_count,
    Endpoint.last_ok_at,
    Endpoint.last_error,
    Endpoint.status_changed_at,
    Endpoint.response_ms,
    Endpoint.latency_ms,
    Endpoint.cooldown_until,
    Endpoint.server_version,
    Endpoint.models,
    Endpoint.models_at,
)
"""What a check result changes (and what it depends on)."""
