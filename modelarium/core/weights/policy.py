"""Which weights a purge removes: pure decisions over facts gathered elsewhere.

Two policies per location, as kubelet garbage-collects images:

- ``age``: weights unused for longer than the location's ``max_age`` go;
- ``lru``: when usage is above the high watermark, least recently used weights go until usage
  would be at or below the low watermark.

Both skip pinned and deployed weights and anything used within ``min_age``. Failed installs
(partial data nobody will use) go first under either policy once older than ``min_age``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from modelarium.config.settings import StorageLocation
from modelarium.config.units import format_duration, format_size
from modelarium.core.weights.storage import Usage

Policy = Literal["lru", "age", "all"]
POLICIES: tuple[str, ...] = ("lru", "age")


@dataclass(frozen=True)
class Candidate:
    id: int
    repo_id: str
    revision: str
    commit: str
    status: str
    size: int
    """Bytes removing it would free (blobs no other record of the location shares)."""
    last_access: datetime
    pinned: bool = False
    deployed_by: tuple[str, ...] = ()
    """Deployments serving these weights (``namespace/name``): a purge keeps them."""

    @property
    def deployed(self) -> bool:
        return bool(self.deployed_by)


@dataclass(frozen=True)
class PurgeItem:
    id: int
    repo_id: str
    revision: str
    commit: str
    size: int
    last_access: datetime
    reason: str


@dataclass(frozen=True)
class PurgePlan:
    location: str
    policy: str
    usage: Usage
    items: tuple[PurgeItem, ...]
    target: int = 0
    """Bytes the watermark policy wanted freed (0 when usage is under the high watermark)."""
    kept: dict[str, int] = field(default_factory=dict)
    """Why eligible-looking weights stayed: pinned, deployed, too recent -> count."""

    @property
    def bytes(self) -> int:
        return sum(item.size for item in self.items)

    @property
    def shortfall(self) -> int:
        return max(0, self.target - self.bytes)

    @property
    def usage_after(self) -> float:
        total = self.usage.total
        return (self.usage.used - self.bytes) / total if total else 0.0


def plan_purge(
    location: StorageLocation,
    usage: Usage,
    candidates: list[Candidate],
    now: datetime,
    policy: Policy = "all",
) -> PurgePlan:
    ordered = sorted(candidates, key=lambda c: (c.last_access, c.id))
    kept: dict[str, int] = {}
    items: list[PurgeItem] = []
    chosen: set[int] = set()

    def take(c: Candidate, reason: str) -> None:
        chosen.add(c.id)
        items.append(
            PurgeItem(c.id, c.repo_id, c.revision, c.commit, c.size, c.last_access, reason)
        )

    def idle(c: Candidate) -> float:
        return (now - c.last_access).total_seconds()

    eligible: list[Candidate] = []
    for c in ordered:
        if c.pinned:
            kept["pinned"] = kept.get("pinned", 0) + 1
        elif c.deployed:
            why = f"deployed by {', '.join(c.deployed_by)}"
            kept[why] = kept.get(why, 0) + 1
        elif idle(c) < location.min_age:
            kept["used recently"] = kept.get("used recently", 0) + 1
        else:
            eligible.append(c)

    for c in eligible:
        if c.status == "failed":
            take(c, "failed install (partial data)")
    if policy in ("age", "all") and location.max_age is not None:
        for c in eligible:
            if c.id not in chosen and idle(c) >= location.max_age:
                take(
                    c,
                    f"unused for {format_duration(idle(c))} "
                    f"(max age {format_duration(location.max_age)})",
                )
    target = 0
    if policy in ("lru", "all") and usage.total and usage.fraction > location.high_watermark:
        target = usage.used - int(location.low_watermark * usage.total)
        freed = sum(item.size for item in items)
        for c in eligible:
            if freed >= target:
                break
            if c.id in chosen:
                continue
            take(
                c,
                f"least recently used; {location.name} is above its "
                f"{location.high_watermark:.0%} high watermark",
            )
            freed += c.size
    return PurgePlan(location.name, policy, usage, tuple(items), target, kept)


def describe_plan(plan: PurgePlan) -> str:
    """One line: what goes and why (approval summaries, daemon reports)."""
    if not plan.items:
        return f"nothing to purge in {plan.location}"
    return (
        f"purge {len(plan.items)} model revision(s) from {plan.location}, freeing "
        f"{format_size(plan.bytes)} ({plan.usage.fraction:.0%} -> {plan.usage_after:.0%} used)"
    )
