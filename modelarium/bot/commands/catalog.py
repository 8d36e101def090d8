"""`/model catalog list|show|add|validate|diff|pr|status|updates|schema`: the catalog in Git.

Entries live as JSON files in a GitHub repository; drafts made here reach it through pull
requests (``catalog pr`` and ``catalog status`` are changes: approved by policy, run as jobs,
with the PR link on the change's card).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from modelarium.bot.commands.changes import proposal_reply
from modelarium.bot.commands.context import CommandContext
from modelarium.bot.commands.parsing import positive_int
from modelarium.bot.commands.registry import registry
from modelarium.bot.commands.spec import Arg, Flag
from modelarium.bot.pagination import page_buttons, paginate
from modelarium.bot.reply import Attachment, Reply
from modelarium.core.catalog import Issue, schema_text
from modelarium.core.catalog.changes import PR, STATUS
from modelarium.core.catalog.entry import CatalogEntry
from modelarium.core.catalog.service import LIST_STATUSES, STATUS_TARGETS, EntryView
from modelarium.core.errors import ModelariumError, PermissionDeniedError, UsageError
from modelarium.core.fit import format_params
from modelarium.core.messages import Button, Message
from modelarium.core.rbac import Role

ID_ARG = Arg("id", "the entry's id (its file name in the catalog, e.g. qwen2.5-7b-instruct)")
MAX_FILE_BYTES = 1024 * 1024
_ICON = {
    "approved": "✅",
    "validated": "☑️",
    "draft": "📝",
    "deprecated": "⚠️",
    "retired": "🪦",
    "invalid": "❌",
    "rejected": "🚫",
    "proposed": "🔀",
    "merged": "✅",
}


def _pull_text(view: EntryView) -> str:
    pull = view.pull
    if pull is None:
        return "—"
    state = pull.state + (", left alone" if pull.left_alone else "")
    return f"#{pull.number} {pull.url} ({state})" if pull.url else f"#{pull.number} ({state})"


def _draft_text(view: EntryView) -> str:
    if view.draft_state is None:
        return "—"
    return f"{_ICON.get(view.draft_state, '')} {view.draft_state}"


def _entry_fields(entry: CatalogEntry) -> list[tuple[str, str]]:
    params = format_params(entry.params_total)
    if entry.params_active != entry.params_total:
        params += f" ({format_params(entry.params_active)} active)"
    fits = ", ".join(
        f"{gpu} ({fit.gpus}×)" if fit.gpus else gpu
        for gpu, fit in entry.gpu_compatibility.items()
        if fit.fits
    )
    return [
        ("Model", f"{entry.repo}@{entry.commit[:12]}"),
        ("Licence", entry.license),
        ("Parameters", params),
        ("Architecture", entry.architecture),
        ("Context", f"{entry.context_length:,} tokens"),
        ("Quantization", entry.quantization),
        ("Fits", fits or "no GPU type"),
        ("Storage", entry.storage_uri or "— (not installed and verified yet)"),
        ("Owners", ", ".join(entry.owners) or "—"),
        ("Tags", ", ".join(entry.tags) or "—"),
    ]


def _issue_lines(issues: list[Issue] | tuple[dict[str, Any], ...], limit: int = 15) -> list[str]:
    lines = []
    for issue in list(issues)[:limit]:
        item = issue.to_json() if isinstance(issue, Issue) else issue
        mark = "⚠️" if item.get("severity") == "warning" else "❌"
        lines.append(f"{mark} `{item.get('path') or '(entry)'}`: {item.get('message')}")
    if len(issues) > limit:
        lines.append(f"… and {len(issues) - limit} more")
    return lines


@registry.command(
    "catalog list",
    help="Catalog entries (Git's, plus drafts not in Git yet) with their status and PR",
    flags=[
        Flag("status", "only entries with this status", choices=LIST_STATUSES),
        Flag("page", "page number", positive_int),
    ],
    examples=["catalog list", "catalog list --status approved"],
    audit=False,
)
def catalog_list(ctx: CommandContext, status: str | None, page: int | None) -> Reply:
    views = ctx.core.catalog.entries(status)
    current = paginate(views, page)
    message = Message(fallback=f"{len(views)} catalog entries").header("Model catalog")
    if not views:
        message.text(
            "No entries match." if status else "The catalog is empty: `catalog add <model>`."
        )
    else:
        rows = []
        for view in current.items:
            entry = view.current
            rows.append(
                [
                    view.entry_id,
                    f"{_ICON.get(view.status, '')} {view.status}",
                    f"{entry.repo}@{entry.commit[:7]}" if entry else "—",
                    _draft_text(view),
                    _pull_text(view),
                ]
            )
        message.table(["id", "status", "model", "draft", "PR"], rows)
        if current.pages > 1:
            message.context(current.label)
        command = "catalog list" + (f" --status {status}" if status else "")
        message.buttons(*page_buttons(current, command))
    return Reply(
        message,
        data={
            "entries": [v.to_json() for v in current.items],
            "page": current.number,
            "pages": current.pages,
            "total": current.total,
        },
    )


@registry.command(
    "catalog show",
    help="One entry: what Git has, the draft, validation issues and its pull request",
    args=[ID_ARG],
    examples=["catalog show qwen2.5-7b-instruct"],
    audit=False,
)
def catalog_show(ctx: CommandContext, id: str) -> Reply:
    view = ctx.core.catalog.view(id)
    entry = view.current
    title = entry.display_name if entry else view.entry_id
    message = Message(fallback=f"Catalog entry {view.entry_id}").header(
        f"{title} ({view.entry_id})"
    )
    message.text(
        f"Status: {_ICON.get(view.status, '')} *{view.status}*"
        + (f" · draft {_draft_text(view)}" if view.draft_state else "")
        + (f" · PR {_pull_text(view)}" if view.pull else "")
    )
    if entry is not None:
        message.fields(*_entry_fields(entry))
        if entry.status_reason:
            message.text(f"Why {entry.status}: {entry.status_reason}")
        if entry.serving_gpu:
            message.code(f"vllm serve {entry.repo} {' '.join(entry.serving_args)}")
    if view.git_issues:
        message.details("Git's file does not validate", _issue_lines(view.git_issues))
    if view.draft_issues:
        message.details("Last validation of the draft", _issue_lines(view.draft_issues))
    if view.update_available:
        message.text(
            f"🆕 The Hub has {view.git.repo if view.git else ''}@{(view.hub_commit or '')[:7]}"
            + (f" (licence {view.hub_license})" if view.hub_license else "")
        )
    history = ctx.core.catalog.history(view.entry_id)
    if history:
        message.text("*History* (what Modelarium did with this model)\n" + "\n".join(
            f"• {h['at'][:16].replace('T', ' ')} {h['text']}"
            + (f" (<@{h['user']}>)" if h["user"] else "") for h in history
        ))  # fmt: skip
    buttons = []
    if view.draft_state in ("draft", "validated", "proposed"):
        buttons.append(Button("Validate", f"catalog validate {view.entry_id}"))
        buttons.append(Button("Diff", f"catalog diff {view.entry_id}"))
    if view.draft_state in ("validated", "proposed"):
        buttons.append(Button("Open/update PR", f"catalog pr {view.entry_id}"))
    message.buttons(*buttons)
    return Reply(message, data={**view.to_json(), "history": history})


@registry.command(
    "catalog add",
    help="Draft an entry from the Hub, config.json, the vLLM table and the fit",
    role=Role.OPERATOR,
    args=[Arg("model", "org/name, or org/name@revision (pinned to its commit)")],
    flags=[
        Flag("id", "the entry's id (default: from the repo name)", metavar="ID"),
        Flag("tag", "a tag (repeatable)", metavar="TAG", repeat=True),
        Flag("notes", "free text for reviewers", metavar="TEXT"),
    ],
    examples=["catalog add Qwen/Qwen2.5-7B-Instruct", "catalog add org/model@v1.0 --id my-model"],
)
def catalog_add(
    ctx: CommandContext,
    model: str,
    id: str | None,
    tag: list[str] | None,
    notes: str | None,
) -> Reply:
    view = ctx.core.catalog.add(
        model, ctx.user, entry_id=id, tags=tuple(tag or ()), notes=notes or ""
    )
    entry = view.draft
    assert entry is not None
    verb = "an update of" if view.git is not None else "a new entry"
    message = Message(fallback=f"Drafted {view.entry_id}").text(
        f"📝 Drafted {verb} *{view.entry_id}* ({entry.repo}@{entry.commit[:7]})."
    )
    message.fields(*_entry_fields(entry))
    message.context(
        f"Next: `{ctx.command_prefix} catalog validate {view.entry_id}`, then "
        f"`{ctx.command_prefix} catalog pr {view.entry_id}`."
    )
    message.buttons(
        Button("Validate", f"catalog validate {view.entry_id}"),
        Button("Diff", f"catalog diff {view.entry_id}"),
    )
    return Reply(message, data=view.to_json())


@registry.command(
    "catalog validate",
    help="Check a draft (or Git's entry, or a file): schema, Hub, vLLM, fit, storage",
    role=Role.OPERATOR,
    args=[Arg("id", "the entry's id", required=False)],
    flags=[Flag("file", "a .json file on the bot's host (admins)", metavar="PATH")],
    examples=["catalog validate qwen2.5-7b-instruct", "catalog validate --file /srv/x.json"],
)
def catalog_validate(ctx: CommandContext, id: str | None, file: str | None) -> Reply:
    catalog = ctx.core.catalog
    if (id is None) == (file is None):
        raise UsageError("name an entry id or give --file PATH (one of them)")
    if file is not None:
        if ctx.role < Role.ADMIN:
            raise PermissionDeniedError("--file reads the bot's own disk: admins only")
        path = Path(file)
        if path.is_file() and path.stat().st_size > MAX_FILE_BYTES:
            raise UsageError(f"{file} is larger than an entry can be (1 MiB)")
        result = catalog.validate_file(path)
        label, data = path.name, {"file": str(path)}
    else:
        view, result = catalog.validate(id or "")
        label, data = view.entry_id, view.to_json()
    issues = result.issues
    ok = result.ok
    head = f"✅ {label} is valid" if ok else f"❌ {label} has {len(result.errors)} problem(s)"
    message = Message(fallback=head).text(head + ("." if ok else ":"))
    for line in _issue_lines(issues):
        message.text(line)
    if ok and id is not None:
        message.context(f"Next: `{ctx.command_prefix} catalog pr {label}`.")
        message.buttons(Button("Open/update PR", f"catalog pr {label}"))
    return Reply(
        message,
        ok=ok,
        data={**data, "valid": ok, "issues": [i.to_json() for i in issues]},
    )


@registry.command(
    "catalog diff",
    help="Drafts against Git: what a pull request would change",
    args=[Arg("id", "one entry (default: every draft)", required=False)],
    examples=["catalog diff", "catalog diff qwen2.5-7b-instruct"],
    audit=False,
)
def catalog_diff(ctx: CommandContext, id: str | None) -> Reply:
    diffs = ctx.core.catalog.diff(id)
    message = Message(fallback=f"{len(diffs)} draft(s) differ from Git")
    if not diffs:
        message.text("No drafts: the database holds what Git has.")
    for diff in diffs:
        message.text(f"*{diff.entry_id}* ({diff.kind})")
        message.code("\n".join(diff.lines) or "(no change)")
    return Reply(message, data={"diffs": [d.to_json() for d in diffs]})


@registry.command(
    "catalog pr",
    help="Open or update the pull request of validated drafts (a change: approved by policy)",
    role=Role.OPERATOR,
    args=[Arg("ids", "one or more entry ids", rest=True)],
    examples=["catalog pr qwen2.5-7b-instruct", "catalog pr model-a model-b"],
)
def catalog_pr(ctx: CommandContext, ids: str) -> Reply:
    names = list(dict.fromkeys(ids.split()))
    if len(names) == 1:
        proposal = ctx.core.changes.propose(PR, {"entry_id": names[0]}, ctx.user, ctx.channel)
        return proposal_reply(ctx, proposal, data={"entry_id": names[0]})
    message = Message(fallback=f"Catalog PRs for {len(names)} entries")
    proposals: list[dict[str, Any]] = []
    failed = 0
    for name in names:
        try:
            proposal = ctx.core.changes.propose(PR, {"entry_id": name}, ctx.user, ctx.channel)
        except ModelariumError as exc:
            failed += 1
            message.text(f"❌ {name}: {exc}")
            proposals.append({"entry_id": name, "error": str(exc)})
            continue
        reply = proposal_reply(ctx, proposal, data={"entry_id": name})
        message.text(f"*{name}*: {reply.text.splitlines()[0] if reply.text else ''}")
        proposals.append(reply.data)
    return Reply(message, ok=failed == 0, data={"proposals": proposals})


@registry.command(
    "catalog status",
    help="Deprecate, retire or re-approve an entry: a pull request like any other edit",
    role=Role.OPERATOR,
    args=[ID_ARG, Arg("status", "the new status", choices=STATUS_TARGETS)],
    flags=[Flag("reason", "why (shown in the PR and by deploy)", metavar="TEXT")],
    examples=['catalog status qwen2.5-7b-instruct deprecated --reason "superseded by Qwen3"'],
)
def catalog_status(ctx: CommandContext, id: str, status: str, reason: str | None) -> Reply:
    if not reason or not reason.strip():
        raise UsageError("say why: --reason TEXT")
    proposal = ctx.core.changes.propose(
        STATUS, {"entry_id": id, "status": status, "reason": reason}, ctx.user, ctx.channel
    )
    return proposal_reply(ctx, proposal, data={"entry_id": id, "status": status})


@registry.command(
    "catalog updates",
    help="Approved entries whose Hub repo has a newer commit or another licence",
    audit=False,
)
def catalog_updates(ctx: CommandContext) -> Reply:
    views = ctx.core.catalog.updates()
    message = Message(fallback=f"{len(views)} update(s)").header("Catalog updates")
    if not views:
        message.text("Every approved entry pins its Hub repo's latest commit (as last checked).")
    else:
        rows = []
        for view in views:
            git = view.git
            assert git is not None
            licence = (
                f"{git.license} → {view.hub_license}"
                if view.hub_license and view.hub_license.lower() != git.license.lower()
                else git.license
            )
            rows.append(
                [
                    view.entry_id,
                    f"{git.commit[:7]} → {(view.hub_commit or '')[:7]}",
                    licence,
                    _pull_text(view),
                ]
            )
        message.table(["id", "commit", "licence", "PR"], rows)
    message.context(
        f"catalog_watch checks every {ctx.core.settings.schedule_catalog_watch / 3600:g} h and "
        f"opens at most {ctx.core.settings.catalog_prs_per_day} PR(s) a day."
    )
    return Reply(message, data={"updates": [v.to_json() for v in views]})


@registry.command(
    "catalog schema",
    help="The JSON Schema every catalog entry follows",
    audit=False,
)
def catalog_schema(ctx: CommandContext) -> Reply:
    text = schema_text()
    message = Message(fallback="Catalog entry JSON Schema").text(
        "The JSON Schema of a catalog entry (`modelarium catalog schema` prints it too):"
    )
    message.context("Attached as catalog-entry.schema.json.")
    return Reply(
        message,
        data={"schema": json.loads(text)},
        files=[Attachment("catalog-entry.schema.json", text.encode(), "Catalog entry schema")],
    )
