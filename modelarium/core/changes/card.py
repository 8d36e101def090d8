"""The one living message of a change: proposal, approvals, job progress and outcome, in place."""

from __future__ import annotations

from modelarium.core.approvals import ApprovalView
from modelarium.core.changes.kinds import ChangeView
from modelarium.core.jobs import JobView, add_job_body
from modelarium.core.jobs.card import took
from modelarium.core.messages import Button, Form, FormField, Message

ICONS = {
    "pending_approval": "⏳",
    "queued": "🕓",
    "running": "⚙️",
    "succeeded": "✅",
    "failed": "❌",
    "rejected": "⛔",
    "expired": "⌛",
    "cancelled": "🚫",
}
DIFF_LINES = 40


def status_label(change: ChangeView) -> str:
    return change.status.replace("_", " ")


def render_change(
    change: ChangeView,
    approval: ApprovalView | None,
    job: JobView | None,
    *,
    waiting: list[str] | None = None,
    labels: dict[str, str] | None = None,
) -> Message:
    icon = ICONS.get(change.status, "")
    message = Message(
        fallback=f"{icon} Change #{change.id} ({status_label(change)}): {change.summary}"
    )
    message.header(f"{icon} Change #{change.id}: {status_label(change)}"[:150])
    message.text(f"*{change.summary}*")
    fields = [
        ("Kind", f"`{change.kind}`"),
        ("Target", f"`{change.target}`"),
        ("Requested by", f"<@{change.requested_by}>"),
        ("Digest", f"`{change.short_digest}`"),
    ]
    if approval is not None:
        fields.append(
            (
                "Approvals",
                f"{approval.approvals}/{approval.required_approvals} from an "
                f"{approval.approver_role} (request #{approval.id})",
            )
        )
    if job is not None:
        fields.append(("Job", f"#{job.id}"))
    message.fields(*fields)
    if change.reasons and change.plan.get("approval_needed"):
        message.context("Needs approval: " + "; ".join(change.reasons))
    if change.diff:
        lines = change.diff[:DIFF_LINES]
        if len(change.diff) > DIFF_LINES:
            lines.append(f"… {len(change.diff) - DIFF_LINES} more line(s)")
        message.code("\n".join(lines))
    for warning in change.warnings:
        message.text(f"⚠️ {warning}")
    if approval is not None:
        for user, decision, note in approval.votes:
            verb = "approved" if decision == "approve" else "rejected"
            message.context(f"{verb} by <@{user}>" + (f": {note}" if note else ""))
    if job is not None:
        add_job_body(message, job, labels=labels)
        if took(job):
            message.context(f"job #{job.id} · took {took(job)}")
    elif change.done and change.outcome:
        message.text(f"Result: {change.outcome}")
    links = []
    if change.reverts_id:
        links.append(f"reverts change #{change.reverts_id}")
    if change.supersedes_id:
        links.append(f"supersedes change #{change.supersedes_id}")
    if change.reverted_by_id:
        links.append(f"reverted by change #{change.reverted_by_id}")
    if links:
        message.context(" · ".join(links))
    if approval is not None and approval.status == "pending":
        if waiting:
            message.context("Waiting for: " + " ".join(waiting))
        message.buttons(
            Button(
                "Approve",
                f"approve {approval.id} --digest {approval.short_digest}",
                style="primary",
                confirm=f"Approve: {change.summary[:200]}?",
            ),
            Button(
                "Reject",
                f"reject {approval.id}",
                style="danger",
                form=Form(
                    title="Reject change",
                    command=f"reject {approval.id}",
                    fields=(FormField("note", "Reason", multiline=True, optional=True),),
                    submit="Reject",
                ),
            ),
        )
    elif job is not None and not job.done:
        message.buttons(
            Button("Cancel", f"cancel {job.id}", style="danger", confirm=f"Cancel job #{job.id}?")
        )
    elif change.status == "succeeded" and change.reverted_by_id is None:
        message.buttons(
            Button(
                "Revert", f"revert {change.id}", confirm=f"Propose reverting change #{change.id}?"
            )
        )
    return message


def render_outcome_notice(change: ChangeView) -> Message:
    """The follow-up in the change's thread that tells the requester how it ended."""
    icon = ICONS.get(change.status, "")
    text = f"{icon} <@{change.requested_by}> change #{change.id} {status_label(change)}"
    if change.status == "succeeded":
        text += f": {change.summary}"
    elif change.outcome:
        text += f": {change.outcome}"
    return Message(fallback=text).text(text)
