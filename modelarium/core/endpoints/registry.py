"""The registry: add, edit, remove, list and resolve endpoints."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from modelarium.core.alerts import Observation
from modelarium.core.db.models.endpoints import Endpoint, EndpointCheck
from modelarium.core.endpoints import validation as v
from modelarium.core.endpoints.access import EndpointsBase
from modelarium.core.endpoints.probe import (
    public_error,
)
from modelarium.core.endpoints.views import (
    DOWN_RULE,
    CheckRecord,
    EndpointView,
    ResolvedEndpoint,
    _view,
)
from modelarium.core.errors import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    UsageError,
)
from modelarium.core.logging import get_logger
from modelarium.core.rbac import Role

log = get_logger(__name__)


class Registry(EndpointsBase):
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
        role = self._role(user)
        v.check_health_path_role(health_path and path, role >= Role.OPERATOR)
        if shared == "everyone":
            self._require_share(user)
        self._check_address(url)
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
        role = self._role(user)
        admin = role >= Role.ADMIN
        if shared_with is not None and v.check_shared_with(shared_with) == "everyone":
            self._require_share(user)
        key = v.check_api_key(api_key) if api_key is not None else None
        v.check_health_path_role(health_path, role >= Role.OPERATOR)
        if base_url is not None:
            self._check_address(v.check_url(base_url))
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
        role = self._role(user)
        admin = role >= Role.ADMIN
        with self._db.transaction() as session:
            stmt = sa.select(Endpoint).where(self._visible(user, admin)).order_by(Endpoint.name)
            if active_only:
                stmt = stmt.where(Endpoint.active.is_(True))
            return [self._shown(_view(r), role) for r in session.scalars(stmt)]

    def editable(self, user: str, name: str) -> EndpointView:
        """The endpoint if ``user`` may change it (owner or admin); raises like :meth:`edit`."""
        role = self._role(user)
        with self._db.transaction() as session:
            row = self._load(session, user, name, role >= Role.ADMIN, edit=True)
            return self._shown(_view(row), role)

    def get(self, user: str, name: str) -> EndpointView:
        role = self._role(user)
        with self._db.transaction() as session:
            return self._shown(_view(self._load(session, user, name, role >= Role.ADMIN)), role)

    def status_of(self, name: str, user: str) -> str:
        """The endpoint's health as checks last saw it (the ``endpoint_status`` port)."""
        return self.get(user, name).status

    def history(self, user: str, name: str, limit: int = 10) -> list[CheckRecord]:
        """The newest checks first (at most ``health_history`` are kept)."""
        role = self._role(user)
        detail = role >= Role.OPERATOR
        limit = max(0, min(limit, self._settings.health_history))
        with self._db.transaction() as session:
            row = self._load(session, user, name, role >= Role.ADMIN)
            checks = session.scalars(
                sa.select(EndpointCheck)
                .where(EndpointCheck.endpoint_id == row.id)
                .order_by(EndpointCheck.seq.desc())
                .limit(limit)
            )
            return [
                CheckRecord(
                    c.seq,
                    c.checked_at,
                    c.ok,
                    c.response_ms,
                    c.error if detail else public_error(c.error),
                    c.manual,
                )
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
            revision = row.revision
        api_key = self._keyring.decrypt(token) if token else None
        return ResolvedEndpoint(
            *resolved, api_key=api_key, revision=revision, policy=self.address_policy
        )
