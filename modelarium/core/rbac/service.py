"""Who may do what: explicit grants, Slack user-group mappings and bootstrap admins."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from modelarium.core.clock import Clock
from modelarium.core.db.models.rbac import GroupMembership, RoleGrant
from modelarium.core.db.uow import Database
from modelarium.core.errors import NotFoundError, PermissionDeniedError, UpstreamError
from modelarium.core.rbac.roles import Role


@dataclass(frozen=True)
class RoleAssignment:
    user_id: str
    role: Role
    source: str
    since: datetime | None = None


class RbacService:
    """Effective role = the highest of bootstrap admin, explicit grant, group role, default."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        admins: Iterable[str] = (),
        default_role: str = "viewer",
        group_roles: dict[str, str] | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self.bootstrap_admins = frozenset(admins)
        self.default_role = Role.parse(default_role)
        self.group_roles = {g: Role.parse(r) for g, r in (group_roles or {}).items()}

    def role_of(self, user_id: str) -> Role:
        if user_id in self.bootstrap_admins:
            return Role.ADMIN
        with self._db.transaction() as session:
            grant = session.get(RoleGrant, user_id)
            group_roles = session.scalars(
                sa.select(GroupMembership.role).where(GroupMembership.user_id == user_id)
            ).all()
        candidates = [self.default_role]
        if grant is not None:
            candidates.append(Role.parse(grant.role))
        candidates.extend(Role.parse(r) for r in group_roles)
        return max(candidates)

    def require(self, user_id: str, needed: Role, what: str) -> Role:
        role = self.role_of(user_id)
        if role < needed:
            raise PermissionDeniedError(f"{what} needs the {needed} role; you are {role}")
        return role

    def grant(self, user_id: str, role: Role, granted_by: str) -> None:
        with self._db.transaction() as session:
            existing = session.get(RoleGrant, user_id)
            if existing is None:
                session.add(
                    RoleGrant(
                        user_id=user_id,
                        role=str(role),
                        granted_by=granted_by,
                        granted_at=self._clock.now(),
                    )
                )
            else:
                existing.role = str(role)
                existing.granted_by = granted_by
                existing.granted_at = self._clock.now()

    def revoke(self, user_id: str) -> Role:
        with self._db.transaction() as session:
            existing = session.get(RoleGrant, user_id)
            if existing is None:
                raise NotFoundError(f"{user_id} has no granted role to revoke")
            session.delete(existing)
            return Role.parse(existing.role)

    def assignments(self) -> list[RoleAssignment]:
        out = [
            RoleAssignment(u, Role.ADMIN, "bootstrap (MODELARIUM_ADMINS)")
            for u in sorted(self.bootstrap_admins)
        ]
        with self._db.transaction() as session:
            for grant in session.scalars(sa.select(RoleGrant).order_by(RoleGrant.user_id)):
                out.append(
                    RoleAssignment(
                        grant.user_id,
                        Role.parse(grant.role),
                        f"granted by {grant.granted_by}",
                        grant.granted_at,
                    )
                )
            for member in session.scalars(
                sa.select(GroupMembership).order_by(GroupMembership.user_id)
            ):
                out.append(
                    RoleAssignment(
                        member.user_id,
                        Role.parse(member.role),
                        f"group {member.group_id}",
                        member.synced_at,
                    )
                )
        return out

    def sync_groups(self, members_of: Callable[[str], list[str]]) -> dict[str, int]:
        """Replace group memberships with what the chat platform reports now.

        A group that cannot be read keeps its previous members (a transient Slack error must
        not strip everyone's role); the error propagates after the others are synced.
        """
        counts: dict[str, int] = {}
        failures: list[str] = []
        for group_id, role in self.group_roles.items():
            try:
                members = sorted(set(members_of(group_id)))
            except Exception as exc:  # reported below, other groups still sync
                failures.append(f"{group_id}: {exc}")
                continue
            with self._db.transaction() as session:
                session.execute(
                    sa.delete(GroupMembership).where(GroupMembership.group_id == group_id)
                )
                now = self._clock.now()
                session.add_all(
                    GroupMembership(group_id=group_id, user_id=u, role=str(role), synced_at=now)
                    for u in members
                )
            counts[group_id] = len(members)
        if failures:
            raise UpstreamError("could not read user groups: " + "; ".join(failures))
        return counts
