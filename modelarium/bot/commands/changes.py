"""`/model changes|change|revert`, and the one reply every command that proposes a change uses."""

from __future__ import annotations

from typing import Any

from modelarium.bot.commands.context import CommandContext
from modelarium.bot.commands.parsing import ident, positive_int, user_id
from modelarium.bot.commands.registry import registry
from modelarium.bot.commands.spec import Arg, Flag
from modelarium.bot.pagination import PAGE_SIZE, Page, page_buttons, page_count
from modelarium.bot.reply import Reply
from modelarium.core.changes import Proposal
from modelarium.core.changes.card import ICONS, render_change, status_label
from modelarium.core.errors import UsageError
from modelarium.core.messages import Message, timestamp
from modelarium.core.rbac import Role

DIFF_PREVIEW = 12


def proposal_reply(
    ctx: CommandContext, proposal: Proposal, *, data: dict[str, Any] | None = None
) -> Reply:
    """What the proposer sees, the same on every front; ``data`` always carries ``change``,
    ``approval``, ``job`` and ``digest`` beside the command's own figures."""
    change, approval, job = proposal.change, proposal.approval, proposal.job
    prefix = ctx.command_prefix
    message = Message(fallback=f"Change #{change.id}: {change.summary}")
    reply_data = {**(data or {}), **proposal.to_json()}
    if approval is not None:
        message.text(
            f"⏳ *{change.summary}* needs {approval.required_approvals} approval(s) from an "
            f"{approval.approver_role}: change *#{change.id}*, approval request *#{approval.id}* "
            f"(digest `{change.short_digest}`)."
        )
        if change.reasons:
            message.context("Why: " + "; ".join(change.reasons))
        if change.diff:
            message.code("\n".join(change.diff[:DIFF_PREVIEW]))
        message.context(
            f"The change's card is posted for review. An approver can run "
            f"`{prefix} approve {approval.id}`; follow it with `{prefix} change {change.id}`."
        )
    elif change.status == "succeeded":
        lines = change.report or [f"✅ {change.summary}."]
        for line in lines:
            message.text(line)
        message.context(f"change #{change.id} · undo with `{prefix} revert {change.id}`")
    elif change.done:
        message.text(f"{ICONS.get(change.status, '')} {change.summary}: {change.outcome}")
        reply_data["error"] = change.outcome
        return Reply(message, ok=False, data=reply_data)
    else:
        assert job is not None
        message.text(f"⚙️ *{change.summary}*: change *#{change.id}*, running as job *#{job.id}*.")
        message.context(
            f"Progress is on the change's card. `{prefix} change {change.id}` · "
            f"`{prefix} cancel {job.id}`"
        )
    for warning in change.warnings:
        message.text(f"⚠️ {warning}")
    return Reply(message, data=reply_data)


@registry.command(
    "changes",
    help="History of changes (installs, purges, role changes...), newest first",
    args=[
        Arg("target", "any part of a target, e.g. a model, a user id or a location", required=False)
    ],
    flags=[
        Flag("kind", "only this kind, e.g. weights.purge", metavar="KIND"),
        Flag("user", "only changes proposed by this user", type=user_id, metavar="USER"),
        Flag("page", "page number", positive_int),
    ],
    examples=["changes", "changes Qwen/Qwen2.5-7B-Instruct", "changes --kind role.grant"],
    audit=False,
)
def changes(
    ctx: CommandContext, target: str | None, kind: str | None, user: str | None, page: int | None
) -> Reply:
    service = ctx.core.changes
    if kind is not None and kind not in service.kinds:
        raise UsageError(f"no change kind {kind!r}; kinds: {', '.join(service.kinds)}")
    number = page or 1
    views, total = service.history(
        target=target, kind=kind, user=user, offset=(number - 1) * PAGE_SIZE, limit=PAGE_SIZE
    )
    number, pages = page_count(number, total, PAGE_SIZE)
    message = Message(fallback=f"{total} change(s)").header("Changes")
    if not views:
        message.text("No changes match." if (target or kind or user) else "No changes yet.")
    else:
        message.table(
            ["id", "kind", "target", "status", "by", "when"],
            [
                [
                    f"#{v.id}",
                    v.kind,
                    v.target,
                    f"{ICONS.get(v.status, '')} {status_label(v)}",
                    f"<@{v.requested_by}>",
                    timestamp(v.created_at),
                ]
                for v in views
            ],
        )
        current: Page[object] = Page(list(views), number, pages, total)
        if pages > 1:
            message.context(current.label)
        command = "changes" + (f" {target}" if target else "")
        command += (f" --kind {kind}" if kind else "") + (f" --user {user}" if user else "")
        message.buttons(*page_buttons(current, command))
        message.context(f"Details: `{ctx.command_prefix} change <id>`.")
    return Reply(
        message,
        data={
            "changes": [v.to_json() for v in views],
            "page": number,
            "pages": pages,
            "total": total,
        },
    )


@registry.command(
    "change",
    help="One change: its plan and diff, approvals, job, outcome, and what reverted it",
    args=[Arg("id", type=ident("change"))],
    examples=["change 12"],
    audit=False,
)
def change(ctx: CommandContext, id: int) -> Reply:
    view, approval, job = ctx.core.changes.details(id)
    message = render_change(view, approval, job)
    return Reply(
        message,
        data={
            **view.to_json(),
            "change": view.id,
            "approval": view.approval_id,
            "job": view.job_id,
            "approval_status": approval.status if approval else None,
            "job_status": job.status if job else None,
        },
    )


@registry.command(
    "revert",
    help="Propose the inverse of a change that succeeded (approved like any other change)",
    role=Role.OPERATOR,
    args=[Arg("id", type=ident("change"))],
    examples=["revert 12"],
)
def revert(ctx: CommandContext, id: int) -> Reply:
    proposal = ctx.core.changes.revert(id, ctx.user, ctx.channel)
    return proposal_reply(ctx, proposal, data={"reverts": id})
