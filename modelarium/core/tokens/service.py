"""API tokens: issue, list, rotate, revoke, and authenticate a request.

A token is ``mdl_<8 chars>_<secret>``. The first part, the *prefix*, is stored in clear and
finds the row; the whole token is stored only as HMAC-SHA256 under a server-side pepper (so a
copy of the database alone cannot test guesses) and compared in constant time. The secret is
returned once, when the token is created or rotated, and never logged or stored.

Authentication reads the row on every request, so a revoked token is refused at once, and
records the last use at most once a minute (a write per request would cost more than the rest
of a read command).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from modelarium.core.audit import AuditService
from modelarium.core.clock import Clock
from modelarium.core.db.models.tokens import ApiToken
from modelarium.core.db.uow import Database
from modelarium.core.errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    UsageError,
)
from modelarium.core.messages import iso_time
from modelarium.core.tokens.scopes import allows

PREFIX = "mdl_"
_ID_CHARS = string.ascii_lowercase + string.digits
_ID_LENGTH = 8
_SHAPE = re.compile(r"^mdl_[a-z0-9]{8}_[A-Za-z0-9_-]{40}$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
TOUCH_INTERVAL = timedelta(seconds=60)
"""How stale ``last_used_at`` may get before a request writes it again."""


@dataclass(frozen=True)
class TokenView:
    id: int
    user: str
    name: str
    prefix: str
    scopes: tuple[str, ...]
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None
    revoked_reason: str | None

    def status(self, now: datetime) -> str:
        """``active``, ``expired``, ``revoked`` or ``rotated``."""
        if self.revoked_at is not None:
            return self.revoked_reason or "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"

    def allows(self, scope: str) -> bool:
        return allows(self.scopes, scope)

    def to_json(self, now: datetime) -> dict[str, Any]:
        return {
            "name": self.name,
            "user": self.user,
            "prefix": self.prefix,
            "scopes": list(self.scopes),
            "status": self.status(now),
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "last_used_at": self.last_used_at.isoformat() if self.last_used_at else None,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


@dataclass(frozen=True)
class IssuedToken:
    """A new token: ``secret`` is the only copy there will ever be."""

    secret: str
    view: TokenView


class TokenService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        audit: AuditService,
        pepper: bytes,
        *,
        default_expiry: float = 90 * 86400.0,
    ) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit
        self._pepper = pepper
        self.default_expiry = default_expiry

    # -- lifecycle ------------------------------------------------------------------------

    def create(
        self,
        user: str,
        name: str,
        scopes: tuple[str, ...],
        *,
        expires_in: float | None = None,
        by: str | None = None,
    ) -> IssuedToken:
        """A new token of ``user``; ``expires_in`` seconds (None: the default, 0: never)."""
        if not _NAME.match(name):
            raise UsageError(
                f"invalid token name {name!r}: lowercase letters, digits, '.', '_' and '-', "
                "up to 63 characters"
            )
        if not scopes:
            raise UsageError("a token needs at least one scope")
        lifetime = self.default_expiry if expires_in is None else expires_in
        now = self._clock.now()
        expires_at = now + timedelta(seconds=lifetime) if lifetime else None
        secret, prefix = self._new_secret()
        try:
            with self._db.transaction() as session:
                if self._live(session, user, name) is not None:
                    raise ConflictError(
                        f"you already have a token named {name!r}; rotate or revoke it first"
                    )
                row = ApiToken(
                    user_id=user,
                    name=name,
                    prefix=prefix,
                    secret_hash=self._hash(secret),
                    scopes=list(scopes),
                    created_by=by or user,
                    created_at=now,
                    expires_at=expires_at,
                )
                session.add(row)
                session.flush()
                self._audit.record(
                    by or user,
                    "token.create",
                    target=f"{user}/{name} ({prefix})",
                    params={"scopes": list(scopes), "expires_at": _iso(expires_at)},
                    session=session,
                )
                view = _view(row)
        except IntegrityError:  # created at the same moment by another request
            raise ConflictError(f"you already have a token named {name!r}") from None
        return IssuedToken(secret, view)

    def rotate(self, user: str, name: str, *, by: str | None = None) -> IssuedToken:
        """A new secret for the same name, scopes and expiry; the old one stops working now."""
        now = self._clock.now()
        secret, prefix = self._new_secret()
        with self._db.transaction() as session:
            old = self._live(session, user, name, lock=True)
            if old is None:
                raise NotFoundError(f"no active token named {name!r}")
            if old.expires_at is not None and old.expires_at <= now:
                raise ConflictError(
                    f"token {name!r} expired on {old.expires_at:%Y-%m-%d}; create a new one"
                )
            old.revoked_at = now
            old.revoked_by = by or user
            old.revoked_reason = "rotated"
            session.flush()  # the name is free again before the new row takes it
            row = ApiToken(
                user_id=user,
                name=name,
                prefix=prefix,
                secret_hash=self._hash(secret),
                scopes=list(old.scopes),
                created_by=by or user,
                created_at=now,
                expires_at=old.expires_at,
            )
            session.add(row)
            session.flush()
            old.replaced_by = row.id
            self._audit.record(
                by or user,
                "token.rotate",
                target=f"{user}/{name} ({old.prefix} -> {prefix})",
                session=session,
            )
            view = _view(row)
        return IssuedToken(secret, view)

    def revoke(self, user: str, name: str, *, by: str | None = None) -> TokenView:
        now = self._clock.now()
        with self._db.transaction() as session:
            row = self._live(session, user, name, lock=True)
            if row is None:
                raise NotFoundError(f"no active token named {name!r}")
            row.revoked_at = now
            row.revoked_by = by or user
            row.revoked_reason = "revoked"
            self._audit.record(
                by or user, "token.revoke", target=f"{user}/{name} ({row.prefix})", session=session
            )
            return _view(row)

    def list(self, user: str | None = None, *, include_revoked: bool = False) -> list[TokenView]:
        """``user``'s tokens (everyone's with None), newest first."""
        stmt = sa.select(ApiToken).order_by(ApiToken.id.desc())
        if user is not None:
            stmt = stmt.where(ApiToken.user_id == user)
        if not include_revoked:
            stmt = stmt.where(ApiToken.revoked_at.is_(None))
        with self._db.transaction() as session:
            return [_view(r) for r in session.scalars(stmt)]

    # -- authentication -------------------------------------------------------------------

    def authenticate(self, token: str) -> TokenView:
        """The live token ``token`` is, or :class:`AuthenticationError` with a one-line reason."""
        token = token.strip()
        if not _SHAPE.match(token):
            # Hash anyway, so a malformed token costs what a wrong one does.
            hmac.compare_digest(self._hash(token), "0" * 64)
            raise AuthenticationError("not a Modelarium API token (mdl_...)")
        prefix = token[: len(PREFIX) + _ID_LENGTH]
        digest = self._hash(token)
        now = self._clock.now()
        with self._db.transaction() as session:
            row = session.scalar(sa.select(ApiToken).where(ApiToken.prefix == prefix))
            if row is None or not hmac.compare_digest(row.secret_hash, digest):
                raise AuthenticationError("unknown API token")
            if row.revoked_at is not None:
                if row.revoked_reason == "rotated":
                    raise AuthenticationError(
                        f"API token {prefix} was rotated on {iso_time(row.revoked_at)}; "
                        "use the new one"
                    )
                raise AuthenticationError(
                    f"API token {prefix} was revoked on {iso_time(row.revoked_at)}"
                )
            if row.expires_at is not None and row.expires_at <= now:
                raise AuthenticationError(
                    f"API token {prefix} expired on {iso_time(row.expires_at)}"
                )
            if row.last_used_at is None or now - row.last_used_at >= TOUCH_INTERVAL:
                row.last_used_at = now
            return _view(row)

    # -- internals ------------------------------------------------------------------------

    def _hash(self, token: str) -> str:
        return hmac.new(self._pepper, token.encode(), hashlib.sha256).hexdigest()

    @staticmethod
    def _new_secret() -> tuple[str, str]:
        ident = "".join(secrets.choice(_ID_CHARS) for _ in range(_ID_LENGTH))
        prefix = PREFIX + ident
        return f"{prefix}_{secrets.token_urlsafe(30)}", prefix

    @staticmethod
    def _live(session: Any, user: str, name: str, *, lock: bool = False) -> ApiToken | None:
        stmt = sa.select(ApiToken).where(
            ApiToken.user_id == user, ApiToken.name == name, ApiToken.revoked_at.is_(None)
        )
        if lock:
            stmt = stmt.with_for_update()
        return session.scalar(stmt)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _view(row: ApiToken) -> TokenView:
    return TokenView(
        id=row.id,
        user=row.user_id,
        name=row.name,
        prefix=row.prefix,
        scopes=tuple(row.scopes or ()),
        created_by=row.created_by,
        created_at=row.created_at,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
        revoked_by=row.revoked_by,
        revoked_reason=row.revoked_reason,
    )
