"""Front-neutral :class:`Message` documents -> Slack Block Kit, always within Slack's limits.

Slack rejects a whole message (``invalid_blocks``) when one piece is over a limit, so every
renderer here splits or clips instead: long texts and tables become several sections or code
blocks, and when a message would still need more blocks than Slack allows, the middle is cut and
replaced by a "… N more not shown" line, keeping the header and the buttons.

Interactive elements carry their *command text twin* in ``value``:

* ``mdl.cmd.<n>``: a :class:`Button`; ``value`` is the command, run as whoever clicks.
* ``mdl.form.<n>``: a button that opens a modal; ``value`` is the form as compact JSON.
* ``mdl.details``: "Show <title>" for a :class:`Details` block; ``value`` holds the lines.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from modelarium.bot.slack.users import USER_ID
from modelarium.core.messages import (
    Actions,
    Button,
    Code,
    Context,
    Details,
    Divider,
    Fields,
    Form,
    FormField,
    Header,
    Message,
    Progress,
    Table,
    Text,
    format_table,
    parse_time_reference,
    plain_times,
    progress_bar,
)

# Slack's Block Kit limits (https://api.slack.com/reference/block-kit).
MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
SECTION_TEXT = 3000
FIELD_TEXT = 2000
FIELDS_PER_SECTION = 10
HEADER_TEXT = 150
BUTTON_TEXT = 75
BUTTON_VALUE = 2000
ID_LENGTH = 255
ACTIONS_PER_BLOCK = 25
MODAL_TITLE = 24
CONFIRM_TITLE = 100
CONFIRM_TEXT = 300
CONFIRM_BUTTON = 30
INPUT_LABEL = 2000
INPUT_HINT = 2000
INPUT_PLACEHOLDER = 150
INPUT_INITIAL = 3000
PRIVATE_METADATA = 3000
SELECT_OPTIONS = 100
OPTION_TEXT = 75
OPTION_VALUE = 150
VIEW_BYTES = 240_000
"""Slack refuses views over 250 kB (``view_too_large``); this leaves room for the frame."""
FALLBACK_TEXT = 3000
"""Top-level ``text``: only notifications and screen readers use it when blocks are present."""

CMD_ACTION_PREFIX = "mdl.cmd."
FORM_ACTION_PREFIX = "mdl.form."
DETAILS_ACTION = "mdl.details"
FORM_CALLBACK = "mdl.form"
FIELD_ACTION = "value"
FIELD_BLOCK_PREFIX = "f."

# Sequences Slack acts on and our texts use: user mentions, channel links, links. Broadcasts
# (``<!channel>``, ``<!here>``, ``<!everyone>``, ``<!subteam^…>``) are deliberately not among
# them: no text of ours is one, so any in a message came from what a user typed (Slack turns a
# typed @channel into ``<!channel>``) and is shown, escaped, instead of notifying everyone.
_CONTROL = re.compile(r"<(?:[@#][^<>\s|]*+|(?:https?|mailto):[^<>\s|]*+)(?:\|[^<>]*+)?>")
_BROADCAST_WORD = re.compile(r"(?i)(?<![\w.@-])@(channel|here|everyone|group)\b")
_WORD_JOINER = "\u2060"
_ENTITY_TAIL = re.compile(r"&[a-z]{0,4}$")


# -- text helpers ----------------------------------------------------------------------------
def escape(text: str) -> str:
    """Escape ``& < >`` for mrkdwn, keeping Slack's own ``<@U…>``/``<#C…>``/link sequences;
    broadcast mentions are escaped, so user text can never notify a whole channel."""
    out: list[str] = []
    last = 0
    for match in _CONTROL.finditer(text):
        out.append(_slack_times(_escape_plain(text[last : match.start()])))
        out.append(match.group(0))
        last = match.end()
    out.append(_slack_times(_escape_plain(text[last:])))
    return "".join(out)


_ESCAPED_TIME = re.compile(r"&lt;time:(\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d)?Z)&gt;")


def _slack_times(escaped: str) -> str:
    """Time references (``core.messages.timestamp``) as Slack dates: each reader sees their own
    local time; the ISO form stays as the fallback."""

    def date(match: re.Match[str]) -> str:
        iso = match.group(1)
        epoch = int(parse_time_reference(iso).timestamp())
        clock = "{time_secs}" if iso.count(":") == 2 else "{time}"
        return f"<!date^{epoch}^{{date_short_pretty}} {clock}|{iso}>"

    return _ESCAPED_TIME.sub(date, escaped)


def _escape_plain(text: str) -> str:
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _defuse_words(text)


def _defuse_words(text: str) -> str:
    """``@here`` typed as a word: a word joiner after the ``@`` keeps Slack from parsing it."""
    return _BROADCAST_WORD.sub(lambda m: f"@{_WORD_JOINER}{m.group(1)}", text)


def defuse(text: str) -> str:
    """For plain_text: broadcast sequences and words made inert without visible change."""
    return _defuse_words(text.replace("<!", f"<{_WORD_JOINER}!"))


def _cut_point(text: str, limit: int) -> int:
    """An index ``<= limit`` that does not split an ``&amp;`` entity or a ``<…>`` sequence."""
    if len(text) <= limit:
        return len(text)
    cut = limit
    head = text[:cut]
    entity = _ENTITY_TAIL.search(head)
    if entity:
        cut = entity.start()
    opening = head.rfind("<")
    if opening > head.rfind(">") and opening > 0:
        cut = min(cut, opening)
    return max(cut, 1)


def clip(text: str, limit: int) -> str:
    """``text`` shortened to ``limit`` characters, ending in "…" when something was cut."""
    if len(text) <= limit:
        return text
    return text[: _cut_point(text, limit - 1)] + "…"


def _wrap_line(line: str, width: int) -> list[str]:
    pieces = []
    while len(line) > width:
        cut = _cut_point(line, width)
        pieces.append(line[:cut])
        line = line[cut:]
    pieces.append(line)
    return pieces


def split_mrkdwn(text: str, limit: int = SECTION_TEXT) -> list[str]:
    """Split on line boundaries into chunks of at most ``limit`` characters.

    A ```` ``` ```` fence open at a cut is closed at the end of one chunk and reopened at the
    start of the next, so code keeps its formatting across sections.
    """
    close = "\n```"
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    in_fence = False
    for raw in text.split("\n"):
        for line in _wrap_line(raw, limit - 2 * len(close)):
            extra = len(line) + (1 if current else 0)
            if current and size + extra + len(close) > limit:
                chunks.append("\n".join(current) + (close if in_fence else ""))
                current, size = (["```"], 3) if in_fence else ([], 0)
                extra = len(line) + (1 if current else 0)
            current.append(line)
            size += extra
            if line.count("```") % 2:
                in_fence = not in_fence
    if current:
        chunks.append("\n".join(current))
    return [c for c in chunks if c.strip()] or [""]


def plain(text: str, limit: int) -> dict[str, Any]:
    return {
        "type": "plain_text",
        "text": clip(defuse(plain_times(text)), limit) or " ",
        "emoji": True,
    }


def mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": mrkdwn(clip(text, SECTION_TEXT) or " ")}


def fallback_text(message: Message, limit: int = FALLBACK_TEXT) -> str:
    """The top-level ``text`` of a message: its plain rendering, escaped and clipped."""
    return clip(escape(message.plain_text()), limit) or " "


# -- rendering -------------------------------------------------------------------------------
@dataclass
class _Piece:
    block: dict[str, Any]
    units: int = 1
    unit: str = "block"
    keep: bool = False
    """Kept when the message must be cut (buttons: a card without them is useless)."""
    group: int = 0
    """Which source block it came from; cuts take the tail of the biggest groups first."""


Names = Callable[[str], str]
"""A Slack user id -> the name to show for it where Slack shows no mentions (code blocks)."""

_MENTION = re.compile(r"<@([A-Za-z0-9._-]+)(?:\|([^<>]*))?>")
_USERGROUP = re.compile(r"<!subteam\^([A-Za-z0-9]+)(?:\|([^<>]*))?>")
_CHANNEL = re.compile(r"<#([A-Z0-9]+)(?:\|([^<>]*))?>")


def literal(text: str, names: Names | None = None) -> str:
    """``text`` as a code block must show it: Slack resolves neither mentions nor dates there,
    so users become ``@name`` (through ``names``), groups ``@handle``, times their ISO form."""
    text = plain_times(text)
    text = _MENTION.sub(lambda m: _person(m.group(1), m.group(2), names), text)
    text = _USERGROUP.sub(lambda m: m.group(2) or f"@{m.group(1)}", text)
    return _CHANNEL.sub(lambda m: "#" + (m.group(2) or m.group(1)), text)


def _person(user: str, label: str | None, names: Names | None) -> str:
    if label:
        return label if label.startswith("@") else f"@{label}"
    if not USER_ID.match(user):
        return user  # not a person: "daemon", "api"
    return "@" + (names(user) if names else user)


class _Renderer:
    def __init__(self, names: Names | None = None) -> None:
        self.buttons = 0
        self.notes: list[str] = []
        self.names = names

    def render(self, message: Message) -> list[_Piece]:
        pieces: list[_Piece] = []
        for number, block in enumerate(message.blocks):
            for piece in self._block(block):
                piece.group = number
                pieces.append(piece)
        return pieces

    def _block(self, block: object) -> list[_Piece]:
        if isinstance(block, Header):
            return [_Piece({"type": "header", "text": plain(block.text, HEADER_TEXT)})]
        if isinstance(block, Text):
            return _text_pieces(escape(block.text))
        if isinstance(block, Fields):
            return self._fields(block)
        if isinstance(block, Table):
            return _table_pieces(block, self.names)
        if isinstance(block, Progress):
            bar = f"`{progress_bar(block.fraction)}` {escape(block.label)}".rstrip()
            return [_Piece(section(bar))]
        if isinstance(block, Code):
            return _code_pieces(block.text, self.names)
        if isinstance(block, Context):
            return [
                _Piece({"type": "context", "elements": [mrkdwn(chunk)]}, units=1, unit="note")
                for chunk in split_mrkdwn(escape(block.text))
            ]
        if isinstance(block, Details):
            return self._details(block)
        if isinstance(block, Actions):
            return self._actions(block.buttons)
        if isinstance(block, Divider):
            return [_Piece({"type": "divider"})]
        raise TypeError(f"cannot render {type(block).__name__} for Slack")

    def _fields(self, block: Fields) -> list[_Piece]:
        items = [
            mrkdwn(clip(f"*{escape(key)}*\n{escape(value)}", FIELD_TEXT))
            for key, value in block.pairs
        ]
        return [
            _Piece({"type": "section", "fields": items[i : i + FIELDS_PER_SECTION]})
            for i in range(0, len(items), FIELDS_PER_SECTION)
        ]

    def _details(self, block: Details) -> list[_Piece]:
        title = block.title or "details"
        button = {
            "type": "button",
            "action_id": DETAILS_ACTION,
            "text": plain(f"Show {title}", BUTTON_TEXT),
            "value": details_value(title, block.lines),
        }
        return [
            _Piece({"type": "context", "elements": [mrkdwn(clip(f"▸ {escape(title)}", 3000))]}),
            _Piece({"type": "actions", "elements": [button]}, keep=True),
        ]

    def _actions(self, buttons: tuple[Button, ...]) -> list[_Piece]:
        elements: list[dict[str, Any]] = []
        for button in buttons:
            self.buttons += 1
            element = self._button(button, self.buttons)
            if element is not None:
                elements.append(element)
        return [
            _Piece({"type": "actions", "elements": elements[i : i + ACTIONS_PER_BLOCK]}, keep=True)
            for i in range(0, len(elements), ACTIONS_PER_BLOCK)
        ]

    def _button(self, button: Button, number: int) -> dict[str, Any] | None:
        if button.form is not None:
            value = form_value(button.form)
            action_id = f"{FORM_ACTION_PREFIX}{number}"
        else:
            value = button.command
            action_id = f"{CMD_ACTION_PREFIX}{number}"
        if value is None or len(value) > BUTTON_VALUE:
            self.notes.append(
                f"“{button.label}” is not shown as a button (too long for Slack); "
                f"type `{clip(button.command, 200)}` instead."
            )
            return None
        element: dict[str, Any] = {
            "type": "button",
            "action_id": action_id,
            "text": plain(button.label, BUTTON_TEXT),
            "value": value,
        }
        if button.style:
            element["style"] = button.style
        if button.confirm:
            element["confirm"] = {
                "title": plain("Are you sure?", CONFIRM_TITLE),
                "text": mrkdwn(clip(escape(button.confirm), CONFIRM_TEXT)),
                "confirm": plain(button.label, CONFIRM_BUTTON),
                "deny": plain("Cancel", CONFIRM_BUTTON),
            }
            if button.style == "danger":
                element["confirm"]["style"] = "danger"
        return element


def _text_pieces(text: str) -> list[_Piece]:
    chunks = split_mrkdwn(text)
    return [_Piece(section(c), units=c.count("\n") + 1, unit="line") for c in chunks]


def _code_pieces(code: str, names: Names | None = None) -> list[_Piece]:
    body = escape(literal(code, names).replace("```", "ˋˋˋ")).rstrip("\n") or " "
    lines = [line for raw in body.split("\n") for line in _wrap_line(raw, SECTION_TEXT - 20)]
    return [
        _Piece(section(f"```\n{chunk}\n```"), units=n, unit="line")
        for chunk, n in _chunk_lines(lines, SECTION_TEXT - 8)
    ]


def _chunk_lines(lines: list[str], limit: int, header: str = "") -> list[tuple[str, int]]:
    """Group lines into chunks of at most ``limit`` characters (each prefixed by ``header``)."""
    out: list[tuple[str, int]] = []
    current: list[str] = []
    size = len(header)
    for line in lines:
        extra = len(line) + 1
        if current and size + extra > limit:
            out.append((header + "\n".join(current), len(current)))
            current, size = [], len(header)
        current.append(line)
        size += extra
    if current:
        out.append((header + "\n".join(current), len(current)))
    return out


def _table_pieces(table: Table, names: Names | None = None) -> list[_Piece]:
    pieces: list[_Piece] = []
    if table.title:
        pieces.append(_Piece(section(f"*{escape(table.title)}*")))
    if not table.rows:
        pieces.append(_Piece(section("_(none)_")))
        return pieces
    rows = tuple(tuple(literal(cell, names) for cell in row) for row in table.rows)
    lines = escape(format_table(table.columns, rows)).split("\n")
    header = "\n".join(clip(line, 700) for line in lines[:2]) + "\n"
    rows = [clip(line, 1400) for line in lines[2:]]
    for chunk, n in _chunk_lines(rows, SECTION_TEXT - 8, header=header):
        pieces.append(_Piece(section(f"```\n{chunk}\n```"), units=n, unit="row"))
    return pieces


def _plural(count: int, unit: str) -> str:
    return f"{count} more {unit}{'' if count == 1 else 's'}"


def _fit(pieces: list[_Piece], max_blocks: int) -> list[dict[str, Any]]:
    """At most ``max_blocks`` blocks. Over the limit, the tails of the biggest parts (a long
    table, a long text) are cut first, so the header, small notes and buttons stay, and a
    "… N more not shown" line takes the place of what was cut."""
    if len(pieces) <= max_blocks:
        return [p.block for p in pieces]
    excess = len(pieces) - (max_blocks - 1)
    groups: dict[int, list[int]] = {}
    for index, piece in enumerate(pieces):
        if not piece.keep:
            groups.setdefault(piece.group, []).append(index)
    dropped: set[int] = set()
    while excess > 0 and any(groups.values()):
        biggest = max(groups, key=lambda g: (len(groups[g]), g))  # ties: the later part
        dropped.add(groups[biggest].pop())
        excess -= 1
    for index in range(len(pieces) - 1, -1, -1):  # only buttons left: drop the last ones
        if excess <= 0:
            break
        if index not in dropped:
            dropped.add(index)
            excess -= 1
    counts: dict[str, int] = {}
    for index in sorted(dropped):
        counts[pieces[index].unit] = counts.get(pieces[index].unit, 0) + pieces[index].units
    parts = [_plural(n, unit) for unit, n in counts.items()]
    note = {
        "type": "context",
        "elements": [mrkdwn(clip(f"… {', '.join(parts)} not shown (Slack's size limit).", 3000))],
    }
    out: list[dict[str, Any]] = []
    placed = False
    for index, piece in enumerate(pieces):
        if index in dropped:
            if not placed:
                out.append(note)
                placed = True
            continue
        out.append(piece.block)
    return out


def render_blocks(
    message: Message, *, max_blocks: int = MAX_MESSAGE_BLOCKS, names: Names | None = None
) -> list[dict[str, Any]]:
    """Block Kit blocks for ``message``, never more than ``max_blocks`` and never over a limit.

    ``names`` shows users by name inside code blocks (tables), where Slack shows raw ids."""
    renderer = _Renderer(names)
    pieces = renderer.render(message)
    for note in renderer.notes:
        pieces.append(_Piece({"type": "context", "elements": [mrkdwn(clip(escape(note), 3000))]}))
    if not pieces:
        pieces = [_Piece(section(fallback_text(message, SECTION_TEXT)))]
    return _fit(pieces, max_blocks)


def render_message(message: Message, *, names: Names | None = None) -> dict[str, Any]:
    """``{"text", "blocks"}`` for chat.postMessage/chat.update/response_url."""
    return {"text": fallback_text(message), "blocks": render_blocks(message, names=names)}


def home_view(message: Message, *, names: Names | None = None) -> dict[str, Any]:
    """An App Home tab (no submit/close; up to 100 blocks)."""
    blocks = render_blocks(message, max_blocks=MAX_VIEW_BLOCKS, names=names)
    return {"type": "home", "blocks": blocks}


# -- details -------------------------------------------------------------------------------
def details_value(title: str, lines: tuple[str, ...] | list[str]) -> str:
    """Compact JSON ``{"t": title, "x": text}`` of at most BUTTON_VALUE characters; lines that
    do not fit are replaced by "… (N more lines)"."""
    title = clip(title, 150)
    rows = list(lines)

    def encode(body: str) -> str:
        return json.dumps({"t": title, "x": body}, ensure_ascii=False, separators=(",", ":"))

    def more(count: int) -> str:
        return f"… ({count} more line{'' if count == 1 else 's'})" if count else ""

    def attempt(keep: int) -> str:
        return encode("\n".join([*rows[:keep], more(len(rows) - keep)]).strip("\n"))

    value = encode("\n".join(rows))
    if len(value) <= BUTTON_VALUE:
        return value
    low, high = 0, len(rows)
    while low < high:  # the most lines that fit
        mid = (low + high + 1) // 2
        if len(attempt(mid)) <= BUTTON_VALUE:
            low = mid
        else:
            high = mid - 1
    if low > 0:
        return attempt(low)
    budget = BUTTON_VALUE - 60
    while budget > 0:  # even the first line is too long: clip it
        value = encode("\n".join([clip(rows[0], budget), more(len(rows) - 1)]).strip("\n"))
        if len(value) <= BUTTON_VALUE:
            return value
        budget -= len(value) - BUTTON_VALUE + 10
    return encode("…")


def parse_details_value(value: str) -> tuple[str, str]:
    data = json.loads(value)
    return str(data.get("t", "details")), str(data.get("x", ""))


# -- forms -----------------------------------------------------------------------------------
def _field_dict(field: FormField, level: int) -> dict[str, Any]:
    out: dict[str, Any] = {"n": field.name, "l": field.label}
    if field.multiline:
        out["m"] = 1
    if field.secret:
        out["s"] = 1
    if field.optional:
        out["o"] = 1
    if level < 3 and field.initial is not None:
        out["i"] = field.initial
    if level < 2 and field.placeholder is not None:
        out["p"] = field.placeholder
    if level < 1 and field.hint is not None:
        out["h"] = field.hint
    if field.options:
        out["c"] = list(field.options)
    return out


def form_value(form: Form) -> str | None:
    """The form as compact JSON within BUTTON_VALUE, dropping hints, then placeholders, then
    initial values if needed; None if even the bare form does not fit."""
    for level in range(4):
        data = {
            "t": form.title,
            "c": form.command,
            "s": form.submit,
            "f": [_field_dict(f, level) for f in form.fields],
        }
        value = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        if len(value) <= BUTTON_VALUE:
            return value
    return None


def parse_form_value(value: str) -> Form:
    data = json.loads(value)
    return Form(
        title=str(data["t"]),
        command=str(data["c"]),
        submit=str(data.get("s") or "Submit"),
        fields=tuple(
            FormField(
                name=str(f["n"]),
                label=str(f["l"]),
                multiline=bool(f.get("m")),
                secret=bool(f.get("s")),
                optional=bool(f.get("o")),
                initial=f.get("i"),
                placeholder=f.get("p"),
                hint=f.get("h"),
                options=tuple(str(o) for o in f.get("c") or ()),
            )
            for f in data.get("f", [])
        ),
    )


def _select(field: FormField) -> dict[str, Any]:
    """A ``static_select`` over the field's options (Slack allows 100, values of 150 chars)."""
    options = [
        {"text": plain(o, OPTION_TEXT), "value": o[:OPTION_VALUE]}
        for o in field.options[:SELECT_OPTIONS]
    ]
    element: dict[str, Any] = {
        "type": "static_select",
        "action_id": FIELD_ACTION,
        "options": options,
    }
    chosen = next((o for o in options if o["value"] == field.initial), None)
    if chosen is not None:
        element["initial_option"] = chosen
    if field.placeholder:
        element["placeholder"] = plain(field.placeholder, INPUT_PLACEHOLDER)
    return element


def _input_block(field: FormField, label: int, hint_limit: int, initial: int) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": FIELD_ACTION,
        "multiline": field.multiline,
    }
    if field.initial and not field.secret and initial > 0:
        element["initial_value"] = field.initial[: min(initial, INPUT_INITIAL)]
    if field.placeholder:
        element["placeholder"] = plain(field.placeholder, INPUT_PLACEHOLDER)
    if field.options and not field.secret:
        element = _select(field)
    block: dict[str, Any] = {
        "type": "input",
        "block_id": (FIELD_BLOCK_PREFIX + field.name)[:ID_LENGTH],
        "optional": field.optional,
        "label": plain(field.label, label),
        "element": element,
    }
    hint = field.hint
    if field.secret:
        hint = ((hint + " ") if hint else "") + "Passed to the command privately; never logged."
    if hint:
        block["hint"] = plain(hint, hint_limit)
    return block


def form_view(form: Form, *, channel: str | None) -> dict[str, Any]:
    """A modal for ``form``; ``private_metadata`` carries what the submission needs."""
    metadata = json.dumps(
        {
            "command": form.command,
            "channel": channel,
            "secret": [f.name for f in form.fields if f.secret],
        },
        separators=(",", ":"),
    )
    if len(metadata) > PRIVATE_METADATA:
        raise ValueError("form command too long for a Slack modal")
    fields = form.fields[:MAX_VIEW_BLOCKS]
    blocks = [_input_block(f, INPUT_LABEL, INPUT_HINT, INPUT_INITIAL) for f in fields]
    initial = VIEW_BYTES // max(1, len(fields))
    while len(json.dumps(blocks)) > VIEW_BYTES:  # shrink to Slack's 250 kB: labels, then values
        initial //= 2
        blocks = [_input_block(f, 150, 150, initial) for f in fields]
    if not blocks:
        blocks.append(section(f"Run `{escape(clip(form.command, 2900))}`?"))
    return {
        "type": "modal",
        "callback_id": FORM_CALLBACK,
        "title": plain(form.title, MODAL_TITLE),
        "submit": plain(form.submit, MODAL_TITLE),
        "close": plain("Cancel", MODAL_TITLE),
        "private_metadata": metadata,
        "blocks": blocks,
    }
