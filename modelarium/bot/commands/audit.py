"""`/model audit [--since] [--user]`, `/model audit export`, `/model audit verify`."""

from __future__ import annotations

from datetime import timedelta

from modelarium.bot.commands.context import CommandContext
from modelarium.bot.commands.parsing import positive_int, user_id
from modelarium.bot.commands.registry import registry
from modelarium.bot.commands.spec import Flag
from modelarium.bot.reply import Attachment, Reply
from modelarium.config.units import parse_duration
from modelarium.core.messages import Message, timestamp
from modelarium.core.rbac import Role


@registry.command(
    "audit",
    help="Recent audit entries: who did what, when, and the result",
    role=Role.OPERATOR,
    flags=[
        Flag("since", "how far back, e.g. 2h or 7d", type=parse_duration, metavar="DURATION"),
        Flag("user", "only this user", type=user_id),
        Flag("limit", "how many entries (default 20)", type=positive_int, default=20),
    ],
    examples=["audit", "audit --since 2h --user @alice"],
    audit=False,
)
def audit(ctx: CommandContext, since: float | None, user: str | None, limit: int) -> Reply:
    after = ctx.core.clock.now() - timedelta(seconds=since) if since else None
    records = ctx.core.audit.query(since=after, user=user, limit=min(limit, 200))
    message = Message(fallback=f"{len(records)} audit entries").header("Audit log")
    if not records:
        message.text("No entries match.")
    else:
        message.table(
            ["#", "when", "who", "what", "result"],
            [
                [
                    str(r.id),
                    timestamp(r.ts, seconds=True),
                    f"<@{r.actor}>",
                    _clip(r.action + (f" {r.target}" if r.target else ""), 60),
                    r.result
                    + (f": {_clip(r.detail, 60)}" if r.detail and r.result != "ok" else ""),
                ]
                for r in records
            ],
        )
    return Reply(
        message,
        data={
            "entries": [
                {
                    "id": r.id,
                    "ts": r.ts.isoformat(),
                    "actor": r.actor,
                    "action": r.action,
                    "target": r.target,
                    "result": r.result,
                    "detail": r.detail,
                }
                for r in records
            ]
        },
    )


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


@registry.command(
    "audit export",
    help="Download the audit log as CSV or JSON",
    role=Role.ADMIN,
    flags=[
        Flag("format", choices=("csv", "json"), default="csv"),
        Flag("since", "how far back, e.g. 30d", type=parse_duration, metavar="DURATION"),
    ],
    examples=["audit export --format json --since 30d"],
)
def audit_export(ctx: CommandContext, format: str, since: float | None) -> Reply:
    after = ctx.core.clock.now() - timedelta(seconds=since) if since else None
    content = ctx.core.audit.export(format, since=after)
    stamp = ctx.core.clock.now().strftime("%Y%m%dT%H%M%SZ")
    filename = f"modelarium-audit-{stamp}.{format}"
    reply = Reply.say(
        f"Audit log export: {filename} ({len(content)} bytes).",
        filename=filename,
        bytes=len(content),
    )
    reply.files.append(Attachment(filename, content, title="Modelarium audit log"))
    return reply


@registry.command(
    "audit verify", help="Check the audit chain and signatures for tampering", role=Role.ADMIN
)
def audit_verify(ctx: CommandContext) -> Reply:
    report = ctx.core.audit.verify()
    if report.ok:
        return Reply.say(
            f"✅ Audit log intact: {report.checked} entries verified.",
            ok=True,
            checked=report.checked,
        )
    reply = Reply.error(
        f"Audit log tampered: {report.problem}",
        data={"checked": report.checked, "bad_id": report.bad_id},
    )
    return reply
