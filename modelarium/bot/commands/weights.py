"""`/model install|weights|pin|unpin|verify|purge`: model weights on the storage locations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from modelarium.bot.commands.changes import proposal_reply
from modelarium.bot.commands.context import CommandContext
from modelarium.bot.commands.parsing import positive_int
from modelarium.bot.commands.registry import registry
from modelarium.bot.commands.spec import Arg, Flag
from modelarium.bot.nextsteps import ROWS_WITH_BUTTONS, add_steps, hub_link
from modelarium.bot.pagination import page_buttons, paginate
from modelarium.bot.reply import Reply
from modelarium.config.units import format_duration, format_size
from modelarium.core.messages import Button, Message
from modelarium.core.rbac import Role
from modelarium.core.weights.policy import POLICIES, PurgePlan
from modelarium.core.weights.service import (
    STATUSES,
    AlreadyInstalled,
    WeightView,
    parse_model_ref,
)

MODEL_ARG = Arg("model", "org/name, or org/name@revision (a branch, tag or commit)")
LOCATION = Flag("location", "a storage location (default: the first one)", metavar="L")


def _ago(ctx: CommandContext, when: datetime | None) -> str:
    if when is None:
        return "never"
    delta = (ctx.core.clock.now() - when).total_seconds()
    return "just now" if abs(delta) < 60 else f"{format_duration(abs(delta))} ago"


@registry.command(
    "install",
    help="Download, verify and install model weights into a volume or a bucket location "
    "(resumable; one progress card per install)",
    role=Role.OPERATOR,
    args=[MODEL_ARG],
    flags=[
        LOCATION,
        Flag("force", "download and verify an installed revision again (needs approval)", None),
    ],
    examples=[
        "install Qwen/Qwen2.5-7B-Instruct",
        "install org/model@v1.0 --location shared",
        "install org/model --location models-s3",
    ],
)
def install(ctx: CommandContext, model: str, location: str | None, force: bool) -> Reply:
    repo_id, revision = parse_model_ref(model)
    weights = ctx.core.weights
    try:
        plan = weights.plan_install(repo_id, revision, location, force=force)
    except AlreadyInstalled as done:
        # Idempotent for scripts: asking for what is there already is a success.
        view = done.view
        message = Message(fallback=f"{repo_id} already installed").text(
            f"✅ {view.repo_id}@{view.ref} is already installed at `{view.location}`"
            + (f" (`{view.path}`)" if view.path else "")
            + "."
        )
        message.context("To download and verify it again: add `--force` (needs an approval).")
        return Reply(message, data={**view.to_json(), "already_installed": True})
    request = weights.request_install(plan, ctx.user, ctx.channel)
    proposal = request.change
    data: dict[str, Any] = {
        "repo": plan.repo_id,
        "revision": plan.revision,
        "commit": plan.commit,
        "location": plan.location,
        "size": plan.size,
        "files": len(plan.files),
        "download": plan.to_download,
    }
    bucket = weights.location(plan.location).is_bucket
    if bucket:
        data["storage_uri"] = weights.bucket_uri(plan.location, plan.repo_id, plan.commit)
    reply = proposal_reply(ctx, proposal, data=data)
    if plan.to_download < plan.size and proposal.approval is None:
        where = "in the bucket" if bucket else "on disk"
        reply.message.context(
            f"{format_size(plan.size - plan.to_download)} already {where} is reused; "
            f"{format_size(plan.to_download)} to download."
        )
    return reply


@registry.command(
    "weights",
    help="Installed model weights: revision, size, location, last access, pins; and orphans",
    flags=[
        LOCATION,
        Flag("status", "only this status", choices=STATUSES),
        Flag("pinned", "only pinned weights", None),
        Flag("page", "page number", positive_int),
    ],
    examples=["weights", "weights --status orphaned", "weights --location shared --pinned"],
    audit=False,
)
def weights(
    ctx: CommandContext,
    location: str | None,
    status: str | None,
    pinned: bool,
    page: int | None,
) -> Reply:
    service = ctx.core.weights
    views = service.inventory(location, status, pinned)
    locations = [service.location(location)] if location else service.locations
    usages = [service.usage(loc) for loc in locations]
    current = paginate(views, page)
    message = Message(fallback=f"{len(views)} weights entr{'y' if len(views) == 1 else 'ies'}")
    message.header("Model weights")
    for loc, usage in zip(locations, usages, strict=True):
        if loc.is_bucket and not usage.total:
            message.context(
                f"`{loc.name}` (bucket {loc.display}): {format_size(usage.used)} stored, no quota"
            )
            continue
        kind = "bucket " if loc.is_bucket else ""
        message.context(
            f"`{loc.name}` ({kind}{loc.display}): {format_size(usage.used)} of "
            f"{format_size(usage.total)} used ({usage.fraction:.0%}), {format_size(usage.free)} "
            f"free · high watermark {loc.high_watermark:.0%}, low {loc.low_watermark:.0%}"
        )
    if not views:
        filters = " matching the filters" if (status or pinned) else ""
        message.text(f"No weights{filters}. Install some with `{ctx.command_prefix} install`.")
    else:
        message.table(
            ["model", "revision", "size", "location", "last access", "pinned", "deployed by",
             "status"],
            [_row(ctx, v) for v in current.items],
        )  # fmt: skip
        notes = [f"{v.repo_id} {v.ref}: {v.note}" for v in current.items if v.note]
        if notes:
            message.details("Notes", notes)
        if current.pages > 1:
            message.context(current.label)
        command = "weights" + "".join(
            f" --{k} {v}" for k, v in (("location", location), ("status", status)) if v
        )
        command += " --pinned" if pinned else ""
        message.buttons(*page_buttons(current, command))
        hub = ctx.core.settings.hf_endpoint
        add_steps(message, (_steps(v, hub) for v in current.items[:ROWS_WITH_BUTTONS] if v.id))
    return Reply(
        message,
        data={
            "weights": [v.to_json() for v in current.items],
            "page": current.number,
            "pages": current.pages,
            "total": current.total,
            "locations": [
                {
                    "name": u.location,
                    "type": loc.type,
                    "where": loc.display,
                    "total": u.total,
                    "used": u.used,
                    "free": u.free,
                }
                for u, loc in zip(usages, locations, strict=True)
            ],
        },
    )


def _steps(view: WeightView, hub: str) -> tuple[str, tuple[Button, ...]]:
    """Pin or Unpin, and Verify, for one installed revision (twins of the typed commands)."""
    revision = view.commit or view.revision
    target = f"{view.repo_id}{'@' + revision if revision else ''} --location {view.location}"
    pin = Button("Unpin", f"unpin {target}") if view.pinned else Button("Pin", f"pin {target}")
    line = f"*{view.repo_id}*@{view.ref} in `{view.location}` · {hub_link(hub, view.repo_id)}"
    return line, (pin, Button("Verify", f"verify {target}"))


def _row(ctx: CommandContext, view: WeightView) -> list[str]:
    return [
        view.repo_id,
        view.ref,
        format_size(view.size),
        view.location,
        _ago(ctx, view.last_access) if view.id is not None else "—",
        f"📌 <@{view.pinned_by}>"
        if view.pinned and view.pinned_by
        else ("📌" if view.pinned else "—"),
        ", ".join(view.deployed_by) or "—",
        view.status,
    ]


def _pin(ctx: CommandContext, model: str, location: str | None, pinned: bool) -> Reply:
    repo_id, revision = parse_model_ref(model)
    views, changed = ctx.core.weights.set_pinned(repo_id, revision, location, ctx.user, pinned)
    names = ", ".join(f"{v.repo_id}@{v.ref} in `{v.location}`" for v in views)
    if not changed:
        state = "already pinned" if pinned else "not pinned"
        text = f"Nothing to do: {names} {'is' if len(views) == 1 else 'are'} {state}."
    elif pinned:
        text = f"📌 Pinned {names}: purges never remove it."
    else:
        text = f"Unpinned {names}: purge policies apply to it again."
    return Reply.say(text, pinned=pinned, changed=changed, weights=[v.to_json() for v in views])


@registry.command(
    "pin",
    help="Protect installed weights from every purge",
    role=Role.OPERATOR,
    args=[MODEL_ARG],
    flags=[LOCATION],
    examples=["pin Qwen/Qwen2.5-7B-Instruct"],
)
def pin(ctx: CommandContext, model: str, location: str | None) -> Reply:
    return _pin(ctx, model, location, True)


@registry.command(
    "unpin",
    help="Let purge policies remove these weights again",
    role=Role.OPERATOR,
    args=[MODEL_ARG],
    flags=[LOCATION],
    examples=["unpin Qwen/Qwen2.5-7B-Instruct"],
)
def unpin(ctx: CommandContext, model: str, location: str | None) -> Reply:
    return _pin(ctx, model, location, False)


@registry.command(
    "verify",
    help="Re-hash installed weights against the hub's checksums (a job)",
    role=Role.OPERATOR,
    args=[MODEL_ARG],
    flags=[LOCATION],
    examples=["verify Qwen/Qwen2.5-7B-Instruct"],
)
def verify(ctx: CommandContext, model: str, location: str | None) -> Reply:
    repo_id, revision = parse_model_ref(model)
    jobs = ctx.core.weights.request_verify(repo_id, revision, location, ctx.user, ctx.channel)
    lines = [
        f"🔎 Verifying {j.params['repo']}@{str(j.params['commit'])[:7]} in "
        f"`{j.params['location']}` as job *#{j.id}*."
        for j in jobs
    ]
    return Reply.say("\n".join(lines), job_ids=[j.id for j in jobs])


@registry.command(
    "purge",
    help="Remove weights by policy (LRU above the high watermark, max age); pins are kept",
    role=Role.OPERATOR,
    flags=[
        LOCATION,
        Flag("policy", "only this policy (default: both)", choices=POLICIES),
        Flag("dry-run", "show what would go and the bytes freed; remove nothing", None),
    ],
    examples=["purge --dry-run", "purge --location shared --policy lru"],
)
def purge(ctx: CommandContext, location: str | None, policy: str | None, dry_run: bool) -> Reply:
    service = ctx.core.weights
    plans = service.plan_purge(location, policy or "all")  # type: ignore[arg-type]
    title = "Purge plan (dry run)" if dry_run else "Purge"
    message = Message(fallback=title).header(title)
    data: dict[str, Any] = {"dry_run": dry_run, "plans": []}
    for plan in plans:
        loc = service.location(plan.location)
        entry: dict[str, Any] = {
            "location": plan.location,
            "policy": plan.policy,
            "bytes": plan.bytes,
            "used": plan.usage.used,
            "total": plan.usage.total,
            "target": plan.target,
            "items": [
                {
                    "id": i.id,
                    "repo": i.repo_id,
                    "revision": i.revision,
                    "commit": i.commit,
                    "size": i.size,
                    "reason": i.reason,
                }
                for i in plan.items
            ],
        }
        data["plans"].append(entry)
        _describe(ctx, message, plan, loc.max_age, loc.high_watermark)
        if dry_run or not plan.items:
            continue
        proposal = service.propose_purge(plan, ctx.user, ctx.channel)
        entry.update(proposal.to_json())
        data.setdefault("proposals", []).append(proposal.to_json())
        message.blocks.extend(proposal_reply(ctx, proposal).message.blocks)
    return Reply(message, data=data)


def _describe(
    ctx: CommandContext, message: Message, plan: PurgePlan, max_age: float | None, high: float
) -> None:
    usage = plan.usage
    message.text(
        f"*{plan.location}*: {format_size(usage.used)} of {format_size(usage.total)} used "
        f"({usage.fraction:.0%}; high watermark {high:.0%})"
        + (f"; max age {format_duration(max_age)}" if max_age else "; no max age")
    )
    kept = ", ".join(f"{n} {why}" for why, n in plan.kept.items())
    if not plan.items:
        reason = (
            "above the high watermark, but nothing is removable"
            if plan.target
            else "nothing matches the policy"
        )
        message.context(f"Nothing to purge: {reason}" + (f" (kept: {kept})" if kept else "") + ".")
        return
    message.table(
        ["model", "revision", "frees", "last access", "why"],
        [
            [
                item.repo_id,
                f"{item.revision} ({item.commit[:7]})"
                if item.revision != item.commit
                else item.commit[:7],
                format_size(item.size),
                _ago(ctx, item.last_access),
                item.reason,
            ]
            for item in plan.items
        ],
    )
    line = f"Frees {format_size(plan.bytes)}: {usage.fraction:.0%} -> {plan.usage_after:.0%} used."
    if plan.shortfall:
        line += f" Still {format_size(plan.shortfall)} short of the low watermark."
    if kept:
        line += f" Kept: {kept}."
    message.context(line)
