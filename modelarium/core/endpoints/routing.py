"""Discovery and failover: which endpoints serve a model, and the one a request goes to now."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import sqlalchemy as sa

from modelarium.core.db.models.endpoints import Endpoint
from modelarium.core.endpoints.access import EndpointsBase
from modelarium.core.endpoints.views import EndpointView, PickCandidate, PickResult, _view
from modelarium.core.errors import (
    NotFoundError,
    UsageError,
)
from modelarium.core.logging import get_logger

log = get_logger(__name__)


class Routing(EndpointsBase):
    # -- discovery and failover -----------------------------------------------------------------

    def where(self, user: str, model: str) -> list[EndpointView]:
        """Endpoints the user can see that serve ``model``: healthy and fastest first."""
        if not model.strip():
            raise UsageError("say which model, e.g. llama3 or llama3:8b")
        views = [e for e in self.list(user) if e.serves(model)]
        return sorted(views, key=_rank_key)

    def pick(self, model: str, user: str | None = None, *, record: bool = True) -> PickResult:
        """The healthy endpoint serving ``model`` with the best recent response time.

        Considers the user's own endpoints and shared ones (shared only when ``user`` is None),
        skips disabled, unhealthy and cooling-down endpoints, and records the use on the chosen
        one. Raises NotFoundError, saying why each candidate was skipped, when none qualifies.
        """
        if not model.strip():
            raise UsageError("say which model, e.g. llama3 or llama3:8b")
        role = self._role(user)
        now = self._clock.now()
        with self._db.transaction() as session:
            stmt = sa.select(Endpoint).where(
                sa.or_(Endpoint.owner == user, Endpoint.shared_with == "everyone")
                if user is not None
                else Endpoint.shared_with == "everyone"
            )
            serving = [
                self._shown(e, role) for e in map(_view, session.scalars(stmt)) if e.serves(model)
            ]
            candidates = [_candidate(e, now) for e in sorted(serving, key=_rank_key)]
            eligible = [c for c in candidates if c.eligible]
            if not eligible:
                if not candidates:
                    raise NotFoundError(
                        f"no endpoint you can use serves {model!r}; "
                        "see `endpoint list` or refresh with `endpoint models <name>`"
                    )
                skipped = "; ".join(f"{c.endpoint.name}: {c.reason}" for c in candidates[:5])
                raise NotFoundError(f"no healthy endpoint serves {model!r} now ({skipped})")
            chosen = eligible[0].endpoint
            if record:
                session.execute(
                    sa.update(Endpoint)
                    .where(Endpoint.id == chosen.id)
                    .values(last_used_at=now, use_count=Endpoint.use_count + 1)
                )
        others = eligible[1:]
        reason = f"healthy, serves {model}, " + (
            f"fastest recent response ({_ms(chosen.latency_ms)})"
            if others
            else f"the only eligible endpoint ({_ms(chosen.latency_ms)})"
        )
        if others:
            reason += " vs " + ", ".join(
                f"{c.endpoint.name} {_ms(c.endpoint.latency_ms)}" for c in others[:3]
            )
        return PickResult(model, chosen, tuple(candidates), reason)

    def report_failure(self, name: str, error: str = "request failed") -> None:
        """A caller's request to the endpoint failed: cool it down so picks go elsewhere."""
        now = self._clock.now()
        with self._db.transaction() as session:
            session.execute(
                sa.update(Endpoint)
                .where(Endpoint.name == name.strip().lower())
                .values(
                    cooldown_until=now + timedelta(seconds=self._settings.endpoint_cooldown),
                    last_error=error[:1000],
                )
            )


def _rank_key(view: EndpointView) -> tuple[int, float, float, str]:
    """Healthy first, then the lowest recent response time, then the least recently used."""
    status_rank = {"healthy": 0, "unknown": 1, "down": 2}.get(view.status, 3)
    latency = view.latency_ms if view.latency_ms is not None else math.inf
    last_used = view.last_used_at.timestamp() if view.last_used_at else 0.0
    return (status_rank if view.active else 4, latency, last_used, view.name)


def _candidate(view: EndpointView, now: datetime) -> PickCandidate:
    if not view.active:
        return PickCandidate(view, False, "disabled")
    if view.status != "healthy":
        reason = "not checked yet" if view.status == "unknown" else "down"
        if view.last_error and view.status == "down":
            reason += f" ({view.last_error[:80]})"
        return PickCandidate(view, False, reason)
    if view.in_cooldown(now):
        assert view.cooldown_until is not None
        left = (view.cooldown_until - now).total_seconds()
        return PickCandidate(view, False, f"cooling down for {left:.0f}s after a failure")
    return PickCandidate(view, True, f"healthy, {_ms(view.latency_ms)} recent response time")


def _ms(value: float | None) -> str:
    return "no timing yet" if value is None else f"{value:.0f} ms"
