"""`/model role grant|revoke|list` and `/model whoami`."""

from __future__ import annotations

from modelarium.bot.commands.context import CommandContext
from modelarium.bot.commands.parsing import user_id
from modelarium.bot.commands.registry import registry
from modelarium.bot.commands.spec import Arg
from modelarium.bot.reply import Reply
from modelarium.core.messages import Message
from modelarium.core.rbac import Role
from modelarium.core.rbac.actions import GRANT_ACTION

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
    help="Give someone a role (granting admin needs another admin's approval)",
    role=Role.ADMIN,
    args=[Arg("user", "a mention or user id", type=user_id), Arg("role", choices=ROLES)],
    examples=["role grant @alice operator", "role grant @bob admin"],
)
def role_grant(ctx: CommandContext, user: str, role: str) -> Reply:
    target = Role.parse(role)
    if target == Role.ADMIN:
        view = ctx.core.approvals.request(
            GRANT_ACTION, {"user": user, "role": "admin"}, requester=ctx.user, channel=ctx.channel
        )
        message = (
            Message(fallback=f"Approval #{view.id} requested")
            .text(
                f"⏳ Granting *admin* to <@{user}> needs another admin's approval: "
                f"request *#{view.id}* (digest `{view.short_digest}`) is posted for review."
            )
            .context(f"Another admin can run `{ctx.command_prefix} approve {view.id}`.")
        )
        return Reply(
            message, data={"approval_id": view.id, "status": view.status, "digest": view.digest}
        )
    ctx.core.rbac.grant(user, target, granted_by=ctx.user)
    return Reply.say(f"✅ <@{user}> is now {target}.", user=user, role=str(target))


@registry.command(
    "role revoke",
    help="Remove someone's granted role (they fall back to the default role)",
    role=Role.ADMIN,
    args=[Arg("user", "a mention or user id", type=user_id)],
)
def role_revoke(ctx: CommandContext, user: str) -> Reply:
    previous = ctx.core.rbac.revoke(user)
    now = ctx.core.rbac.role_of(user)
    return Reply.say(
        f"Revoked {previous} from <@{user}>; they are now {now}.", user=user, role=str(now)
    )


@registry.command("role list", help="Who holds which role, and why", audit=False)
def role_list(ctx: CommandContext) -> Reply:
    assignments = ctx.core.rbac.assignments()
    message = Message(fallback="Role assignments").header("Roles")
    message.table(
        ["user", "role", "source"],
        [[f"<@{a.user_id}>", str(a.role), a.source] for a in assignments],
    )
    message.context(f"Everyone else: {ctx.core.rbac.default_role}.")
    return Reply(
        message,
        data={
            "assignments": [
                {"user": a.user_id, "role": str(a.role), "source": a.source} for a in assignments
            ]
        },
    )
