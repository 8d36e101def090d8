"""`/model deploy`, `/model deployments` and `/model deployment show|diff|history|stop|start|
rollback|delete`: serving models on Kubernetes with KServe, every change through approvals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from modelarium.bot.commands.changes import proposal_reply
from modelarium.bot.commands.context import CommandContext
from modelarium.bot.commands.parsing import ident, positive_int
from modelarium.bot.commands.registry import registry
from modelarium.bot.commands.spec import Arg, Flag
from modelarium.bot.pagination import page_buttons, paginate
from modelarium.bot.reply import Attachment, Reply
from modelarium.config.units import format_duration, parse_duration
from modelarium.core.deployments import DeployRequest, to_yaml, unified
from modelarium.core.deployments.changes import (
    DELETE,
    DEPLOY,
    ROLLBACK,
    START,
    STOP,
    deploy_change_plan,
)
from modelarium.core.deployments.status import event_line, health
from modelarium.core.errors import PermissionDeniedError, UsageError
from modelarium.core.messages import Message, iso_time, shorten, timestamp
from modelarium.core.rbac import Role

MODEL = Arg("model", "org/name, or org/name@revision (a branch, tag or commit)")
NAME = Arg("name", "the deployment's name, or namespace/name")
NAMESPACE = Flag("namespace", "the Kubernetes namespace (default: the first allowed one)")
INLINE_YAML_LINES = 30
"""A longer manifest goes as a file (a Slack upload; written to disk by the terminal fronts)."""


def _ago(ctx: CommandContext, when: datetime | None) -> str:
    if when is None:
        return "—"
    return format_duration(max(0.0, (ctx.core.clock.now() - when).total_seconds()))


def _traffic(traffic: tuple[dict[str, Any], ...] | list[dict[str, Any]]) -> str:
    parts = [f"{t.get('percent', 0)}% {t.get('revisionName', '?')}" for t in traffic]
    return ", ".join(parts) or "—"


# -- /model deploy -------------------------------------------------------------------------------
@registry.command(
    "deploy",
    help="Serve a model on Kubernetes with KServe (vLLM): preview, server-side dry run, approval",
    role=Role.OPERATOR,
    args=[MODEL],
    flags=[
        Flag("name", "the InferenceService's name (default: from the model's name)"),
        NAMESPACE,
        Flag("gpu", "GPU type (from /model gpus), e.g. A100-80GB or L4"),
        Flag("gpus", "exactly this many GPUs (tensor parallel size)", type=positive_int),
        Flag("context", "wanted --max-model-len, e.g. 32k", metavar="TOKENS"),
        Flag("replicas", "replicas, or a range to autoscale in", metavar="MIN[..MAX]"),
        Flag("set", "an extra engine argument (repeatable)", metavar="KEY=VALUE", repeat=True),
        Flag("force", "take over fields another field manager owns (admins)", None),
        Flag("dry-run", "preview and dry-run only; propose nothing", None),
    ],
    examples=[
        "deploy meta-llama/Llama-3.1-8B-Instruct --dry-run",
        "deploy Qwen/Qwen2.5-7B-Instruct --namespace prod --gpu L4 --context 16k",
        "deploy org/model@abc1234 --name chat --replicas 1..3 --set max-num-seqs=64",
    ],
)
def deploy(
    ctx: CommandContext,
    model: str,
    name: str | None,
    namespace: str | None,
    gpu: str | None,
    gpus: int | None,
    context: str | None,
    replicas: str | None,
    set: list[str],
    force: bool,
    dry_run: bool,
) -> Reply:
    if force and ctx.role < Role.ADMIN:
        raise PermissionDeniedError("--force takes fields over from other managers: admins only")
    service = ctx.core.deployments
    plan = service.plan(
        DeployRequest(model, name, namespace, gpu, gpus, context, replicas, tuple(set), force)
    )
    preview = service.preview(plan)
    yaml_text = to_yaml(plan.manifest)
    verdict = preview.dry_run
    data: dict[str, Any] = {
        "name": plan.name,
        "namespace": plan.namespace,
        "model": plan.source.repo,
        "commit": plan.source.commit,
        "storage_uri": plan.source.storage_uri,
        "verified": plan.source.verified,
        "gpu": plan.gpu,
        "gpus": plan.gpus,
        "manifest": plan.manifest,
        "diff": preview.diff,
        "changes": preview.changes,
        "dry_run": verdict.to_json(),
        "warnings": list(plan.warnings),
        "change": None,
        "approval": None,
        "job": None,
        "digest": None,
    }
    files: list[Attachment] = []
    long = yaml_text.count("\n") > INLINE_YAML_LINES
    if long:
        files.append(Attachment(f"{plan.name}.yaml", yaml_text.encode(), title=plan.target))
    if dry_run or not verdict.ok:
        message = Message(fallback=f"{plan.summary()} (preview)")
        message.header(f"Deploy preview: {plan.namespace}/{plan.name}"[:150])
        message.text(f"*{plan.summary()}* — {plan.fit.summary()}")
        if long:
            message.context(f"The manifest is attached: `{plan.name}.yaml`.")
        else:
            message.code(yaml_text)
        if preview.live is None:
            message.context(f"No InferenceService {plan.namespace}/{plan.name} exists yet.")
        elif preview.diff:
            message.text("*Diff against the live object*")
            message.code(preview.diff)
        else:
            message.context("The live object already matches.")
        icon = "✅" if verdict.ok else "❌"
        message.text(f"{icon} *Server-side dry run*: " + "; ".join(verdict.messages))
        for warning in plan.warnings:
            message.text(f"⚠️ {warning}")
        if not verdict.ok:
            reason = "; ".join(verdict.messages)
            message.context("Nothing was proposed.")
            data["error"] = f"the dry run failed: {reason}"
            return Reply(message, ok=False, data=data, files=files)
        message.context("Deploy it: the same command without `--dry-run`.")
        return Reply(message, data=data, files=files)
    proposal = ctx.core.changes.propose(
        DEPLOY,
        plan.params(),
        ctx.user,
        ctx.channel,
        plan=deploy_change_plan(plan, preview),
    )
    reply = proposal_reply(ctx, proposal, data=data)
    reply.files.extend(files)
    return reply


# -- /model deployments -------------------------------------------------------------------------
@registry.command(
    "deployments",
    help="Deployments: model@commit, ready, URL, GPUs, traffic, age",
    flags=[NAMESPACE, Flag("page", "page number", positive_int)],
    examples=["deployments", "deployments --namespace prod"],
    audit=False,
)
def deployments(ctx: CommandContext, namespace: str | None, page: int | None) -> Reply:
    overview = ctx.core.deployments.overview(namespace)
    rows = []
    for view in overview.rows:
        live = overview.live.get(view.key)
        state = health(live) if live is not None else None
        if view.state in ("deleted",):
            continue
        ready = (
            "?"
            if overview.note and state is None
            else view.state
            if state is None
            else ("✅ ready" if state.ready else f"❌ {state.state}")
        )
        rows.append(
            {
                **view.to_json(),
                "key": view.key,
                "ready": state.ready if state else view.ready,
                "status": ready,
                "url": (state.url if state else None) or view.url,
                "traffic": list(state.traffic) if state else [],
                "age": _ago(ctx, view.created_at),
            }
        )
    current = paginate(rows, page)
    message = Message(fallback=f"{len(rows)} deployment(s)").header("Deployments")
    if overview.note:
        message.context(f"⚠️ The cluster could not be read ({overview.note}); from the record.")
    if not rows:
        message.text(f"No deployments. Deploy one with `{ctx.command_prefix} deploy <model>`.")
    else:
        message.table(
            ["name", "model@commit", "ready", "URL", "GPUs", "traffic", "age"],
            [
                [
                    r["key"],
                    f"{r['model']}@{r['commit'][:7]}",
                    r["status"],
                    r["url"] or "—",
                    str(r["gpus"]),
                    _traffic(r["traffic"]),
                    r["age"],
                ]
                for r in current.items
            ],
        )
        if current.pages > 1:
            message.context(current.label)
        command = "deployments" + (f" --namespace {namespace}" if namespace else "")
        message.buttons(*page_buttons(current, command))
    return Reply(
        message,
        data={
            "deployments": current.items,
            "page": current.number,
            "pages": current.pages,
            "total": current.total,
            "note": overview.note,
        },
    )


# -- /model deployment ... ----------------------------------------------------------------------
@registry.command(
    "deployment show",
    help="One deployment: conditions, URL, revisions, traffic, the last Warning events",
    args=[NAME],
    flags=[NAMESPACE],
    examples=["deployment show chat", "deployment show prod/chat"],
    audit=False,
)
def deployment_show(ctx: CommandContext, name: str, namespace: str | None) -> Reply:
    found = ctx.core.deployments.describe(name, namespace)
    view, live = found.view, found.live
    state = health(live)
    message = Message(fallback=f"Deployment {view.key}").header(f"Deployment {view.key}"[:150])
    status = "✅ Ready" if state.ready else f"❌ {state.state}: {state.why()}"
    message.fields(
        ("Model", f"{view.repo}@{view.commit[:12]}"),
        ("State", status[:300]),
        ("URL", state.url or "—"),
        ("GPUs", str(view.gpus)),
        ("Revision", f"{state.revision or '—'} (latest created {state.latest or '—'})"),
        ("Traffic", _traffic(state.traffic)),
        ("Applied by", f"change #{view.change_id}" if view.change_id else "—"),
        ("Weights", view.location or "from the Hub (unverified)"),
    )
    if state.conditions:
        message.table(
            ["condition", "status", "reason", "message"],
            [
                [
                    str(c.get("type")),
                    str(c.get("status")),
                    str(c.get("reason") or ""),
                    shorten(str(c.get("message") or ""), 120),
                ]
                for c in state.conditions
            ],
        )
    if found.events:
        message.details("Last Warning events", [event_line(e) for e in found.events])
    prefix = ctx.command_prefix
    message.context(
        f"`{prefix} deployment history {view.key}` · `{prefix} deployment diff {view.key}`"
    )
    return Reply(
        message,
        data={
            **view.to_json(),
            "status": state.state,
            "why": state.why(),
            "url": state.url,
            "revision": state.revision,
            "latest_revision": state.latest,
            "traffic": list(state.traffic),
            "conditions": list(state.conditions),
            "events": [
                {"object": (e.get("involvedObject") or {}).get("name"), "reason": e.get("reason"),
                 "message": e.get("message"), "count": e.get("count")}
                for e in found.events
            ],
        },
    )  # fmt: skip


@registry.command(
    "deployment diff",
    help="What differs between the live object and the spec Modelarium last applied",
    args=[NAME],
    flags=[NAMESPACE],
    examples=["deployment diff chat"],
    audit=False,
)
def deployment_diff(ctx: CommandContext, name: str, namespace: str | None) -> Reply:
    service = ctx.core.deployments
    view = service.store.find(name, namespace)
    client = service.client()
    try:
        live = client.get_inference_service(view.namespace, view.name)
    finally:
        client.close()
    text = unified(live, view.manifest) if live is not None else ""
    message = Message(fallback=f"Diff of {view.key}").header(f"Diff: {view.key}"[:150])
    if live is None:
        message.text(f"❌ {view.key} does not exist in the cluster (state: {view.state}).")
    elif text:
        message.text(f"The live object differs from change #{view.change_id}'s spec:")
        message.code(text)
    else:
        message.text(f"✅ The live object matches the spec of change #{view.change_id}.")
    return Reply(message, data={"deployment": view.key, "diff": text, "exists": live is not None})


def _parse_when(ctx: CommandContext, text: str) -> datetime:
    """An ISO time (UTC unless it says otherwise), or a duration ago: ``2h``, ``30m``."""
    value = text.strip()
    try:
        return ctx.core.clock.now() - timedelta(seconds=parse_duration(value))
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"--at expects a time like 2024-05-01T14:05 (UTC) or a duration ago like 2h, not "
            f"{text!r}"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@registry.command(
    "deployment history",
    help="Every spec applied to a deployment: who proposed and approved it, digest, outcome",
    args=[NAME],
    flags=[
        NAMESPACE,
        Flag("at", "what served at that time (ISO, UTC), or that long ago (2h)", metavar="TIME"),
    ],
    examples=["deployment history chat", "deployment history chat --at 2024-05-01T14:05"],
    audit=False,
)
def deployment_history(
    ctx: CommandContext, name: str, namespace: str | None, at: str | None
) -> Reply:
    service = ctx.core.deployments
    if at is not None:
        when = _parse_when(ctx, at)
        served = service.served_at(name, namespace, when)
        view = served.view
        message = Message(fallback=f"{view.key} at {iso_time(when)}")
        stamp = timestamp(when, seconds=True)
        if served.spec is None or served.nothing:
            message.text(f"At {stamp}, {view.key} served {served.nothing or 'nothing'}.")
        else:
            spec = served.spec
            message.text(
                f"At {stamp}, {view.key} served *{spec.repo}@{(spec.commit or '')[:12]}* "
                f"(history #{spec.number}, change #{spec.change_id}, since "
                f"{timestamp(spec.effective_at)})."
            )
        return Reply(
            message,
            data={
                "deployment": view.key,
                "at": when.isoformat(),
                "served": served.spec.to_json() if served.spec and not served.nothing else None,
                "entry": served.entry.to_json() if served.entry else None,
                "nothing": served.nothing or None,
            },
        )
    view = service.store.find(name, namespace)
    events = service.store.history(view.id)
    message = Message(fallback=f"History of {view.key}").header(f"History: {view.key}"[:150])
    if not events:
        message.text("No history yet.")
    else:
        message.table(
            ["#", "when", "action", "model@commit", "proposed by", "approved by", "digest",
             "outcome"],
            [
                [
                    str(e.number),
                    timestamp(e.started_at),
                    e.action + (f" (change #{e.change_id})" if e.change_id else ""),
                    f"{e.repo}@{(e.commit or '')[:7]}",
                    f"<@{e.proposed_by}>" if e.proposed_by else "—",
                    ", ".join(f"<@{u}>" for u in e.approved_by) or "—",
                    (e.digest or "")[:12] or "—",
                    e.outcome + (f": {e.detail}" if e.detail else ""),
                ]
                for e in events
            ],
        )  # fmt: skip
        message.context(
            f"Re-apply an earlier spec: `{ctx.command_prefix} deployment rollback {view.key} "
            "--to <#>`."
        )
    return Reply(message, data={"deployment": view.key, "history": [e.to_json() for e in events]})


def _propose(ctx: CommandContext, kind: str, params: dict[str, Any]) -> Reply:
    proposal = ctx.core.changes.propose(kind, params, ctx.user, ctx.channel)
    return proposal_reply(
        ctx, proposal, data={"deployment": proposal.change.target.removeprefix("deployment:")}
    )


@registry.command(
    "deployment stop",
    help="Stop a deployment (KServe's stop annotation): no pods, GPUs freed, spec kept",
    role=Role.OPERATOR,
    args=[NAME],
    flags=[NAMESPACE],
    examples=["deployment stop chat"],
)
def deployment_stop(ctx: CommandContext, name: str, namespace: str | None) -> Reply:
    return _propose(ctx, STOP, {"name": name, "namespace": namespace})


@registry.command(
    "deployment start",
    help="Start a stopped deployment again and wait for it to be Ready",
    role=Role.OPERATOR,
    args=[NAME],
    flags=[NAMESPACE],
    examples=["deployment start chat"],
)
def deployment_start(ctx: CommandContext, name: str, namespace: str | None) -> Reply:
    return _propose(ctx, START, {"name": name, "namespace": namespace})


@registry.command(
    "deployment rollback",
    help="Re-apply a recorded earlier spec (default: the one before the current)",
    role=Role.OPERATOR,
    args=[NAME],
    flags=[
        NAMESPACE,
        Flag("to", "the history entry (#) to go back to", type=ident("history entry"), metavar="N"),
    ],
    examples=["deployment rollback chat", "deployment rollback prod/chat --to 3"],
)
def deployment_rollback(
    ctx: CommandContext, name: str, namespace: str | None, to: int | None
) -> Reply:
    return _propose(ctx, ROLLBACK, {"name": name, "namespace": namespace, "to": to})


@registry.command(
    "deployment delete",
    help="Delete a deployment's InferenceService (always needs an approval)",
    role=Role.OPERATOR,
    args=[NAME],
    flags=[NAMESPACE],
    examples=["deployment delete chat"],
)
def deployment_delete(ctx: CommandContext, name: str, namespace: str | None) -> Reply:
    return _propose(ctx, DELETE, {"name": name, "namespace": namespace})
