"""The endpoint registry: who owns which endpoint, how healthy it is, what it serves, and picks.

Visibility: an endpoint is private to its owner or shared with everyone; admins see all. Owners
and admins may change it. Sharing with everyone takes the operator role, because shared endpoints
take part in everyone's failover picks.

Health: each check counts toward a status change only after ``health_fail_threshold``
consecutive failures (or ``health_recover_threshold`` successes), so a flapping endpoint does not
spam; an endpoint never checked yet takes its first result at once. A failed check also puts the
endpoint in cool-down for ``endpoint_cooldown`` seconds, during which picks skip it.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from modelarium.config.settings import Settings
from modelarium.core.alerts import AlertService, Observation
from modelarium.core.audit import AuditService
from modelarium.core.clock import Clock
from modelarium.core.db.models.endpoints import Endpoint, EndpointCheck
from modelarium.core.db.uow import Database
from modelarium.core.endpoints import validation as v
from modelarium.core.endpoints.probe import (
    ProbeResult,
    ProbeTarget,
    client_for,
    probe,
    probe_all,
    run_sync,
)
from modelarium.core.errors import (
    ConflictError,
    ModelariumError,
    NotFoundError,
    PermissionDeniedError,
    UsageError,
    ValidationError,
)
from modelarium.core.logging import get_logger
from modelarium.core.rbac import RbacService, Role
from modelarium.core.secrets import Keyring, SecretError

log = get_logger(__name__)

DOWN_RULE = "endpoint_down"
EXPORT_FORMAT = "modelarium.endpoints"
EXPORT_VERSION = 1
MAX_IMPORT = 5000
_LATENCY_WEIGHT = 0.3
"""Weight of the newest response time in the moving average failover ranks by."""
_CHUNK = 500


@dataclass(frozen=True)
class ResolvedEndpoint:
    """Everything a client needs to call an endpoint, key decrypted (never log or show it)."""

    name: str
    base_url: str
    type: str
    api_key: str | None = field(default=None, repr=False)


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


class EndpointService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        keyring: Keyring,
        rbac: RbacService,
        alerts: AlertService,
        audit: AuditService,
        settings: Settings,
    ) -> None:
        self._db = db
        self._clock = clock
        self._keyring = keyring
        self._rbac = rbac
        self._alerts = alerts
        self._audit = audit
        self._settings = settings

    # -- who may see and change what ------------------------------------------------------------

    def _is_admin(self, user: str | None) -> bool:
        # role_of opens its own transaction: call it before opening ours.
        return user is not None and self._rbac.role_of(user) >= Role.ADMIN

    @staticmethod
    def _visible(user: str | None, admin: bool) -> sa.ColumnElement[bool]:
        if admin:
            return sa.true()
        shared = Endpoint.shared_with == "everyone"
        return shared if user is None else sa.or_(Endpoint.owner == user, shared)

    def _require_share(self, user: str) -> None:
        if self._rbac.role_of(user) < Role.OPERATOR:
            raise PermissionDeniedError(
                "sharing an endpoint with everyone needs the operator role (shared endpoints "
                "serve everyone's picks); keep it private with --shared-with owner"
            )

    def _load(
        self, session: Session, user: str, name: str, admin: bool, *, edit: bool = False
    ) -> Endpoint:
        key = (name or "").strip().lower()
        stmt = sa.select(Endpoint).where(Endpoint.name == key)
        if edit:
            stmt = stmt.with_for_update()
        row = session.scalar(stmt)
        if row is None or not (admin or row.owner == user or row.shared_with == "everyone"):
            raise NotFoundError(
                f"no endpoint named {name[:64]!r} that you can see; list them with `endpoint list`"
            )
        if edit and not (admin or row.owner == user):
            raise PermissionDeniedError(
                f"only <@{row.owner}> (its owner) or an admin may change endpoint {row.name}"
            )
        return row

    # -- registry -------------------------------------------------------------------------------

    def add(
        self,
        user: str,
        name: str,
        base_url: str,
        type: str = "ollama",
        *,
        health_path: str | None = None,
        shared_with: str = "owner",
        api_key: str | None = None,
        active: bool = True,
    ) -> EndpointView:
        name = v.check_name(name)
        kind = v.check_type(type)
        url = v.check_url(base_url)
        path = v.check_health_path(health_path, kind)
        shared = v.check_shared_with(shared_with)
        key = v.check_api_key(api_key) if api_key is not None else None
        if shared == "everyone":
            self._require_share(user)
        now = self._clock.now()
        try:
            with self._db.transaction() as session:
                if session.scalar(sa.select(Endpoint.id).where(Endpoint.name == name)):
                    raise ConflictError(f"an endpoint named {name} already exists")
                row = Endpoint(
                    name=name,
                    base_url=url,
                    type=kind,
                    health_path=path,
                    owner=user,
                    shared_with=shared,
                    active=active,
                    api_key_token=self._keyring.encrypt(key) if key else None,
                    api_key_last4=v.last4(key) if key else None,
                    status="unknown",
                    models=[],
                    created_by=user,
                    created_at=now,
                    updated_at=now,
                )
                session.add(row)
                session.flush()
                self._audit.record(
                    user,
                    "endpoint.add",
                    target=name,
                    params={
                        "base_url": url,
                        "type": kind,
                        "shared_with": shared,
                        "key_set": key is not None,
                    },
                    session=session,
                )
                return _view(row)
        except IntegrityError:
            raise ConflictError(f"an endpoint named {name} already exists") from None

    def edit(
        self,
        user: str,
        name: str,
        *,
        new_name: str | None = None,
        base_url: str | None = None,
        type: str | None = None,
        health_path: str | None = None,
        shared_with: str | None = None,
        active: bool | None = None,
        api_key: str | None = None,
        clear_api_key: bool = False,
    ) -> tuple[EndpointView, list[str]]:
        """Change what was given; returns the endpoint and a list of what changed.

        A new URL, type, health path or key makes earlier checks meaningless, so the endpoint
        goes back to ``unknown`` (its next check decides); so does re-activating it.
        """
        if api_key is not None and clear_api_key:
            raise UsageError("give either a new API key or --clear-api-key, not both")
        admin = self._is_admin(user)
        if shared_with is not None and v.check_shared_with(shared_with) == "everyone":
            self._require_share(user)
        key = v.check_api_key(api_key) if api_key is not None else None
        now = self._clock.now()
        changed: list[str] = []
        deactivated = False
        try:
            with self._db.transaction() as session:
                row = self._load(session, user, name, admin, edit=True)
                old_name = row.name
                reset = False
                if new_name is not None and v.check_name(new_name) != row.name:
                    target = v.check_name(new_name)
                    if session.scalar(sa.select(Endpoint.id).where(Endpoint.name == target)):
                        raise ConflictError(f"an endpoint named {target} already exists")
                    row.name = target
                    changed.append(f"name {old_name} -> {target}")
                if type is not None and v.check_type(type) != row.type:
                    row.type = v.check_type(type)
                    changed.append(f"type {row.type}")
                    reset = True
                if type is not None or health_path is not None:
                    requested = health_path
                    if requested is None and row.type == "custom":
                        requested = row.health_path  # keep it (None gets the default)
                    path = v.check_health_path(requested, row.type)
                    if path != row.health_path:
                        row.health_path = path
                        if path:
                            changed.append(f"health path {path}")
                        reset = True
                if base_url is not None and v.check_url(base_url) != row.base_url:
                    row.base_url = v.check_url(base_url)
                    changed.append(f"url {row.base_url}")
                    reset = True
                if shared_with is not None and v.check_shared_with(shared_with) != row.shared_with:
                    row.shared_with = v.check_shared_with(shared_with)
                    changed.append(f"shared with {row.shared_with}")
                if key is not None:
                    row.api_key_token = self._keyring.encrypt(key)
                    row.api_key_last4 = v.last4(key)
                    changed.append("API key set")
                    reset = True
                if clear_api_key and row.api_key_token is not None:
                    row.api_key_token = None
                    row.api_key_last4 = None
                    changed.append("API key removed")
                    reset = True
                if active is not None and active != row.active:
                    row.active = active
                    changed.append("enabled" if active else "disabled")
                    deactivated = not active
                    reset = reset or active
                if not changed:
                    raise UsageError(
                        "nothing to change: give a new --url, --type, --health-path, "
                        "--shared-with, --active, --rename, --api-key - or --clear-api-key"
                    )
                if reset:
                    self._reset_health(
                        row, clear_models=any(c.startswith(("url", "type")) for c in changed)
                    )
                row.revision += 1
                row.updated_at = now
                self._audit.record(
                    user,
                    "endpoint.edit",
                    target=old_name,
                    params={"changes": changed},
                    session=session,
                )
                view = _view(row)
        except IntegrityError:
            raise ConflictError(f"an endpoint named {new_name} already exists") from None
        if deactivated or view.name != old_name:
            self._clear_alert(old_name)
        return view, changed

    @staticmethod
    def _reset_health(row: Endpoint, *, clear_models: bool) -> None:
        row.status = "unknown"
        row.consecutive_failures = 0
        row.consecutive_successes = 0
        row.cooldown_until = None
        row.last_error = None
        row.latency_ms = None
        row.response_ms = None
        if clear_models:
            row.models = []
            row.models_at = None
            row.server_version = None

    def remove(self, user: str, name: str) -> EndpointView:
        admin = self._is_admin(user)
        with self._db.transaction() as session:
            row = self._load(session, user, name, admin, edit=True)
            view = _view(row)
            session.execute(sa.delete(EndpointCheck).where(EndpointCheck.endpoint_id == row.id))
            session.delete(row)
            self._audit.record(user, "endpoint.remove", target=view.name, session=session)
        self._clear_alert(view.name)
        return view

    def _clear_alert(self, name: str) -> None:
        """An endpoint that was removed, renamed or disabled no longer has a reason to alert."""
        try:
            self._alerts.evaluate(
                DOWN_RULE, [Observation(DOWN_RULE, 0.0, {"endpoint": name})], complete=False
            )
        except Exception:
            log.exception("endpoint.alert_clear_failed", endpoint=name)

    def list(self, user: str, *, active_only: bool = False) -> list[EndpointView]:
        admin = self._is_admin(user)
        with self._db.transaction() as session:
            stmt = sa.select(Endpoint).where(self._visible(user, admin)).order_by(Endpoint.name)
            if active_only:
                stmt = stmt.where(Endpoint.active.is_(True))
            return [_view(r) for r in session.scalars(stmt)]

    def editable(self, user: str, name: str) -> EndpointView:
        """The endpoint if ``user`` may change it (owner or admin); raises like :meth:`edit`."""
        admin = self._is_admin(user)
        with self._db.transaction() as session:
            return _view(self._load(session, user, name, admin, edit=True))

    def get(self, user: str, name: str) -> EndpointView:
        admin = self._is_admin(user)
        with self._db.transaction() as session:
            return _view(self._load(session, user, name, admin))

    def history(self, user: str, name: str, limit: int = 10) -> list[CheckRecord]:
        """The newest checks first (at most ``health_history`` are kept)."""
        admin = self._is_admin(user)
        limit = max(0, min(limit, self._settings.health_history))
        with self._db.transaction() as session:
            row = self._load(session, user, name, admin)
            checks = session.scalars(
                sa.select(EndpointCheck)
                .where(EndpointCheck.endpoint_id == row.id)
                .order_by(EndpointCheck.seq.desc())
                .limit(limit)
            )
            return [
                CheckRecord(c.seq, c.checked_at, c.ok, c.response_ms, c.error, c.manual)
                for c in checks
            ]

    def resolve(self, name: str, user: str) -> ResolvedEndpoint:
        """Connection details for a caller about to use the endpoint (decrypts the key).

        Raises NotFoundError when there is no such endpoint, PermissionDeniedError when it is
        private to someone else (admins may use any). Disabled or down endpoints still resolve:
        the caller named it.
        """
        admin = self._is_admin(user)
        key = (name or "").strip().lower()
        with self._db.transaction() as session:
            row = session.scalar(sa.select(Endpoint).where(Endpoint.name == key))
            if row is None:
                raise NotFoundError(f"no endpoint named {name[:64]!r}")
            if not (admin or row.owner == user or row.shared_with == "everyone"):
                raise PermissionDeniedError(f"endpoint {row.name} is private to its owner")
            token = row.api_key_token
            resolved = (row.name, row.base_url, row.type)
        api_key = self._keyring.decrypt(token) if token else None
        return ResolvedEndpoint(*resolved, api_key=api_key)

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
        admin = self._is_admin(user)
        with self._db.transaction() as session:
            target = self._target(self._load(session, user, name, admin))
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
        return outcome

    async def _probe_one(self, target: ProbeTarget) -> ProbeResult:
        timeout = self._settings.health_timeout
        async with client_for(timeout) as client:
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
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start : start + _CHUNK]
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
        now = self._clock.now()
        with self._db.transaction() as session:
            stmt = sa.select(Endpoint).where(
                sa.or_(Endpoint.owner == user, Endpoint.shared_with == "everyone")
                if user is not None
                else Endpoint.shared_with == "everyone"
            )
            serving = [e for e in map(_view, session.scalars(stmt)) if e.serves(model)]
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

    # -- import / export ------------------------------------------------------------------------

    def export(self, user: str) -> dict[str, Any]:
        """The endpoints the user can see, as a portable document without any secret."""
        return {
            "format": EXPORT_FORMAT,
            "version": EXPORT_VERSION,
            "exported_at": self._clock.now().isoformat(),
            "endpoints": [
                {
                    "name": e.name,
                    "base_url": e.base_url,
                    "type": e.type,
                    "health_path": e.health_path,
                    "shared_with": e.shared_with,
                    "active": e.active,
                    "api_key_set": e.api_key_set,
                }
                for e in self.list(user)
            ],
        }

    def import_endpoints(
        self, user: str, document: str | dict[str, Any] | list[Any], *, replace: bool = False
    ) -> tuple[list[str], list[str]]:
        """Create (or with ``replace`` update) every entry in one transaction: all or nothing.

        Returns (created, updated) names. Any invalid entry rejects the whole import, naming it.
        Entries never carry keys (exports have none); set them after with ``endpoint edit``.
        """
        entries = _entries(document)
        role = self._rbac.role_of(user)
        admin = role >= Role.ADMIN
        specs = [_entry_spec(i, e, role) for i, e in enumerate(entries, start=1)]
        seen: dict[str, int] = {}
        for index, spec in enumerate(specs, start=1):
            if spec["name"] in seen:
                raise ValidationError(
                    f"entry {index} ({spec['name']}): the name is also used by entry "
                    f"{seen[spec['name']]}; nothing was imported"
                )
            seen[spec["name"]] = index
        now = self._clock.now()
        created: list[str] = []
        updated: list[str] = []
        try:
            with self._db.transaction() as session:
                existing = {
                    r.name: r
                    for chunk in _chunks(list(seen), _CHUNK)
                    for r in session.scalars(
                        sa.select(Endpoint)
                        .where(Endpoint.name.in_(chunk))
                        .order_by(Endpoint.id)
                        .with_for_update()
                    )
                }
                for index, spec in enumerate(specs, start=1):
                    row = existing.get(spec["name"])
                    if row is None:
                        session.add(
                            Endpoint(
                                **spec,
                                owner=user,
                                status="unknown",
                                models=[],
                                created_by=user,
                                created_at=now,
                                updated_at=now,
                            )
                        )
                        created.append(spec["name"])
                        continue
                    where = f"entry {index} ({spec['name']})"
                    if not replace:
                        raise ValidationError(
                            f"{where}: an endpoint with this name exists (import with --replace "
                            "to update it); nothing was imported"
                        )
                    if not (admin or row.owner == user):
                        raise ValidationError(
                            f"{where}: the existing endpoint belongs to <@{row.owner}>, so you "
                            "may not replace it; nothing was imported"
                        )
                    moved = (row.base_url, row.type, row.health_path) != (
                        spec["base_url"],
                        spec["type"],
                        spec["health_path"],
                    )
                    for attr, value in spec.items():
                        setattr(row, attr, value)
                    if moved:
                        self._reset_health(row, clear_models=True)
                    row.revision += 1
                    row.updated_at = now
                    updated.append(spec["name"])
                session.flush()
                self._audit.record(
                    user,
                    "endpoint.import",
                    params={"created": created, "updated": updated},
                    session=session,
                )
        except IntegrityError:
            raise ConflictError(
                "an endpoint of this import was created meanwhile; nothing was imported, retry"
            ) from None
        return created, updated


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _entries(document: str | dict[str, Any] | list[Any]) -> list[Any]:
    data: Any = document
    if isinstance(document, str):
        try:
            data = json.loads(document)
        except json.JSONDecodeError as exc:
            raise ValidationError(
                f"the import is not valid JSON ({exc.msg} at line {exc.lineno} column "
                f"{exc.colno}); nothing was imported"
            ) from None
    if isinstance(data, dict):
        fmt = data.get("format")
        if fmt is not None and fmt != EXPORT_FORMAT:
            raise ValidationError(f"not an endpoints export (format {str(fmt)[:40]!r})")
        version = data.get("version", EXPORT_VERSION)
        if version != EXPORT_VERSION:
            raise ValidationError(
                f"unsupported export version {version!r}; this Modelarium reads {EXPORT_VERSION}"
            )
        data = data.get("endpoints")
    if not isinstance(data, list):
        raise ValidationError(
            'the import must be {"endpoints": [...]} (as `endpoint export` writes) or a list'
        )
    if not data:
        raise ValidationError("the import has no endpoints")
    if len(data) > MAX_IMPORT:
        raise ValidationError(f"the import has {len(data)} endpoints; at most {MAX_IMPORT} at once")
    return data


_ENTRY_KEYS = {"name", "base_url", "url", "type", "health_path", "shared_with", "active"}
_IGNORED_KEYS = {"api_key_set", "owner", "status", "models"}


def _entry_spec(index: int, entry: Any, role: Role) -> dict[str, Any]:
    """One import entry validated into Endpoint column values (raising with the entry named)."""
    label = f"entry {index}"
    if not isinstance(entry, dict):
        raise ValidationError(f"{label}: expected an object, got {type(entry).__name__}")
    name = entry.get("name")
    if isinstance(name, str) and name.strip():
        label = f"entry {index} ({name.strip()[:64]})"
    try:
        secret_keys = sorted(
            k for k in entry if "key" in k.lower() and k != "api_key_set" and entry[k]
        )
        if secret_keys:
            raise ValidationError(
                f"carries {secret_keys[0]!r}: imports never carry keys; set them afterwards "
                "with `endpoint edit NAME --api-key -`"
            )
        unknown = sorted(set(entry) - _ENTRY_KEYS - _IGNORED_KEYS - {"api_key"})
        if unknown:
            raise ValidationError(f"unknown field {unknown[0]!r}")
        if not isinstance(name, str):
            raise ValidationError("missing name")
        url = entry.get("base_url", entry.get("url"))
        if not isinstance(url, str):
            raise ValidationError("missing base_url")
        kind = entry.get("type", "ollama")
        shared = entry.get("shared_with", "owner")
        path = entry.get("health_path")
        active = entry.get("active", True)
        if not isinstance(kind, str) or not isinstance(shared, str):
            raise ValidationError("type and shared_with must be strings")
        if path is not None and not isinstance(path, str):
            raise ValidationError("health_path must be a string")
        if not isinstance(active, bool):
            raise ValidationError("active must be true or false")
        kind = v.check_type(kind)
        shared = v.check_shared_with(shared)
        if shared == "everyone" and role < Role.OPERATOR:
            raise ValidationError("sharing with everyone needs the operator role")
        return {
            "name": v.check_name(name),
            "base_url": v.check_url(url),
            "type": kind,
            "health_path": v.check_health_path(path, kind),
            "shared_with": shared,
            "active": active,
        }
    except ModelariumError as exc:
        raise ValidationError(f"{label}: {exc}; nothing was imported") from None


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
