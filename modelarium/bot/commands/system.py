"""`/model status|run|jobs|cancel|version`: the daemon, its tasks and the job queue."""

from __future__ import annotations

from datetime import datetime

from modelarium import __version__
from modelarium.bot.commands.context import CommandContext
from modelarium.bot.commands.parsing import ident
from modelarium.bot.commands.registry import registry
from modelarium.bot.commands.spec import Arg, Flag
from modelarium.bot.reply import Reply
from modelarium.config.units import format_duration
from modelarium.core.db.engine import database_health
from modelarium.core.echo import shown
from modelarium.core.errors import NotFoundError, UsageError
from modelarium.core.messages import Message, shorten
from modelarium.core.rbac import Role
from modelarium.core.scheduling.jobs import RUN_TASK_JOB

LEADER_LEASE = "scheduler"


def _ago(ctx: CommandContext, when: datetime | None) -> str:
    if when is None:
        return "never"
    delta = (ctx.core.clock.now() - when).total_seconds()
    return f"{format_duration(abs(delta))} {'ago' if delta >= 0 else 'from now'}"


@registry.command("version", help="Show the Modelarium version", audit=False)
def version(ctx: CommandContext) -> Reply:
    return Reply.say(f"Modelarium {__version__}", version=__version__)


@registry.command("status", help="Daemon health, periodic tasks, queue and alerts", audit=False)
def status(ctx: CommandContext) -> Reply:
    core = ctx.core
    db_ok, db_detail = database_health(core.db.engine)
    lease = core.tasks.lease_status(LEADER_LEASE)
    tasks = core.tasks.status()
    queue = core.jobs.queue_depth()
    firing = core.alerts.firing_count()
    ratio = core.cache.hit_ratio
    message = Message(fallback="Modelarium status").header("Modelarium status")
    leader = (
        f"{lease[0]} (token {lease[1]})"
        if lease and lease[2]
        else "no live daemon holds the scheduler lease"
    )
    message.fields(
        ("Database", f"{'ok' if db_ok else 'DOWN'} ({db_detail})"),
        ("Scheduler leader", leader),
        (
            "Queued jobs",
            str(sum(queue.values()))
            + (f" ({', '.join(f'{k}: {v}' for k, v in queue.items())})" if queue else ""),
        ),
        ("Alerts firing", str(sum(firing.values()))),
        ("Cache hit ratio", f"{ratio:.0%}" if ratio is not None else "no lookups yet"),
    )
    if tasks:
        message.table(
            ["task", "every", "last run", "result", "next run"],
            [
                [
                    t.name,
                    format_duration(t.interval),
                    _ago(ctx, t.last_run_at),
                    (t.last_status or "-")
                    + (f" ({shorten(t.last_summary, 40)})" if t.last_summary else ""),
                    _ago(ctx, t.next_run_at) if t.next_run_at else "-",
                ]
                for t in tasks
            ],
            title="Periodic tasks",
        )
    else:
        message.text("No periodic tasks are registered yet: the daemon has not started.")
    failed = core.notify.failed_deliveries()
    if failed:
        message.context(
            f"{len(failed)} notification(s) could not be delivered; latest: "
            f"{failed[0][0]} -> {failed[0][1] or 'no channel'}: {failed[0][2]}"
        )
    return Reply(
        message,
        data={
            "database": {"ok": db_ok, "detail": db_detail},
            "leader": {"holder": lease[0], "token": lease[1], "live": lease[2]} if lease else None,
            "tasks": [
                {
                    "name": t.name,
                    "interval": t.interval,
                    "last_status": t.last_status,
                    "last_run_at": t.last_run_at.isoformat() if t.last_run_at else None,
                    "next_run_at": t.next_run_at.isoformat() if t.next_run_at else None,
                    "consecutive_failures": t.consecutive_failures,
                }
                for t in tasks
            ],
            "queue": queue,
            "alerts_firing": firing,
            "cache_hit_ratio": ratio,
        },
    )


@registry.command(
    "run",
    help="Run a periodic task now (in the daemon)",
    role=Role.ADMIN,
    args=[Arg("task", "a task name from /model status")],
    examples=["run health_checks"],
)
def run(ctx: CommandContext, task: str) -> Reply:
    known = {t.name for t in ctx.core.tasks.status()}
    if task not in known:
        listed = ", ".join(sorted(known)) or "none yet (is the daemon running?)"
        raise NotFoundError(f"no task {task!r}; tasks: {listed}")
    view = ctx.core.jobs.enqueue(
        RUN_TASK_JOB, {"task": task}, created_by=ctx.user, channel=ctx.channel
    )
    return Reply.say(
        f"Queued job #{view.id}: run `{task}` now. Follow it with "
        f"`{ctx.command_prefix} jobs {view.id}`.",
        job_id=view.id,
        task=task,
    )


@registry.command(
    "jobs",
    help="Recent jobs, or one job in detail",
    args=[Arg("id", type=ident("job"), required=False)],
    flags=[
        Flag("active", "only queued and running jobs", type=None),
        Flag("kind", "only this kind of job"),
    ],
    examples=["jobs", "jobs --active", "jobs 12"],
    audit=False,
)
def jobs(ctx: CommandContext, id: int | None, active: bool, kind: str | None) -> Reply:
    if id is not None:
        view = ctx.core.jobs.get(id)
        return Reply(ctx.core.jobs.render(view), data=_job_data(view))
    kinds = sorted(ctx.core.jobs.kinds)
    if kind is not None and kind not in kinds:
        raise UsageError(f"no job kind {shown(kind)}; kinds: {', '.join(kinds)}")
    views = ctx.core.jobs.list(active_only=active, kind=kind)
    message = Message(fallback=f"{len(views)} job(s)").header("Jobs")
    if not views:
        message.text("No jobs.")
    else:
        message.table(
            ["id", "kind", "what", "status", "stage", "by", "age"],
            [
                [
                    f"#{v.id}",
                    v.kind,
                    shorten(v.summary, 40),
                    v.status,
                    v.stage or "-",
                    f"<@{v.created_by}>",
                    _ago(ctx, v.created_at),
                ]
                for v in views
            ],
        )
    return Reply(message, data={"jobs": [_job_data(v) for v in views]})


@registry.command(
    "cancel",
    help="Cancel a queued or running job",
    role=Role.OPERATOR,
    args=[Arg("id", type=ident("job"))],
    examples=["cancel 12"],
)
def cancel(ctx: CommandContext, id: int) -> Reply:
    view = ctx.core.jobs.cancel(id, ctx.user)
    text = (
        f"Job #{id} cancelled."
        if view.status == "cancelled"
        else f"Cancel requested for job #{id}; the worker stops at its next check."
    )
    return Reply.say(text, job_id=id, status=view.status)


@registry.command(
    "jobs retry",
    help="Run a failed job again: a new attempt that resumes after its last completed stage",
    role=Role.OPERATOR,
    args=[Arg("id", type=ident("job"))],
    examples=["jobs retry 12"],
)
def jobs_retry(ctx: CommandContext, id: int) -> Reply:
    view = ctx.core.jobs.retry(id, ctx.user)
    done = ", ".join(view.completed_stages)
    resume = f" after {done}" if done else ""
    change = view.params.get("change_id")
    of = f" (change #{change})" if change else ""
    return Reply.say(
        f"🔁 Job #{id}{of} is queued again: a worker resumes it{resume}. "
        f"Follow it with `{ctx.command_prefix} jobs {id}`.",
        job_id=id,
        status=view.status,
        change=change,
    )


def _job_data(view) -> dict:
    return {
        "id": view.id,
        "kind": view.kind,
        "summary": view.summary,
        "status": view.status,
        "stage": view.stage,
        "completed_stages": list(view.completed_stages),
        "attempts": view.attempts,
        "error": view.error,
        "progress": view.progress,
        "created_by": view.created_by,
    }
