"""`/model alerts`, `/model alert ack`, `/model silence|silences|unsilence`."""

from __future__ import annotations

from modelarium.bot.commands.context import CommandContext
from modelarium.bot.commands.parsing import ident
from modelarium.bot.commands.registry import registry
from modelarium.bot.commands.spec import Arg, Flag
from modelarium.bot.reply import Reply
from modelarium.config.units import format_duration, parse_duration
from modelarium.core.messages import Message, shorten, timestamp
from modelarium.core.rbac import Role


@registry.command("alerts", help="Alerts that are firing or pending", audit=False)
def alerts(ctx: CommandContext) -> Reply:
    views = ctx.core.alerts.active()
    message = Message(fallback=f"{len(views)} active alert(s)").header("Alerts")
    if not views:
        message.text("✅ Nothing is firing.")
    else:
        message.table(
            ["id", "state", "severity", "summary", "note"],
            [
                [
                    f"#{a.id}",
                    a.state,
                    a.severity,
                    shorten(a.summary, 70),
                    ("silenced" if a.silenced_by else "")
                    + (f" acked by <@{a.acked_by}>" if a.acked_by else ""),
                ]
                for a in views
            ],
        )
    return Reply(
        message,
        data={
            "alerts": [
                {
                    "id": a.id,
                    "rule": a.rule,
                    "fingerprint": a.fingerprint,
                    "state": a.state,
                    "severity": a.severity,
                    "summary": a.summary,
                    "value": a.value,
                    "silenced": a.silenced_by is not None,
                    "acked_by": a.acked_by,
                }
                for a in views
            ]
        },
    )


@registry.command(
    "alert ack",
    help="Acknowledge a firing alert (stops reminders)",
    role=Role.OPERATOR,
    args=[Arg("id", type=ident("alert"))],
    flags=[Flag("note", "what you are doing about it")],
    examples=["alert ack 4 --note 'moving weights to venus'"],
)
def alert_ack(ctx: CommandContext, id: int, note: str | None) -> Reply:
    view = ctx.core.alerts.acknowledge(id, ctx.user, note)
    return Reply.say(f"Acknowledged alert #{id}: {view.summary}", alert_id=id)


@registry.command(
    "silence",
    help="Silence an alert, rule or pattern for a while",
    role=Role.OPERATOR,
    args=[
        Arg("alert", "an alert id, a rule name or a fingerprint pattern"),
        Arg("duration", "e.g. 30m, 2h, 1d", type=parse_duration),
    ],
    flags=[Flag("comment", "why")],
    examples=["silence disk_usage 2h", "silence 'task_failing{task=hub_cache_refresh}' 1d"],
)
def silence(ctx: CommandContext, alert: str, duration: float, comment: str | None) -> Reply:
    view = ctx.core.alerts.silence(alert, duration, ctx.user, comment or "")
    return Reply.say(
        f"🔕 Silenced `{view.matcher}` for {format_duration(duration)} "
        f"(until {timestamp(view.ends_at)}), silence #{view.id}.",
        silence_id=view.id,
        matcher=view.matcher,
        ends_at=view.ends_at.isoformat(),
    )


@registry.command("silences", help="Active silences", audit=False)
def silences(ctx: CommandContext) -> Reply:
    views = ctx.core.alerts.silences()
    message = Message(fallback=f"{len(views)} silence(s)").header("Silences")
    if not views:
        message.text("No active silences.")
    else:
        message.table(
            ["id", "matcher", "until", "by", "comment"],
            [
                [
                    f"#{s.id}",
                    s.matcher,
                    timestamp(s.ends_at),
                    f"<@{s.created_by}>",
                    shorten(s.comment, 40),
                ]
                for s in views
            ],
        )
    return Reply(
        message,
        data={
            "silences": [
                {"id": s.id, "matcher": s.matcher, "ends_at": s.ends_at.isoformat()} for s in views
            ]
        },
    )


@registry.command(
    "unsilence",
    help="End a silence now",
    role=Role.OPERATOR,
    args=[Arg("id", type=ident("silence"))],
    examples=["unsilence 3"],
)
def unsilence(ctx: CommandContext, id: int) -> Reply:
    if not ctx.core.alerts.expire_silence(id, ctx.user):
        return Reply.say(
            f"Nothing to do: silence #{id} has already ended, so nothing is silenced by it.",
            silence_id=id,
            changed=False,
        )
    return Reply.say(f"Silence #{id} ended.", silence_id=id, changed=True)
