"""API tokens for the HTTP API: scoped, expiring, stored hashed under a server-side pepper."""

from modelarium.core.tokens.scopes import SCOPES, allows, parse_scopes
from modelarium.core.tokens.service import IssuedToken, TokenService, TokenView

__all__ = ["SCOPES", "IssuedToken", "TokenService", "TokenView", "allows", "parse_scopes"]
