"""`/model modelfile ...`: check, import, compose, version and export Modelfiles; the elements
library (`/model modelfile element ...`).

Pasting happens in a form (a Slack modal); the terminal fronts read ``--file PATH`` instead,
since a one-line prompt cannot take a multi-line Modelfile.
"""

from __future__ import annotations

import shlex
from typing import Any

from modelarium.bot.commands.context import CommandContext
from modelarium.bot.commands.inputs import ask_for_document, read_document
from modelarium.bot.commands.parsing import ident, positive_int
from modelarium.bot.commands.registry import registry
from modelarium.bot.commands.spec import Arg, Flag
from modelarium.bot.pagination import page_buttons, paginate
from modelarium.bot.reply import Attachment, Reply
from modelarium.core import echo
from modelarium.core.errors import PermissionDeniedError, UsageError
from modelarium.core.messages import Button, Form, FormField, Message, timestamp
from modelarium.core.modelfiles.elements import Elements
from modelarium.core.modelfiles.errors import ModelfileParseError
from modelarium.core.modelfiles.library import (
    ELEMENT_KINDS,
    KIND_LABELS,
    MAX_TEXT,
    ElementView,
    Preview,
    RevisionView,
    check_content,
    check_element_name,
    check_name,
    element_content,
    one_line,
    preview_text,
)
from modelarium.core.modelfiles.parser import decode
from modelarium.core.modelfiles.validate import Problem
from modelarium.core.rbac import Role

MAX_PROBLEMS_SHOWN = 15
INLINE_EXPORT_LIMIT = 2500
"""Longer Modelfiles are exported as a file by default (a chat message would be clipped)."""


def key_value(value: str) -> tuple[str, str]:
    name, sep, rest = value.partition("=")
    if not sep or not name.strip():
        raise ValueError(f"expected NAME=VALUE, got {value!r}")
    return name.strip(), rest


# -- shared helpers ----------------------------------------------------------------------------


def read_input(ctx: CommandContext, text: str | None, file: str | None) -> tuple[str | None, str]:
    """(text, source) from ``--text`` or ``--file`` (Modelfile bytes decoded as Ollama does)."""
    content, source = read_document(ctx, text, file, limit=MAX_TEXT, what="Modelfile")
    if isinstance(content, bytes):
        return decode(content), source
    return content, source


def ask_for_text(ctx: CommandContext, **form: Any) -> Reply:
    """A form with a multi-line field in Slack; elsewhere, which flag to use."""
    return ask_for_document(ctx, what="Modelfile", **form)


def require(ctx: CommandContext, role: Role, what: str) -> None:
    if ctx.role < role:
        raise PermissionDeniedError(f"{what} needs the {role} role; you are {ctx.role}")


def problem_lines(problems: list[Problem], limit: int = MAX_PROBLEMS_SHOWN) -> str:
    errors = sum(1 for p in problems if p.severity == "error")
    warnings = len(problems) - errors
    head = f"*{errors} error(s), {warnings} warning(s)*"
    lines = []
    for p in problems[:limit]:
        icon = "❌" if p.severity == "error" else "⚠️"
        where = f"line {p.line}: " if p.line else ""
        lines.append(f"{icon} {where}{p.message}")
    if len(problems) > limit:
        lines.append(f"… and {len(problems) - limit} more")
    return "\n".join([head, *lines])


def problems_data(problems: list[Problem]) -> list[dict[str, Any]]:
    return [{"severity": p.severity, "line": p.line, "message": p.message} for p in problems]


def element_fields(elements: Elements) -> list[tuple[str, str]]:
    """What a Modelfile amounts to, one short line per element."""
    pairs = [("FROM", f"`{elements.base}`" if elements.base else "_(none)_")]
    if elements.system is not None:
        pairs.append(("SYSTEM", one_line(elements.system, 120) or "_(empty)_"))
    if elements.template is not None:
        lines = elements.template.count("\n") + 1
        pairs.append(("TEMPLATE", f"{lines} line(s): `{one_line(elements.template, 60)}`"))
    if elements.parameters:
        values = []
        for name, value in elements.parameters.items():
            for v in value if isinstance(value, list) else [value]:
                values.append(f"{name}={one_line(v, 30)}")
        pairs.append(("PARAMETER", ", ".join(values)))
    if elements.messages:
        first = elements.messages[0]
        pairs.append(
            (
                "MESSAGE",
                f"{len(elements.messages)} message(s), first {first.role}: "
                f"{one_line(first.content, 60)}",
            )
        )
    for label, values in (("ADAPTER", elements.adapters), ("LICENSE", elements.licenses)):
        if values:
            pairs.append((label, "; ".join(one_line(v, 60) for v in values)))
    for label, value in (
        ("REQUIRES", elements.requires),
        ("DRAFT", elements.draft),
        ("RENDERER", elements.renderer),
        ("PARSER", elements.parser),
    ):
        if value is not None:
            pairs.append((label, value))
    return pairs


def render_preview(
    title: str, preview: Preview, *, show_text: bool = False, note: str | None = None
) -> Message:
    message = Message(fallback=title).header(title)
    message.fields(*element_fields(preview.elements))
    if preview.problems:
        message.text(problem_lines(preview.problems))
    else:
        message.text("✅ No problems: `ollama create` would accept it.")
    if show_text:
        message.code(preview.text)
    if note:
        message.context(note)
    return message


def preview_data(preview: Preview) -> dict[str, Any]:
    return {
        "text": preview.text,
        "elements": preview.elements.to_dict(),
        "problems": problems_data(preview.problems),
        "errors": len(preview.errors),
        "warnings": len(preview.warnings),
    }


def parse_or_usage(text: str) -> Preview:
    """A parse error is bad input: one line (with its line and column) plus the usage."""
    try:
        return preview_text(text)
    except ModelfileParseError as err:
        raise UsageError(f"the Modelfile does not parse: {err}") from None


def revision_line(view: RevisionView) -> str:
    if view.applications:
        a = view.applications[-1]
        more = f" (+{len(view.applications) - 1} more)" if len(view.applications) > 1 else ""
        return f"applied: {a.model} on {a.endpoint}, {timestamp(a.applied_at)}{more}"
    return "draft"


def revision_data(view: RevisionView) -> dict[str, Any]:
    return {
        "name": view.name,
        "revision": view.number,
        "head": view.head,
        "source": view.source,
        "author": view.author,
        "message": view.message,
        "created_at": view.created_at.isoformat(),
        "draft": view.draft,
        "composed_from": list(view.elements),
        "applications": [
            {
                "endpoint": a.endpoint,
                "model": a.model,
                "applied_by": a.applied_by,
                "applied_at": a.applied_at.isoformat(),
                "job_id": a.job_id,
            }
            for a in view.applications
        ],
    }


def create_button(name: str, number: int) -> Button:
    """Create the saved revision on an Ollama endpoint: a form asks which one."""
    command = f"ollama create {shlex.quote(_model_name(name))} --modelfile {name}@{number}"
    return Button(
        "Create on Ollama…",
        command,
        style="primary",
        form=Form(
            title="Create on Ollama",
            command=command,
            fields=(FormField("endpoint", "Ollama endpoint", placeholder="e.g. gpu-box-1"),),
            submit="Create",
        ),
    )


def _model_name(name: str) -> str:
    return name.lower()


def saved_reply(view: RevisionView, preview: Preview, ctx: CommandContext, verb: str) -> Reply:
    title = f"💾 {verb} {view.name} revision {view.number} (draft)"
    message = render_preview(title, preview)
    message.context(
        f"By <@{view.author}>" + (f": {view.message}" if view.message else "") + ". A draft "
        f"until created on an endpoint: `{ctx.command_prefix} ollama create <model> "
        f"--modelfile {view.ref} --endpoint <endpoint>`."
    )
    message.buttons(
        create_button(view.name, view.number),
        Button("History", f"modelfile history {view.name}"),
        Button("Export", f"modelfile export {view.name} --revision {view.number}"),
    )
    return Reply(message, data={**revision_data(view), **preview_data(preview)})


# -- checking and importing --------------------------------------------------------------------

TEXT_FLAGS = (
    Flag("text", "the Modelfile text (a Slack form asks for it when left out)"),
    Flag("file", "read the Modelfile from this file (terminal only)", metavar="PATH"),
)
PLACEHOLDER = 'FROM llama3.2\nSYSTEM """You are a concise assistant."""\nPARAMETER temperature 0.7'


@registry.command(
    "modelfile check",
    help="Parse and validate a Modelfile without saving it: its elements and every problem",
    flags=TEXT_FLAGS,
    examples=["modelfile check --file ./Modelfile"],
    audit=False,
)
def modelfile_check(ctx: CommandContext, text: str | None, file: str | None) -> Reply:
    text, _ = read_input(ctx, text, file)
    if text is None:
        return ask_for_text(
            ctx,
            title="Check a Modelfile",
            command="modelfile check",
            label="Modelfile",
            placeholder=PLACEHOLDER,
            submit="Check",
        )
    preview = parse_or_usage(text)
    message = render_preview("🔎 Modelfile check", preview)
    message.context("Nothing was saved. `modelfile import <name>` stores it.")
    return Reply(message, ok=not preview.errors, data=preview_data(preview))


@registry.command(
    "modelfile import",
    help="Paste (Slack) or read (--file) a Modelfile, see it parsed and validated, and save it",
    role=Role.OPERATOR,
    args=[Arg("name", "the name to store it under")],
    flags=[
        *TEXT_FLAGS,
        Flag("message", "a note for this revision"),
        Flag("force", "save even with errors (as a draft Ollama would refuse)", type=None),
    ],
    examples=["modelfile import assistant", "modelfile import assistant --file ./Modelfile"],
)
def modelfile_import(
    ctx: CommandContext,
    name: str,
    text: str | None,
    file: str | None,
    message: str | None,
    force: bool,
) -> Reply:
    check_name(name)
    text, source = read_input(ctx, text, file)
    if text is None:
        return ask_for_text(
            ctx,
            title="Import a Modelfile",
            command=f"modelfile import {shlex.quote(name)}",
            label=f"Modelfile for {name}"[:48],
            placeholder=PLACEHOLDER,
            extra=(FormField("message", "Note for this revision", optional=True),),
            submit="Save",
        )
    preview = parse_or_usage(text)
    if preview.errors and not force:
        reply = Reply(
            render_preview(
                f"⛔ {name} not saved",
                preview,
                note="Fix the errors and import again, or add --force to keep it as a draft.",
            ),
            ok=False,
            data={**preview_data(preview), "error": f"{len(preview.errors)} error(s); not saved"},
        )
        return reply
    view = ctx.core.modelfiles.library.save(
        name, text, author=ctx.user, message=message, source=source, force=force
    )
    return saved_reply(view, preview, ctx, "Saved")


# -- reading -----------------------------------------------------------------------------------


@registry.command(
    "modelfile list",
    help="Stored Modelfiles: latest revision, base model, draft or applied",
    flags=[Flag("page", type=positive_int, metavar="N")],
    audit=False,
)
def modelfile_list(ctx: CommandContext, page: int | None) -> Reply:
    items = ctx.core.modelfiles.library.list()
    shown = paginate(items, page)
    message = Message(fallback="Stored Modelfiles").header("Stored Modelfiles")
    message.table(
        ["name", "rev", "FROM", "status", "updated", "by"],
        [
            [
                s.name,
                str(s.head),
                s.base or "?",
                f"applied ×{s.applied}" if s.applied else "draft",
                timestamp(s.updated_at),
                f"<@{s.author}>",
            ]
            for s in shown.items
        ],
    )
    message.context(shown.label)
    message.buttons(*page_buttons(shown, "modelfile list"))
    return Reply(
        message,
        data={
            "modelfiles": [
                {
                    "name": s.name,
                    "head": s.head,
                    "base": s.base,
                    "applied": s.applied,
                    "updated_at": s.updated_at.isoformat(),
                }
                for s in shown.items
            ],
            "page": shown.number,
            "pages": shown.pages,
            "total": shown.total,
        },
    )


REVISION_FLAG = Flag("revision", "a revision number (default: the latest)", type=ident("revision"))


@registry.command(
    "modelfile show",
    help="A stored Modelfile: its text, elements, problems and where it was applied",
    args=[Arg("name", "NAME or NAME@REVISION")],
    flags=[REVISION_FLAG],
    audit=False,
    examples=["modelfile show assistant --revision 3"],
)
def modelfile_show(ctx: CommandContext, name: str, revision: int | None) -> Reply:
    view = ctx.core.modelfiles.library.revision(name, revision)
    preview = preview_text(view.text)
    latest = " (latest)" if view.number == view.head else f" (latest is {view.head})"
    message = render_preview(
        f"📄 {view.name} revision {view.number}{latest}", preview, show_text=True
    )
    who = f"<@{view.author}>, {timestamp(view.created_at)}, {view.source}"
    note = f" — {view.message}" if view.message else ""
    built = f" Composed from {', '.join(view.elements)}." if view.elements else ""
    message.context(f"{who}{note}. Status: {revision_line(view)}.{built}")
    message.buttons(
        create_button(view.name, view.number),
        Button("History", f"modelfile history {view.name}"),
        Button("Export file", f"modelfile export {view.name} --revision {view.number} --as file"),
    )
    return Reply(message, data={**revision_data(view), **preview_data(preview)})


@registry.command(
    "modelfile export",
    help="Export a stored Modelfile as text or as a file",
    args=[Arg("name", "NAME or NAME@REVISION")],
    flags=[
        REVISION_FLAG,
        Flag("as", "text or file (default: text unless it is long)", choices=("text", "file")),
    ],
    examples=["modelfile export assistant --as file"],
    audit=False,
)
def modelfile_export(ctx: CommandContext, name: str, revision: int | None, **options: Any) -> Reply:
    view = ctx.core.modelfiles.library.revision(name, revision)
    form = options.get("as") or ("file" if len(view.text) > INLINE_EXPORT_LIMIT else "text")
    data = {"name": view.name, "revision": view.number, "text": view.text}
    if form == "file":
        filename = f"{view.name.replace('/', '_').replace(':', '_')}-r{view.number}.Modelfile"
        message = Message(fallback=f"{view.ref} exported").text(
            f"📎 {view.name} revision {view.number} as `{filename}`."
        )
        return Reply(
            message,
            data={**data, "filename": filename},
            files=[Attachment(filename, view.text.encode("utf-8"), title=view.ref)],
        )
    message = Message(fallback=f"{view.ref}").context(f"{view.name} revision {view.number}")
    message.code(view.text)
    return Reply(message, data=data)


@registry.command(
    "modelfile history",
    help="Revisions of a stored Modelfile: author, note, and draft or where it was applied",
    args=[Arg("name")],
    flags=[Flag("page", type=positive_int, metavar="N")],
    audit=False,
    examples=["modelfile history assistant"],
)
def modelfile_history(ctx: CommandContext, name: str, page: int | None) -> Reply:
    history = ctx.core.modelfiles.library.history(name)
    shown = paginate(history, page)
    message = Message(fallback=f"History of {name}").header(f"🕘 History of {name}")
    message.table(
        ["rev", "when", "by", "source", "status", "note"],
        [
            [
                str(v.number),
                timestamp(v.created_at),
                f"<@{v.author}>",
                v.source,
                revision_line(v),
                one_line(v.message or "", 50),
            ]
            for v in shown.items
        ],
    )
    message.context(shown.label)
    buttons = list(page_buttons(shown, f"modelfile history {name}"))
    if len(history) > 1:
        buttons.insert(0, Button("Diff latest", f"modelfile diff {name}"))
    message.buttons(*buttons)
    return Reply(
        message,
        data={"revisions": [revision_data(v) for v in shown.items], "total": shown.total},
    )


@registry.command(
    "modelfile diff",
    help="Unified diff between two revisions (default: the latest change)",
    args=[
        Arg("name"),
        Arg("from", "older revision", type=ident("revision"), required=False),
        Arg("to", "newer revision (default: the latest)", type=ident("revision"), required=False),
    ],
    examples=["modelfile diff assistant", "modelfile diff assistant 1 3"],
    audit=False,
)
def modelfile_diff(ctx: CommandContext, name: str, **revs: int | None) -> Reply:
    old, new, text = ctx.core.modelfiles.library.diff(name, revs.get("from"), revs.get("to"))
    label = f"{old.ref if old else '(nothing)'} → {new.ref}"
    message = Message(fallback=f"diff {label}").header(f"± {name}: {label}")
    if text:
        message.code(text)
    else:
        message.text("No differences.")
    return Reply(
        message,
        data={"from": old.number if old else None, "to": new.number, "diff": text},
    )


@registry.command(
    "modelfile rollback",
    help="Make an older revision the latest again (as a new revision; history is kept)",
    role=Role.OPERATOR,
    args=[Arg("name"), Arg("revision", type=ident("revision"))],
    flags=[Flag("message", "a note for the new revision")],
    examples=["modelfile rollback assistant 2 --message 'back to the short prompt'"],
)
def modelfile_rollback(ctx: CommandContext, name: str, revision: int, message: str | None) -> Reply:
    view = ctx.core.modelfiles.library.rollback(name, revision, author=ctx.user, message=message)
    return saved_reply(view, preview_text(view.text), ctx, f"Rolled back {name} to r{revision}:")


# -- composing ----------------------------------------------------------------------------------


MAX_BASE_CHARS = 512
"""Longest FROM a composition takes: Ollama's names (host, namespace, model, tag) and file
paths are far shorter; a longer one is a paste gone wrong, not a model."""


@registry.command(
    "modelfile compose",
    help="Compose a Modelfile from a base model and library elements; preview, then --save",
    flags=[
        Flag("from", "the base model (FROM)", metavar="MODEL"),
        Flag("modelfile", "start from a stored Modelfile instead", metavar="NAME[@REV]"),
        Flag("system", "a system-prompt element", metavar="ELEMENT[@REV]"),
        Flag("template", "a template element", metavar="ELEMENT[@REV]"),
        Flag(
            "params", "a parameter-set element (repeatable)", metavar="ELEMENT[@REV]", repeat=True
        ),
        Flag(
            "messages", "a message-set element (repeatable)", metavar="ELEMENT[@REV]", repeat=True
        ),
        Flag(
            "set", "override one parameter (repeatable)", type=key_value, metavar="K=V", repeat=True
        ),
        Flag("save", "store the result under this name", metavar="NAME"),
        Flag("message", "a note for the saved revision"),
    ],
    examples=[
        "modelfile compose --from llama3.2 --system concise --params creative",
        "modelfile compose --modelfile assistant --set num_ctx=8192 --save assistant-8k",
    ],
)
def modelfile_compose(ctx: CommandContext, **o: Any) -> Reply:
    if o["from"] is not None and len(o["from"]) > MAX_BASE_CHARS:
        raise UsageError(
            f"--from: {echo.shown(o['from'])} is not a model name or path "
            f"(at most {MAX_BASE_CHARS} characters)"
        )
    if o["save"] is not None:
        require(ctx, Role.OPERATOR, "saving a Modelfile")
        check_name(o["save"])
    library = ctx.core.modelfiles.library
    preview = library.compose(
        base=o["from"],
        start=o["modelfile"],
        system=o["system"],
        template=o["template"],
        parameters=o["params"],
        messages=o["messages"],
        settings=o["set"],
    )
    used = ", ".join(v.ref for v in preview.used) or "no elements"
    if o["save"] is None:
        message = render_preview("🧩 Composed Modelfile (preview)", preview, show_text=True)
        message.context(f"From {used}. Not saved yet.")
        command = _compose_command(o)
        message.buttons(
            Button(
                "Save as…",
                command,
                style="primary",
                form=Form(
                    title="Save the Modelfile",
                    command=command,
                    fields=(
                        FormField("save", "Name"),
                        FormField("message", "Note", optional=True),
                    ),
                    submit="Save",
                ),
            )
        )
        data = {**preview_data(preview), "used": [v.ref for v in preview.used], "saved": False}
        return Reply(message, ok=not preview.errors, data=data)
    if preview.errors:
        return Reply(
            render_preview("⛔ Not saved", preview, show_text=True),
            ok=False,
            data={**preview_data(preview), "error": f"{len(preview.errors)} error(s); not saved"},
        )
    view = library.save(
        o["save"],
        preview.text,
        author=ctx.user,
        message=o["message"] or f"composed from {used}",
        source="compose",
        used=preview.used,
    )
    reply = saved_reply(view, preview, ctx, "Saved")
    reply.data.update(used=[v.ref for v in preview.used], saved=True)
    return reply


def _compose_command(o: dict[str, Any]) -> str:
    parts = ["modelfile", "compose"]
    for key in ("from", "modelfile", "system", "template"):
        if o[key]:
            parts += [f"--{key}", o[key]]
    for key in ("params", "messages"):
        for ref in o[key]:
            parts += [f"--{key}", ref]
    for name, value in o["set"]:
        parts += ["--set", f"{name}={value}"]
    return shlex.join(parts)


@registry.command(
    "modelfile split",
    help="Save the parts of a stored Modelfile as library elements (PREFIX-system, ...)",
    role=Role.OPERATOR,
    args=[Arg("name", "NAME or NAME@REVISION")],
    flags=[REVISION_FLAG, Flag("prefix", "element name prefix (default: the Modelfile's name)")],
    examples=["modelfile split assistant --prefix assistant"],
)
def modelfile_split(
    ctx: CommandContext, name: str, revision: int | None, prefix: str | None
) -> Reply:
    view = ctx.core.modelfiles.library.revision(name, revision)
    prefix = prefix or view.name.replace("/", "-").replace(":", "-")
    saved = save_elements(ctx, preview_text(view.text).elements, prefix, f"split from {view.ref}")
    return elements_saved_reply(saved, f"from {view.ref}")


def save_elements(
    ctx: CommandContext, elements: Elements, prefix: str, note: str
) -> list[tuple[ElementView, bool]]:
    """Store each part ``elements`` has as ``<prefix>-<kind>``; unchanged ones are reused."""
    parts: list[tuple[str, dict[str, Any]]] = []
    if elements.system:
        parts.append(("system", {"text": elements.system}))
    if elements.template:
        parts.append(("template", {"text": elements.template}))
    if elements.parameters:
        parts.append(("parameters", {"parameters": elements.to_dict()["parameters"]}))
    if elements.messages:
        parts.append(("messages", {"messages": elements.to_dict()["messages"]}))
    if not parts:
        raise UsageError("nothing to split: no SYSTEM, TEMPLATE, PARAMETER or MESSAGE lines")
    for kind, content in parts:
        check_content(kind, content)  # all or nothing: refuse before saving any
    library = ctx.core.modelfiles.library
    return [
        library.save_element(
            kind, check_element_name(f"{prefix}-{kind}"), content, author=ctx.user, message=note
        )
        for kind, content in parts
    ]


def elements_saved_reply(saved: list[tuple[ElementView, bool]], where: str) -> Reply:
    message = Message(fallback="Elements saved").header(f"🧩 Elements {where}")
    message.table(
        ["element", "kind", "rev", "", "preview"],
        [
            [v.name, v.kind, str(v.number), "new" if changed else "unchanged", v.preview(50)]
            for v, changed in saved
        ],
    )
    return Reply(
        message,
        data={
            "elements": [
                {"name": v.name, "kind": v.kind, "revision": v.number, "changed": changed}
                for v, changed in saved
            ]
        },
    )


@registry.command(
    "modelfile popular",
    help="The most used elements and element combinations",
    audit=False,
)
def modelfile_popular(ctx: CommandContext) -> Reply:
    library = ctx.core.modelfiles.library
    combos = library.combinations()
    top = [s for s in library.elements() if s.modelfiles][:10]
    message = Message(fallback="Popular elements").header("📈 Popular elements")
    message.table(
        ["FROM", "elements", "modelfiles", "revisions"],
        [
            [c.base or "?", " + ".join(c.elements), str(c.modelfiles), str(c.revisions)]
            for c in combos
        ],
        title="Combinations",
    )
    message.table(
        ["element", "kind", "modelfiles", "revisions"],
        [[s.name, s.kind, str(s.modelfiles), str(s.revisions)] for s in top],
        title="Elements",
    )
    return Reply(
        message,
        data={
            "combinations": [
                {
                    "base": c.base,
                    "elements": list(c.elements),
                    "modelfiles": c.modelfiles,
                    "revisions": c.revisions,
                }
                for c in combos
            ],
            "elements": [
                {"name": s.name, "modelfiles": s.modelfiles, "revisions": s.revisions} for s in top
            ],
        },
    )


# -- the elements library ------------------------------------------------------------------------


@registry.command(
    "modelfile element save",
    help="Save a library element (a new one, or a new revision of it)",
    role=Role.OPERATOR,
    args=[Arg("kind", choices=ELEMENT_KINDS), Arg("name")],
    flags=[
        *TEXT_FLAGS,
        Flag(
            "set",
            "a parameter, for parameter sets (repeatable)",
            type=key_value,
            metavar="K=V",
            repeat=True,
        ),
        Flag("message", "a note for this revision"),
    ],
    examples=[
        'modelfile element save system concise --text "Answer in one sentence."',
        "modelfile element save parameters creative --set temperature=1.1 --set top_p=0.95",
        "modelfile element save template chatml --file ./chatml.tmpl",
    ],
)
def element_save(
    ctx: CommandContext,
    kind: str,
    name: str,
    text: str | None,
    file: str | None,
    message: str | None,
    **o: Any,
) -> Reply:
    check_element_name(name)
    text, _ = read_input(ctx, text, file)
    settings = o["set"]
    if text is None and not (kind == "parameters" and settings):
        labels = {
            "system": ("System prompt", "You are a concise assistant."),
            "template": ("Template (Go text/template)", "{{ .System }}\n{{ .Prompt }}"),
            "parameters": ("PARAMETER lines", "PARAMETER temperature 0.7\nPARAMETER top_p 0.9"),
            "messages": ("MESSAGE lines", "MESSAGE user Hi\nMESSAGE assistant Hello!"),
        }
        label, placeholder = labels[kind]
        return ask_for_text(
            ctx,
            title=f"Save {KIND_LABELS[kind]}"[:24],
            command=f"modelfile element save {kind} {shlex.quote(name)}",
            label=label,
            placeholder=placeholder,
            extra=(FormField("message", "Note for this revision", optional=True),),
            submit="Save",
        )
    try:
        content, warnings = element_content(kind, text, settings)
    except ModelfileParseError as err:
        raise UsageError(f"the text does not parse: {err}") from None
    view, changed = ctx.core.modelfiles.library.save_element(
        kind, name, content, author=ctx.user, message=message
    )
    verb = (
        f"Saved {view.label} {view.name} revision {view.number}"
        if changed
        else (f"{view.name} is unchanged (revision {view.number})")
    )
    reply_message = Message(fallback=verb).text(f"🧩 {verb}.")
    reply_message.code(view.as_modelfile_text())
    if warnings:
        reply_message.text(problem_lines(warnings))
    reply_message.context(f"Use it: `modelfile compose --from <model> --{_flag(kind)} {view.name}`")
    return Reply(
        reply_message,
        data={
            "name": view.name,
            "kind": view.kind,
            "revision": view.number,
            "changed": changed,
            "content": view.content,
            "problems": problems_data(warnings),
        },
    )


def _flag(kind: str) -> str:
    return {"parameters": "params"}.get(kind, kind)


@registry.command(
    "modelfile element list",
    help="Library elements with their usage, the most used first",
    flags=[
        Flag("kind", choices=ELEMENT_KINDS),
        Flag("page", type=positive_int, metavar="N"),
    ],
    audit=False,
)
def element_list(ctx: CommandContext, kind: str | None, page: int | None) -> Reply:
    items = ctx.core.modelfiles.library.elements(kind)
    shown = paginate(items, page)
    message = Message(fallback="Modelfile elements").header("🧩 Modelfile elements")
    message.table(
        ["name", "kind", "rev", "used by", "preview"],
        [
            [s.name, s.kind, str(s.head), f"{s.modelfiles} mf / {s.revisions} rev", s.preview]
            for s in shown.items
        ],
    )
    message.context(shown.label + " · used by: Modelfiles / revisions composed from it")
    command = "modelfile element list" + (f" --kind {kind}" if kind else "")
    message.buttons(*page_buttons(shown, command))
    return Reply(
        message,
        data={
            "elements": [
                {
                    "name": s.name,
                    "kind": s.kind,
                    "head": s.head,
                    "modelfiles": s.modelfiles,
                    "revisions": s.revisions,
                }
                for s in shown.items
            ],
            "total": shown.total,
        },
    )


@registry.command(
    "modelfile element show",
    help="An element's content (as Modelfile lines) and its revisions",
    args=[Arg("name", "ELEMENT or ELEMENT@REVISION")],
    audit=False,
    examples=["modelfile element show chatml@2"],
)
def element_show(ctx: CommandContext, name: str) -> Reply:
    library = ctx.core.modelfiles.library
    view = library.element(name)
    revisions = library.element_revisions(view.name)
    message = Message(fallback=view.ref).header(
        f"🧩 {view.name} ({view.label}) revision {view.number}"
    )
    message.code(view.as_modelfile_text())
    message.table(
        ["rev", "when", "by", "note"],
        [
            [
                str(r.number),
                timestamp(r.created_at),
                f"<@{r.author}>",
                one_line(r.message or "", 50),
            ]
            for r in revisions[:15]
        ],
        title="Revisions",
    )
    return Reply(
        message,
        data={
            "name": view.name,
            "kind": view.kind,
            "revision": view.number,
            "head": view.head,
            "content": view.content,
            "revisions": [r.number for r in revisions],
        },
    )
