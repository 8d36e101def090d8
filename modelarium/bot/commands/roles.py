"""`/model role grant|revoke|list` and `/model whoami`."""

from __future__ import annotations

from modelarium.bot.commands.changes import proposal_reply
from modelarium.bot.commands.context import CommandContext
from modelarium.bot.commands.parsing import user_id
from modelarium.bot.commands.registry import registry
from modelarium.bot.commands.spec import Arg
from modelarium.bot.reply import Reply
from modelarium.core.messages import Message
from modelarium.core.rbac import Role
from modelarium.core.roles.changes import GRANT, REVOKE

ROLES = ("viewer", "operator", "admin")


@registry.command("whoami", help="Show your user id and role", audit=False)
def whoami(ctx: CommandContext) -> Reply:
    return Reply.say(
        f"You are <@{ctx.user}> (`{ctx.user}`), role *{ctx.role}*.",
        user=ctx.user,
        role=str(ctx.role),
    )


@registry.command(
    "role grant",
    help="Give someone a role (making or unmaking an admin needs another admin's approval)",
    role=Role.ADMIN,
    args=[Arg("user", "a mention or user id", type=user_id), Arg("role", choices=ROLES)],
    examples=["role grant @alice operator", "role grant @bob admin"],
)
def role_grant(ctx: CommandContext, user: str, role: str) -> Reply:
    proposal = ctx.core.changes.propose(GRANT, {"user": user, "role": role}, ctx.user, ctx.channel)
    return proposal_reply(ctx, proposal, data={"user": user, "role": role})


@registry.command(
    "role revoke",
    help="Remove someone's granted role (they fall back to the default role)",
    role=Role.ADMIN,
    args=[Arg("user", "a mention or user id", type=user_id)],
    examples=["role revoke @alice"],
)
def role_revoke(ctx: CommandContext, user: str) -> Reply:
    proposal = ctx.core.changes.propose(REVOKE, {"user": user}, ctx.user, ctx.channel)
    return proposal_reply(ctx, proposal, data={"user": user})


@registry.command("role list", help="Who holds which role, and why", audit=False)
def role_list(ctx: CommandContext) -> Reply:
    assignments = ctx.core.rbac.assignments()
    message = Message(fallback="Role assignments").header("Roles")
    message.table(
        ["user", "role", "source"],
        [[f"<@{a.user_id}>", str(a.role), a.shown or a.source] for a in assignments],
    )
    message.context(f"Everyone else: {ctx.core.rbac.default_role}.")
    return Reply(
        message,
        data={"assignments": [a.to_json() for a in assignments]},
    )
