"""Who may see and change which endpoint: the base every part of the endpoint service shares.

Visibility: an endpoint is private to its owner or shared with everyone; admins see all. Owners
and admins may change it. Sharing with everyone takes the operator role, because shared endpoints
take part in everyone's failover picks.
"""

from __future__ import annotations

import dataclasses

import sqlalchemy as sa
from sqlalchemy.orm import Session

from modelarium.config.settings import Settings
from modelarium.core.alerts import AlertService
from modelarium.core.audit import AuditService
from modelarium.core.clients.addresses import AddressPolicy
from modelarium.core.clock import Clock
from modelarium.core.db.models.endpoints import Endpoint
from modelarium.core.db.uow import Database
from modelarium.core.endpoints import validation as v
from modelarium.core.endpoints.probe import (
    public_error,
)
from modelarium.core.endpoints.views import EndpointView
from modelarium.core.errors import (
    NotFoundError,
    PermissionDeniedError,
)
from modelarium.core.logging import get_logger
from modelarium.core.rbac import RbacService, Role
from modelarium.core.secrets import Keyring

log = get_logger(__name__)


class EndpointsBase:
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
        self.address_policy = AddressPolicy.from_allowlist(settings.endpoint_allowlist)
        """Which addresses endpoints may use (MODELARIUM_ENDPOINT_ALLOWLIST); checked when an
        endpoint is added or moved, and again by every connection to it."""

    # -- who may see and change what ------------------------------------------------------------

    def _is_admin(self, user: str | None) -> bool:
        # role_of opens its own transaction: call it before opening ours.
        return user is not None and self._rbac.role_of(user) >= Role.ADMIN

    def _role(self, user: str | None) -> Role:
        """The caller's role (``None``, the system itself, sees everything)."""
        return Role.ADMIN if user is None else self._rbac.role_of(user)

    def _check_address(self, url: str) -> None:
        v.check_address(url, self.address_policy)

    @staticmethod
    def _shown(view: EndpointView, role: Role) -> EndpointView:
        """The view as ``role`` may see it: below operator, no detail of a failed connection."""
        if role >= Role.OPERATOR or view.last_error is None:
            return view
        return dataclasses.replace(view, last_error=public_error(view.last_error))

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
