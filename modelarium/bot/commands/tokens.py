"""`/model token create|list|rotate|revoke`: API tokens for scripts and CI.

A token acts as the person who created it, with their role at the time of each request; its
scopes narrow what it may do (see ``modelarium/bot/api/scopes.py``). The secret is in the reply
once (ephemeral in Slack) and nowhere else.
"""

from __future__ import annotations

from datetime import datetime

from modelarium.bot.commands.context import CommandContext
from modelarium.bot.commands.parsing import user_id
from modelarium.bot.commands.registry import registry
from modelarium.bot.commands.spec import Arg, Flag
from modelarium.bot.reply import Reply
from modelarium.config.units import parse_duration
from modelarium.core.errors import PermissionDeniedError, UsageError
from modelarium.core.messages import Message, timestamp
from modelarium.core.rbac import Role
from modelarium.core.tokens import SCOPES, IssuedToken, parse_scopes


def _expiry(value: str | None) -> float | None:
    """Seconds from ``--expires`` (None: the default lifetime, 0: never)."""
    if value is None:
        return None
    if value.strip().lower() == "never":
        return 0.0
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise UsageError(f"--expires: {exc}") from None
    if seconds <= 0:
        raise UsageError("--expires must be a positive duration such as 30d, or 'never'")
    return seconds


def _when(value: datetime | None) -> str:
    return timestamp(value)


def _issued(ctx: CommandContext, issued: IssuedToken, verb: str) -> Reply:
    view = issued.view
    message = Message(fallback=f"{verb} API token {view.name}")
    message.text(
        f"🔑 {verb} API token *{view.name}* ({view.prefix}) for <@{view.user}>: scopes "
        f"*{', '.join(view.scopes)}*, expires {_when(view.expires_at)}."
    )
    message.code(issued.secret)
    message.context(
        "Copy it now: it is shown only this once. Scripts send it as "
        "`Authorization: Bearer <token>`; `modelarium cmd --server URL` reads it from "
        "`MODELARIUM_TOKEN`."
    )
    reply = Reply(message, data={"token": issued.secret, **view.to_json(ctx.core.clock.now())})
    reply.visibility = "ephemeral"
    return reply


@registry.command(
    "token create",
    help="Create an API token for scripts and CI, acting as you (shown once)",
    args=[Arg("name", "a name for it, e.g. ci-deploy")],
    flags=[
        Flag("scope", f"what it may do, comma-separated: {', '.join(SCOPES)}", metavar="S,..."),
        Flag("expires", "lifetime, e.g. 30d, or never (default 90d)", metavar="DURATION"),
    ],
    examples=["token create ci-deploy --scope read,deploy --expires 30d", "token create grafana"],
)
def token_create(ctx: CommandContext, name: str, scope: str | None, expires: str | None) -> Reply:
    scopes = parse_scopes(scope)
    issued = ctx.core.tokens.create(ctx.user, name, scopes, expires_in=_expiry(expires))
    return _issued(ctx, issued, "Created")


@registry.command(
    "token rotate",
    help="Replace a token's secret (same name, scopes and expiry); the old one stops working",
    args=[Arg("name")],
    examples=["token rotate ci-deploy"],
)
def token_rotate(ctx: CommandContext, name: str) -> Reply:
    return _issued(ctx, ctx.core.tokens.rotate(ctx.user, name), "Rotated")


@registry.command(
    "token revoke",
    help="Revoke a token at once (admins: anyone's, with --user)",
    args=[Arg("name")],
    flags=[Flag("user", "whose token (admins only)", type=user_id, metavar="USER")],
    examples=["token revoke ci-deploy", "token revoke ci-deploy --user @bob"],
)
def token_revoke(ctx: CommandContext, name: str, user: str | None) -> Reply:
    owner = user or ctx.user
    if owner != ctx.user and ctx.role < Role.ADMIN:
        raise PermissionDeniedError("revoking someone else's token needs the admin role")
    view = ctx.core.tokens.revoke(owner, name, by=ctx.user)
    return Reply.say(
        f"🚫 Revoked API token *{view.name}* ({view.prefix}) of <@{view.user}>; "
        "requests with it are refused from now on.",
        **view.to_json(ctx.core.clock.now()),
    )


@registry.command(
    "token list",
    help="Your API tokens: scopes, expiry, last use (admins: everyone's with --all)",
    flags=[Flag("all", "every user's tokens (admins only)", None)],
    examples=["token list", "token list --all"],
    audit=False,
)
def token_list(ctx: CommandContext, all: bool) -> Reply:
    if all and ctx.role < Role.ADMIN:
        raise PermissionDeniedError("listing everyone's tokens needs the admin role")
    views = ctx.core.tokens.list(None if all else ctx.user)
    now = ctx.core.clock.now()
    message = Message(fallback=f"{len(views)} API token(s)").header("API tokens")
    if not views:
        message.text(f"No API tokens. Create one with `{ctx.command_prefix} token create <name>`.")
    else:
        message.table(
            ["name", *(["user"] if all else []), "prefix", "scopes", "expires", "last used",
             "status"],
            [
                [
                    v.name,
                    *([f"<@{v.user}>"] if all else []),
                    v.prefix,
                    ",".join(v.scopes),
                    _when(v.expires_at),
                    _when(v.last_used_at) if v.last_used_at else "—",
                    v.status(now),
                ]
                for v in views
            ],
        )  # fmt: skip
    return Reply(message, data={"tokens": [v.to_json(now) for v in views]})
