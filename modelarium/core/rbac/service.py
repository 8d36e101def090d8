"""Who may do what: explicit grants, Slack user-group mappings and bootstrap admins."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Session

from modelarium.core.clock import Clock
from modelarium.core.db.models.rbac import GroupMembership, RoleGrant
from modelarium.core.db.uow import Database
from modelarium.core.errors import NotFoundError, PermissionDeniedError, UpstreamError
from modelarium.core.rbac.roles import Role

if TYPE_CHECKING:
    from modelarium.core.audit import AuditService

SYNC_ACTOR = "role_sync"
"""The actor of the audit entries the group sync writes."""


@dataclass(frozen=True)
class RoleAssignment:
    user_id: str
    role: Role
    source: str
    since: datetime | None = None
    shown: str = ""
    """``source`` with people as references (``<@U…>``) that a front shows by name."""

    def to_json(self) -> dict[str, str | None]:
        return {
            "user": self.user_id,
            "role": str(self.role),
            "source": self.source,
            "since": self.since.isoformat() if self.since else None,
        }


class RbacService:
    """Effective role = the highest of bootstrap admin, explicit grant, group role, default.

    A user group never maps to admin: whoever manages the group would make admins without the
    two-person rule (settings refuse it first; this is the second line).
    """

    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        admins: Iterable[str] = (),
        default_role: str = "viewer",
        group_roles: dict[str, str] | None = None,
        audit: AuditService | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit
        self.bootstrap_admins = frozenset(admins)
        self.default_role = Role.parse(default_role)
        self.group_roles = {g: Role.parse(r) for g, r in (group_roles or {}).items()}
        for group, role in self.group_roles.items():
            if role >= Role.ADMIN:
                raise ValueError(f"user group {group} may not be mapped to admin")

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

    def granted_role(self, user_id: str) -> Role | None:
        """The explicitly granted role, if any (not bootstrap, group or default)."""
        with self._db.transaction() as session:
            grant = session.get(RoleGrant, user_id)
            return Role.parse(grant.role) if grant is not None else None

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

    def assignments(self, session: Session | None = None) -> list[RoleAssignment]:
        """One line per person: the effective role and every source that gives a role."""
        if session is None:
            with self._db.transaction() as own:
                return self.assignments(own)
        # (role, source as data, source as shown, since)
        sources: dict[str, list[tuple[Role, str, str, datetime | None]]] = {}
        for user in sorted(self.bootstrap_admins):
            sources.setdefault(user, []).append(
                (Role.ADMIN, "MODELARIUM_ADMINS", "MODELARIUM_ADMINS", None)
            )
        for grant in session.scalars(sa.select(RoleGrant).order_by(RoleGrant.user_id)):
            sources.setdefault(grant.user_id, []).append(
                (
                    Role.parse(grant.role),
                    f"granted by {grant.granted_by}",
                    f"granted by <@{grant.granted_by}>",
                    grant.granted_at,
                )
            )
        for member in session.scalars(sa.select(GroupMembership).order_by(GroupMembership.user_id)):
            sources.setdefault(member.user_id, []).append(
                (
                    Role.parse(member.role),
                    f"group {member.group_id}",
                    f"group {member.group_id}",
                    member.synced_at,
                )
            )
        out = []
        for user in sorted(sources):
            found = sources[user]
            role = max(r for r, _, _, _ in found)

            def joined(column: int, found: list[tuple[Role, str, str, datetime | None]]) -> str:
                return "; ".join(
                    f"{item[column]} ({item[0]})" if len(found) > 1 else str(item[column])
                    for item in found
                )

            since = max((t for _, _, _, t in found if t is not None), default=None)
            out.append(RoleAssignment(user, role, joined(1, found), since, joined(2, found)))
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
                before = set(
                    session.scalars(
                        sa.select(GroupMembership.user_id).where(
                            GroupMembership.group_id == group_id
                        )
                    )
                )
                session.execute(
                    sa.delete(GroupMembership).where(GroupMembership.group_id == group_id)
                )
                now = self._clock.now()
                session.add_all(
                    GroupMembership(group_id=group_id, user_id=u, role=str(role), synced_at=now)
                    for u in members
                )
                changes = [("role.group_added", u) for u in members if u not in before]
                changes += [("role.group_removed", u) for u in sorted(before - set(members))]
                for action, user in changes:  # in the same transaction: no change unrecorded
                    if self._audit is not None:
                        self._audit.record(
                            SYNC_ACTOR,
                            action,
                            target=user,
                            params={"group": group_id, "role": str(role)},
                            session=session,
                        )
            counts[group_id] = len(members)
        if failures:
            raise UpstreamError("could not read user groups: " + "; ".join(failures))
        return counts
