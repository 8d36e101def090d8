"""Health checks: a status changes only after ``health_fail_threshold`` consecutive failures (or
``health_recover_threshold`` successes), so a flapping endpoint does not spam; an endpoint never
checked takes its first result at once. A failed check puts it in cool-down for
``endpoint_cooldown`` seconds, during which picks skip it."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from modelarium.config.settings import Settings
from modelarium.core.aio import run_sync
from modelarium.core.alerts import Observation
from modelarium.core.db.models.endpoints import Endpoint, EndpointCheck
from modelarium.core.endpoints.access import EndpointsBase
from modelarium.core.endpoints.probe import (
    ProbeResult,
    ProbeTarget,
    client_for,
    probe,
    probe_all,
    public_error,
)
from modelarium.core.endpoints.views import (
    _STATE_COLUMNS,
    _TARGET_COLUMNS,
    CHUNK,
    DOWN_RULE,
    CheckOutcome,
    CycleReport,
    EndpointView,
    _view,
)
from modelarium.core.errors import (
    ConflictError,
)
from modelarium.core.logging import get_logger
from modelarium.core.rbac import Role
from modelarium.core.secrets import SecretError

log = get_logger(__name__)

_LATENCY_WEIGHT = 0.3
"""Weight of the newest response time in the moving average failover ranks by."""


def _advance(
    state: dict[str, Any], result: ProbeResult, now: datetime, settings: Settings
) -> dict[str, Any]:
    """The endpoint's health after one more check: every column a check writes, plus ``id``.

    Always the same keys, so a cycle's updates go out as one executemany.
    """
    new = {k: state[k] for k in _WRITTEN}
    new["id"] = state["id"]
    new["check_count"] = state["check_count"] + 1
    new["last_check_at"] = now
    status = state["status"]
    if result.ok:
        new["consecutive_successes"] = state["consecutive_successes"] + 1
        new["consecutive_failures"] = 0
        new["last_ok_at"] = now
        new["last_error"] = None
        new["response_ms"] = result.response_ms
        previous = state["latency_ms"]
        new["latency_ms"] = (
            result.response_ms
            if previous is None
            else _LATENCY_WEIGHT * result.response_ms + (1 - _LATENCY_WEIGHT) * previous
        )
        if result.models is not None:
            new["models"] = list(result.models)
            new["models_at"] = now
        if result.version:
            new["server_version"] = result.version
        if status == "unknown" or (
            status == "down" and new["consecutive_successes"] >= settings.health_recover_threshold
        ):
            status = "healthy"
    else:
        new["consecutive_failures"] = state["consecutive_failures"] + 1
        new["consecutive_successes"] = 0
        new["last_error"] = (result.error or "check failed")[:1000]
        new["cooldown_until"] = now + timedelta(seconds=settings.endpoint_cooldown)
        if status == "unknown" or (
            status == "healthy" and new["consecutive_failures"] >= settings.health_fail_threshold
        ):
            status = "down"
    if status != state["status"]:
        new["status_changed_at"] = now
    new["status"] = status
    return new


_WRITTEN = (
    "status",
    "consecutive_failures",
    "consecutive_successes",
    "last_ok_at",
    "last_error",
    "status_changed_at",
    "response_ms",
    "latency_ms",
    "cooldown_until",
    "server_version",
    "models",
    "models_at",
)


def _upsert_history(session: Session, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(EndpointCheck)
    stmt = insert.on_conflict_do_update(
        index_elements=["endpoint_id", "slot"],
        set_={
            name: insert.excluded[name]
            for name in ("seq", "checked_at", "ok", "response_ms", "error", "manual")
        },
    )
    session.execute(stmt, rows)


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Health(EndpointsBase):
    # -- health checks --------------------------------------------------------------------------

    def _target(self, row: Any) -> ProbeTarget | ProbeResult:
        """What to check, or an immediate failure when the stored key cannot be decrypted."""
        api_key = None
        if row.api_key_token:
            try:
                api_key = self._keyring.decrypt(row.api_key_token)
            except SecretError:
                return ProbeResult(
                    row.id,
                    False,
                    0.0,
                    "the stored API key cannot be decrypted with the configured keys; set it "
                    "again with `endpoint edit NAME --api-key -`",
                    revision=row.revision,
                )
        return ProbeTarget(
            row.id, row.name, row.type, row.base_url, row.health_path, api_key, row.revision
        )

    def check(self, user: str, name: str) -> CheckOutcome:
        """Check one endpoint now; it counts toward its status like a scheduled check."""
        role = self._role(user)
        with self._db.transaction() as session:
            target = self._target(self._load(session, user, name, role >= Role.ADMIN))
        if isinstance(target, ProbeResult):
            result = target
        else:
            result = run_sync(self._probe_one(target))
        applied = self._record([result], manual=True)
        if not applied:
            raise ConflictError(f"endpoint {name} was changed or removed during the check; retry")
        with self._db.transaction() as session:
            row = session.get(Endpoint, result.id)
            if row is None:
                raise ConflictError(f"endpoint {name} was removed during the check")
            view = _view(row)
        outcome = CheckOutcome(view, result.ok, result.response_ms, result.error, applied[0][1])
        if outcome.changed:
            self._alerts.evaluate(DOWN_RULE, [self._observation(view)], complete=False)
        if role < Role.OPERATOR:
            outcome = dataclasses.replace(
                outcome, endpoint=self._shown(view, role), error=public_error(result.error)
            )
        return outcome

    async def _probe_one(self, target: ProbeTarget) -> ProbeResult:
        timeout = self._settings.health_timeout
        async with client_for(timeout, policy=self.address_policy) as client:
            return await probe(client, target, timeout)

    @staticmethod
    def _observation(view: EndpointView) -> Observation:
        return Observation(
            DOWN_RULE, 1.0 if view.status == "down" else 0.0, {"endpoint": view.name}
        )

    def check_all(self) -> CycleReport:
        """One cycle over every active endpoint (the daemon's ``health_checks`` task)."""
        started = time.monotonic()
        report = CycleReport()
        with self._db.transaction() as session:
            rows = session.execute(
                sa.select(*_TARGET_COLUMNS).where(Endpoint.active.is_(True)).order_by(Endpoint.id)
            ).all()
        # Suspects first: their timeouts then run beside the quick checks, not after them.
        rows = sorted(rows, key=lambda r: r.status != "down" and r.consecutive_failures == 0)
        prepared = [self._target(r) for r in rows]
        ready = [p for p in prepared if isinstance(p, ProbeResult)]
        targets = [p for p in prepared if isinstance(p, ProbeTarget)]
        probe_started = time.monotonic()
        results = run_sync(
            probe_all(
                targets,
                timeout=self._settings.health_timeout,
                concurrency=self._settings.health_concurrency,
                policy=self.address_policy,
            )
        )
        report.probe_seconds = time.monotonic() - probe_started
        applied = self._record(ready + results, manual=False)
        by_id = {r.id: r for r in ready + results}
        report.checked = len(applied)
        report.ok = sum(1 for endpoint_id, _, _, _ in applied if by_id[endpoint_id].ok)
        report.failed = report.checked - report.ok
        report.changes = [(name, old, new) for _, old, new, name in applied if old != new]
        with self._db.transaction() as session:
            current = session.execute(
                sa.select(Endpoint.name, Endpoint.status).where(Endpoint.active.is_(True))
            ).all()
            session.execute(
                sa.delete(EndpointCheck).where(EndpointCheck.slot >= self._settings.health_history)
            )
        for name, status in current:
            report.statuses[status] = report.statuses.get(status, 0) + 1
            if status == "down":
                # Only breached instances: the rule is evaluated as complete, so every endpoint
                # not observed (healthy, disabled, removed) resolves any alert it had.
                report.observations.append(Observation(DOWN_RULE, 1.0, {"endpoint": name}))
        report.seconds = time.monotonic() - started
        for name, old, new in report.changes:
            log.info("endpoint.status_changed", endpoint=name, old=old, new=new)
        return report

    def _record(
        self, results: Sequence[ProbeResult], *, manual: bool
    ) -> list[tuple[int, str, str, str]]:
        """Apply results in one transaction: (id, old status, new status, name) of each.

        Results for endpoints edited or removed since their check started are dropped. One
        bulk UPDATE by primary key and one bulk upsert of history, whatever the fleet's size.
        """
        if not results:
            return []
        now = self._clock.now()
        keep = self._settings.health_history
        applied: list[tuple[int, str, str, str]] = []
        updates: list[dict[str, Any]] = []
        history: list[dict[str, Any]] = []
        with self._db.transaction() as session:
            ids = sorted({r.id for r in results})
            rows: dict[int, Any] = {}
            for start in range(0, len(ids), CHUNK):
                chunk = ids[start : start + CHUNK]
                rows.update(
                    (r.id, r)
                    for r in session.execute(
                        sa.select(*_STATE_COLUMNS)
                        .where(Endpoint.id.in_(chunk))
                        .order_by(Endpoint.id)  # one lock order for every writer: no deadlocks
                        .with_for_update()
                    )
                )
            for result in results:
                row = rows.get(result.id)
                if row is None or row.revision != result.revision:
                    continue
                if not manual and not row.active:
                    continue
                state = _advance(row._asdict(), result, now, self._settings)
                updates.append(state)
                applied.append((row.id, row.status, state["status"], row.name))
                history.append(
                    {
                        "endpoint_id": row.id,
                        "slot": (state["check_count"] - 1) % keep,
                        "seq": state["check_count"],
                        "checked_at": now,
                        "ok": result.ok,
                        "response_ms": round(result.response_ms, 3),
                        "error": result.error,
                        "manual": manual,
                    }
                )
            if updates:
                session.execute(sa.update(Endpoint), updates)
            _upsert_history(session, history)
        return applied
