"""Front-neutral rich messages: what handlers, jobs and alerts say, before any front renders it.

Core builds :class:`Message` documents out of a handful of block types; the Slack front turns them
into Block Kit and the terminal front into text. Interactive pieces carry a *command text twin*:
a :class:`Button` runs a ``/model`` command as whoever presses it, so every button is checked
against the presser's role by the same code path as typing the command.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

Style = Literal["primary", "danger"] | None


@dataclass(frozen=True)
class FormField:
    """One input of a :class:`Form`; its value is passed to the command as ``--<name> VALUE``."""

    name: str
    label: str
    multiline: bool = False
    secret: bool = False
    optional: bool = False
    initial: str | None = None
    placeholder: str | None = None
    hint: str | None = None
    options: tuple[str, ...] = ()
    """The only values allowed: a select menu in Slack, a choice in the terminal."""


@dataclass(frozen=True)
class Form:
    """Asks for input before running ``command`` (a Slack modal; prompts in the terminal)."""

    title: str
    command: str
    fields: tuple[FormField, ...]
    submit: str = "Submit"


@dataclass(frozen=True)
class Button:
    label: str
    command: str
    style: Style = None
    confirm: str | None = None
    form: Form | None = None


@dataclass(frozen=True)
class Header:
    text: str


@dataclass(frozen=True)
class Text:
    """Markdown-ish text: ``*bold*``, ``_italic_``, `` `code` `` (Slack mrkdwn flavour)."""

    text: str


@dataclass(frozen=True)
class Fields:
    pairs: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Table:
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    title: str | None = None


@dataclass(frozen=True)
class Progress:
    fraction: float
    label: str = ""


@dataclass(frozen=True)
class Code:
    text: str


@dataclass(frozen=True)
class Context:
    """Small print under a card: ids, timestamps, who did what."""

    text: str


@dataclass(frozen=True)
class Details:
    """Supporting detail (e.g. the arithmetic of a fit estimate) shown collapsed where possible."""

    title: str
    lines: tuple[str, ...]


@dataclass(frozen=True)
class Actions:
    buttons: tuple[Button, ...]


@dataclass(frozen=True)
class Divider:
    pass


Block = Header | Text | Fields | Table | Progress | Code | Context | Details | Actions | Divider

_BLOCK_TYPES: dict[str, type] = {
    cls.__name__.lower(): cls
    for cls in (Header, Text, Fields, Table, Progress, Code, Context, Details, Actions, Divider)
}


@dataclass
class Message:
    """An ordered list of blocks plus a plain-text fallback (notifications, screen readers)."""

    blocks: list[Block] = field(default_factory=list)
    fallback: str | None = None

    # -- building -------------------------------------------------------------------------
    def header(self, text: str) -> Message:
        self.blocks.append(Header(text))
        return self

    def text(self, text: str) -> Message:
        self.blocks.append(Text(text))
        return self

    def fields(self, *pairs: tuple[str, str]) -> Message:
        self.blocks.append(Fields(tuple(pairs)))
        return self

    def table(
        self,
        columns: list[str] | tuple[str, ...],
        rows: list[list[str]] | list[tuple[str, ...]],
        title: str | None = None,
    ) -> Message:
        self.blocks.append(
            Table(tuple(columns), tuple(tuple(str(c) for c in r) for r in rows), title)
        )
        return self

    def progress(self, fraction: float, label: str = "") -> Message:
        self.blocks.append(Progress(max(0.0, min(1.0, fraction)), label))
        return self

    def code(self, text: str) -> Message:
        self.blocks.append(Code(text))
        return self

    def context(self, text: str) -> Message:
        self.blocks.append(Context(text))
        return self

    def details(self, title: str, lines: list[str] | tuple[str, ...]) -> Message:
        self.blocks.append(Details(title, tuple(lines)))
        return self

    def buttons(self, *buttons: Button) -> Message:
        if buttons:
            self.blocks.append(Actions(tuple(buttons)))
        return self

    def divider(self) -> Message:
        self.blocks.append(Divider())
        return self

    # -- reading --------------------------------------------------------------------------
    @property
    def all_buttons(self) -> list[Button]:
        return [b for block in self.blocks if isinstance(block, Actions) for b in block.buttons]

    def plain_text(self) -> str:
        return self.fallback or render_plain(self)

    # -- storage (the outbox keeps messages as JSON) ----------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "fallback": self.fallback,
            "blocks": [{"type": type(b).__name__.lower(), **asdict(b)} for b in self.blocks],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Message:
        blocks: list[Block] = []
        for raw in data.get("blocks", []):
            kind = raw["type"]
            body = {k: v for k, v in raw.items() if k != "type"}
            blocks.append(_block_from_dict(kind, body))
        return cls(blocks=blocks, fallback=data.get("fallback"))


def _block_from_dict(kind: str, body: dict[str, Any]) -> Block:
    if kind == "fields":
        return Fields(tuple((str(a), str(b)) for a, b in body["pairs"]))
    if kind == "table":
        return Table(
            tuple(body["columns"]), tuple(tuple(r) for r in body["rows"]), body.get("title")
        )
    if kind == "details":
        return Details(body["title"], tuple(body["lines"]))
    if kind == "actions":
        return Actions(tuple(_button_from_dict(b) for b in body["buttons"]))
    return _BLOCK_TYPES[kind](**body)  # type: ignore[no-any-return]


def _button_from_dict(raw: dict[str, Any]) -> Button:
    form = raw.get("form")
    return Button(
        label=raw["label"],
        command=raw["command"],
        style=raw.get("style"),
        confirm=raw.get("confirm"),
        form=(
            Form(
                title=form["title"],
                command=form["command"],
                fields=tuple(
                    FormField(**{**f, "options": tuple(f.get("options") or ())})
                    for f in form["fields"]
                ),
                submit=form.get("submit", "Submit"),
            )
            if form
            else None
        ),
    )


# -- references a front resolves: times (and users, ``<@U…>``) ---------------------------------
TIME_REFERENCE = re.compile(r"<time:(\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d)?Z)>")
"""``<time:2026-12-06T08:30Z>``: a point in time that each front shows its own way (Slack in
the reader's local time; terminals, ``--json`` and code blocks as the ISO 8601 inside)."""


def iso_time(when: datetime, *, seconds: bool = False) -> str:
    """ISO 8601 in UTC with its zone (``2026-12-06T08:30Z``): never ambiguous about the year or
    the zone, whoever reads it."""
    if when.tzinfo is None:  # the database hands back UTC; some drivers drop the zone
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ" if seconds else "%Y-%m-%dT%H:%MZ")


def timestamp(when: datetime | None, *, seconds: bool = False, never: str = "never") -> str:
    """The one way a message shows a point in time: a reference (:data:`TIME_REFERENCE`) that
    the Slack front turns into ``<!date^…>`` and every other front into :func:`iso_time`."""
    if when is None:
        return never
    return f"<time:{iso_time(when, seconds=seconds)}>"


def parse_time_reference(iso: str) -> datetime:
    """The instant inside a time reference (its ISO 8601 part)."""
    fmt = "%Y-%m-%dT%H:%M:%SZ" if iso.count(":") == 2 else "%Y-%m-%dT%H:%MZ"
    return datetime.strptime(iso, fmt).replace(tzinfo=UTC)


def plain_times(text: str) -> str:
    """Time references replaced by their ISO 8601 form (terminals, code blocks, fallbacks)."""
    return TIME_REFERENCE.sub(lambda m: m.group(1), text)


def shorten(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters for a table cell, ending in "…" when cut: at a
    word boundary, else after a separator inside a long word (``org/name-7B``), and mid-word only
    when nothing else is near. Whitespace is collapsed."""
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    head = text[: width - 1]
    space = head.rfind(" ")
    if text[width - 1] == " ":
        pass  # the cut falls on a space already
    elif space >= width // 2:  # a word boundary not too far back
        head = head[:space]
    else:  # one long word (a model id): cut after its last separator, not inside a part
        parts = max(head.rfind(sep) for sep in "/-_.:,")
        if parts >= width // 2:
            head = head[: parts + 1]
    return head.rstrip(" ,;:-_./(") + "…"


def progress_bar(fraction: float, width: int = 20) -> str:
    """``[██████░░░░] 60%``: the same bar in Slack and the terminal."""
    fraction = max(0.0, min(1.0, fraction))
    filled = round(fraction * width)
    return f"[{'█' * filled}{'░' * (width - filled)}] {fraction * 100:.0f}%"


def format_table(columns: tuple[str, ...], rows: tuple[tuple[str, ...], ...]) -> str:
    """Fixed-width text table (used inside code blocks in Slack and as-is in the terminal)."""
    widths = [len(c) for c in columns]
    for row in rows:
        for i, cell in enumerate(row[: len(columns)]):
            widths[i] = max(widths[i], len(cell))

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(cells)).rstrip()

    out = [line(columns), line(tuple("-" * w for w in widths))]
    out.extend(line(tuple(row[: len(columns)])) for row in rows)
    return "\n".join(out)


def render_plain(
    message: Message,
    *,
    numbered_buttons: bool = False,
    first_number: int = 1,
    text_filter: Callable[[str], str] | None = None,
) -> str:
    """Readable text for notifications' fallback, ``modelarium cmd`` and the terminal shell.

    ``text_filter`` rewrites every piece of text first (e.g. ``<@U1>`` -> ``@U1``), so table
    columns are measured on what is actually shown.
    """
    out: list[str] = []
    number = first_number - 1
    custom = text_filter or (lambda text: text)

    def f(text: str) -> str:
        return custom(plain_times(text))

    for block in message.blocks:
        if isinstance(block, Header):
            out.append(f(block.text))
            out.append("=" * min(len(f(block.text)), 72))
        elif isinstance(block, Text | Context):
            out.append(f(block.text))
        elif isinstance(block, Fields):
            width = max((len(f(k)) for k, _ in block.pairs), default=0)
            out.extend(f"{f(k).ljust(width)}  {f(v)}" for k, v in block.pairs)
        elif isinstance(block, Table):
            if block.title:
                out.append(f(block.title))
            rows = tuple(tuple(f(cell) for cell in row) for row in block.rows)
            out.append(format_table(block.columns, rows) if rows else "(none)")
        elif isinstance(block, Progress):
            out.append(f"{progress_bar(block.fraction)} {f(block.label)}".rstrip())
        elif isinstance(block, Code):
            out.append(block.text)
        elif isinstance(block, Details):
            out.append(f"{f(block.title)}:")
            out.extend(f"  {f(line)}" for line in block.lines)
        elif isinstance(block, Actions):
            labels = []
            for button in block.buttons:
                number += 1
                labels.append(f"[{number}] {button.label}" if numbered_buttons else button.label)
            out.append("  ".join(labels) if numbered_buttons else "Actions: " + ", ".join(labels))
        elif isinstance(block, Divider):
            out.append("")
    return "\n".join(out).strip()
