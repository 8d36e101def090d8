"""The one table of which scope an API token needs for each command.

Every HTTP route runs a command through the same runner as Slack and the shell (the typed
routes name theirs in ``app.py``), so this table covers the routes too. A command's path is
looked up by its longest listed prefix (``endpoint list`` before ``endpoint``). A command not
listed needs ``admin``: a new command is closed to narrower tokens until it gets a row here.

Scopes narrow, they never widen: the runner still checks the token owner's current role first.
Commands that can write in any form (``ollama show --save``, ``modelfile compose --save``) need
the writing scope even when called only to read.
"""

from __future__ import annotations

from collections.abc import Callable

from modelarium.bot.commands.spec import Command
from modelarium.core.errors import PermissionDeniedError
from modelarium.core.tokens import TokenView

READ, DEPLOY, APPROVE, CATALOG, ADMIN = "read", "deploy", "approve", "catalog", "admin"

COMMAND_SCOPES: dict[str, str] = {
    # engine: approvals, changes, jobs, alerts, audit, status
    "approvals": READ,
    "approval": READ,
    "approve": APPROVE,
    "reject": APPROVE,
    "changes": READ,
    "change": READ,
    "revert": DEPLOY,
    "jobs": READ,
    "jobs retry": DEPLOY,
    "cancel": DEPLOY,
    "alerts": READ,
    "alert ack": DEPLOY,
    "silences": READ,
    "silence": DEPLOY,
    "unsilence": DEPLOY,
    "audit": READ,
    "audit export": ADMIN,
    "audit verify": ADMIN,
    "status": READ,
    "run": ADMIN,
    "help": READ,
    "version": READ,
    "whoami": READ,
    # roles and tokens
    "role list": READ,
    "role grant": ADMIN,
    "role revoke": ADMIN,
    "token": ADMIN,
    # discovery
    "search": READ,
    "info": READ,
    "fit": READ,
    "gpus": READ,
    "arch": READ,
    "archs": READ,
    # weights
    "weights": READ,
    "install": DEPLOY,
    "purge": DEPLOY,
    "pin": DEPLOY,
    "unpin": DEPLOY,
    "verify": DEPLOY,
    # endpoints
    "endpoint": DEPLOY,
    "endpoint list": READ,
    "endpoint show": READ,
    "endpoint models": READ,
    "endpoint check": READ,
    "endpoint export": READ,
    "where": READ,
    "pick": READ,
    # modelfiles and ollama
    "modelfile": DEPLOY,
    "modelfile check": READ,
    "modelfile diff": READ,
    "modelfile export": READ,
    "modelfile history": READ,
    "modelfile list": READ,
    "modelfile popular": READ,
    "modelfile show": READ,
    "modelfile element list": READ,
    "modelfile element show": READ,
    "ollama": DEPLOY,
    "ollama list": READ,
    # deployments and the catalog (validate records its result on the draft; status is a PR)
    "deploy": DEPLOY,
    "deployments": READ,
    "deployment": DEPLOY,
    "deployment show": READ,
    "deployment diff": READ,
    "deployment history": READ,
    "catalog": CATALOG,
    "catalog list": READ,
    "catalog show": READ,
    "catalog diff": READ,
    "catalog updates": READ,
    "catalog schema": READ,
    # capabilities under way (the verbs of the map), so they are not admin-only when they land
    "groups": READ,
    "group": DEPLOY,
    "group show": READ,
    "group compare": READ,
    "group pick": READ,
    "publish": DEPLOY,
    "upload": DEPLOY,
    "backups": READ,
}
FALLBACK = ADMIN


def scope_for(path: tuple[str, ...]) -> str:
    """The scope a command needs: its longest listed prefix, else ``admin``."""
    for length in range(len(path), 0, -1):
        scope = COMMAND_SCOPES.get(" ".join(path[:length]))
        if scope is not None:
            return scope
    return FALLBACK


def authorizer(token: TokenView) -> Callable[[Command], None]:
    """``authorize`` for the runner: refuses a command outside the token's scopes."""

    def authorize(command: Command) -> None:
        needed = scope_for(command.path)
        if not token.allows(needed):
            raise PermissionDeniedError(
                f"`{command.name}` needs the {needed} scope; token {token.prefix} has "
                f"{', '.join(token.scopes)}"
            )

    return authorize
