"""`/model approvals|approve|reject`: the text twins of the approval buttons."""

from __future__ import annotations

from modelarium.bot.commands.context import CommandContext
from modelarium.bot.commands.parsing import ident
from modelarium.bot.commands.registry import registry
from modelarium.bot.commands.spec import Arg, Flag
from modelarium.bot.reply import Reply
from modelarium.core.approvals import ApprovalView, render_card
from modelarium.core.changes.card import render_change
from modelarium.core.messages import Message, shorten, timestamp
from modelarium.core.rbac import Role


@registry.command("approvals", help="List pending approval requests", audit=False)
def approvals(ctx: CommandContext) -> Reply:
    pending = ctx.core.approvals.pending()
    message = Message(fallback=f"{len(pending)} pending approval(s)").header("Pending approvals")
    if not pending:
        message.text("Nothing is waiting for a decision.")
    else:
        message.table(
            ["id", "action", "summary", "requester", "needs", "expires"],
            [
                [
                    f"#{v.id}",
                    v.action,
                    shorten(v.summary, 60),
                    f"<@{v.requester}>",
                    f"{v.approvals}/{v.required_approvals} {v.approver_role}",
                    timestamp(v.expires_at),
                ]
                for v in pending
            ],
        )
        message.context(f"Review one with `{ctx.command_prefix} approval <id>`.")
    return Reply(
        message,
        data={"pending": [v.to_json() for v in pending]},
    )


@registry.command(
    "approval",
    help="Show one approval request with its buttons",
    args=[Arg("id", type=ident("approval request"))],
    audit=False,
    examples=["approval 12"],
)
def approval_show(ctx: CommandContext, id: int) -> Reply:
    view = ctx.core.approvals.get(id)
    return Reply(
        _card(ctx, view),
        data=view.to_json(),
    )


def _card(ctx: CommandContext, view: ApprovalView) -> Message:
    """A change's approval is shown as the change's own card (one message per change)."""
    change = ctx.core.changes.for_approval(view.id)
    if change is None:
        return render_card(view)
    change, approval, job = ctx.core.changes.details(change.id)
    return render_change(change, approval, job)


def _decide(
    ctx: CommandContext, id: int, decision: str, note: str | None, digest: str | None
) -> Reply:
    result = ctx.core.approvals.decide(id, ctx.user, decision, note=note, digest=digest)
    view = result.view
    change = ctx.core.changes.for_approval(view.id)
    reply = Reply(
        _card(ctx, view),
        data={
            "id": view.id,
            "status": view.status,
            "result": view.result,
            "change": change.id if change else None,
        },
    )
    reply.replace_original = True
    if view.status == "failed":
        reply.ok = False
        reply.data["error"] = view.result
    return reply


@registry.command(
    "approve",
    help="Approve a pending request (the Approve button's text twin)",
    role=Role.OPERATOR,
    args=[Arg("id", type=ident("approval request"))],
    flags=[
        Flag("digest", "the digest you reviewed; refuses if the request differs"),
        Flag("note", "a comment recorded with your decision"),
    ],
    examples=["approve 12", "approve 12 --digest 6126f8a6b7af"],
)
def approve(ctx: CommandContext, id: int, digest: str | None, note: str | None) -> Reply:
    return _decide(ctx, id, "approve", note, digest)


@registry.command(
    "reject",
    help="Reject a pending request (the Reject button's text twin)",
    role=Role.OPERATOR,
    args=[Arg("id", type=ident("approval request"))],
    flags=[Flag("note", "why; shown on the card")],
    examples=["reject 12 --note 'too big for venus'"],
)
def reject(ctx: CommandContext, id: int, note: str | None) -> Reply:
    return _decide(ctx, id, "reject", note, None)
