"""``core.tokens``: API tokens (issue, rotate, revoke, authenticate)."""

from __future__ import annotations

from modelarium.core.kernel import Kernel
from modelarium.core.ports import Ports
from modelarium.core.tokens.service import TokenService


def build(kernel: Kernel, ports: Ports) -> TokenService:
    return TokenService(
        kernel.db,
        kernel.clock,
        kernel.audit,
        kernel.keyring.token_pepper,
        default_expiry=kernel.settings.api_token_expiry,
    )
