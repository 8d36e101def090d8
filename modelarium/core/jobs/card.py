"""One job-card renderer: the stage line, the progress bar with bytes, speed and ETA, retries,
and the report a job leaves when it ends. Standalone job cards and change cards both use it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelarium.config.units import format_duration, format_size
from modelarium.core.messages import Button, Message

if TYPE_CHECKING:
    from modelarium.core.jobs.service import JobView

ICONS = {"queued": "🕓", "running": "⚙️", "succeeded": "✅", "failed": "❌", "cancelled": "🚫"}


def progress_label(progress: dict[str, Any]) -> str:
    """``pulling abc · 1.2 GB / 4.0 GB · 310 MB/s · ETA 9s · 3/8 files``: the job's own message
    (unless file counts say the same), then bytes, speed, ETA and file counts when known."""
    message = str(progress.get("message") or "")
    files = progress.get("files_total")
    parts = [message] if message and not files else []
    if progress.get("unit") in ("B", "bytes") and progress.get("total"):
        if files or " / " not in message:
            parts.append(
                f"{format_size(float(progress.get('done') or 0))} / "
                f"{format_size(float(progress['total']))}"
            )
        if progress.get("speed"):
            parts.append(f"{format_size(float(progress['speed']))}/s")
        if progress.get("eta") is not None:
            parts.append(f"ETA {format_duration(float(progress['eta']))}")
    if files:
        parts.append(f"{progress.get('files_done', 0)}/{files} files")
    return " · ".join(parts)


def add_job_body(message: Message, view: JobView, *, labels: dict[str, str] | None = None) -> None:
    """Stages, progress, retry state, then the job's report lines or its error."""
    labels = labels or {}
    stages = []
    for stage in view.stages:
        label = labels.get(stage, stage)
        if stage in view.completed_stages:
            stages.append(f"{label} ✓")
        elif stage == view.stage and view.status == "running":
            stages.append(f"*{label}* …")
        else:
            stages.append(label)
    if len(stages) > 1 or (stages and view.status == "running"):
        message.text(" → ".join(stages))
    progress = view.progress
    if view.status == "running" and progress.get("total"):
        fraction = float(progress.get("done") or 0) / float(progress["total"])
        message.progress(fraction, progress_label(progress))
    elif view.status == "running" and progress.get("message"):
        message.text(str(progress["message"]))
    if view.status == "queued" and view.attempts:
        message.context(f"retrying (attempt {view.attempts + 1}/{view.max_attempts})")
    if view.status == "succeeded":
        for line in (view.state.get("result") or {}).get("report") or []:
            message.text(str(line))
    if view.error:
        message.text(f"Error: {view.error}")


def took(view: JobView) -> str | None:
    if view.finished_at and view.started_at:
        return format_duration((view.finished_at - view.started_at).total_seconds())
    return None


def render_job(view: JobView) -> Message:
    """The card of a job that is not part of a change (verify, pull, a task run)."""
    icon = ICONS.get(view.status, "")
    message = Message(fallback=f"{icon} Job #{view.id} {view.status}: {view.summary}")
    message.header(f"{icon} Job #{view.id}: {view.summary}"[:150])
    add_job_body(message, view)
    info = [f"status: {view.status}", f"by <@{view.created_by}>"]
    if took(view):
        info.append(f"took {took(view)}")
    message.context(" · ".join(info))
    if not view.done:
        message.buttons(
            Button("Cancel", f"cancel {view.id}", style="danger", confirm=f"Cancel job #{view.id}?")
        )
    return message
