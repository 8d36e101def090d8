"""The Modelfile library: stored Modelfiles with revisions, and reusable elements.

Revisions are append-only so ``history``/``diff`` stay true and a rollback is just a new
revision with old text; a revision is a *draft* until it has been created on an endpoint
(``record_application``). Elements (system prompts, templates, parameter sets, message sets)
have revisions too; composing records which element revisions a Modelfile revision came from,
which is what usage counts and "popular combinations" are computed from.

Everything a user pastes goes through the pure layer (``parse`` then ``validate``), so what we
store is what ``ollama create`` would accept, and every problem is reported with its line.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from modelarium.core.clock import Clock
from modelarium.core.db.models.modelfiles import (
    ModelfileApplication,
    ModelfileElement,
    ModelfileElementRevision,
    ModelfileRevision,
    ModelfileRevisionElement,
    StoredModelfile,
)
from modelarium.core.db.uow import Database
from modelarium.core.echo import shown
from modelarium.core.errors import ConflictError, NotFoundError, UsageError, ValidationError
from modelarium.core.modelfiles.elements import Elements, split_elements
from modelarium.core.modelfiles.errors import ModelfileParseError
from modelarium.core.modelfiles.model import Command, Message, Modelfile
from modelarium.core.modelfiles.parser import parse
from modelarium.core.modelfiles.template import check_template
from modelarium.core.modelfiles.validate import Problem, validate
from modelarium.core.modelfiles.writer import encode_value, write

ELEMENT_KINDS: tuple[str, ...] = ("system", "template", "parameters", "messages")
KIND_LABELS = {
    "system": "system prompt",
    "template": "template",
    "parameters": "parameter set",
    "messages": "message set",
}
SOURCES = ("paste", "file", "compose", "extract", "rollback")
MAX_TEXT = 512 * 1024
"""A Modelfile or element larger than this is refused: it is not a prompt, it is a mistake."""

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}")
_ELEMENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_MAX_REVISION = 2**31 - 1
"""Revision numbers are INTEGER columns; a larger one cannot exist (and would overflow)."""
_REF = re.compile(r"(?P<name>[^@\s]+)(?:@(?P<number>\d+))?")


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise UsageError(
            f"invalid Modelfile name {name!r}: use letters, digits and . _ - : / (max 128)"
        )
    return name


def check_element_name(name: str) -> str:
    if not _ELEMENT_NAME.fullmatch(name):
        raise UsageError(f"invalid element name {name!r}: use letters, digits and . _ - (max 128)")
    return name


def parse_ref(ref: str) -> tuple[str, int | None]:
    """``name`` or ``name@3`` -> (name, revision or None for the latest)."""
    match = _REF.fullmatch(ref.strip())
    if not match:
        raise UsageError(f"invalid reference {ref!r}: expected NAME or NAME@REVISION")
    name, number = match.group("name"), match.group("number")
    if number and (len(number) > 10 or int(number) > _MAX_REVISION):
        raise NotFoundError(f"no revision {shown(f'{name}@{number}', quote=False)}")
    return name, int(number) if number else None


def one_line(text: str, limit: int = 80) -> str:
    """A value shown on one line (newlines as ⏎), clipped."""
    flat = text.replace("\r\n", "\n").replace("\n", " ⏎ ").replace("\t", " ")
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


# -- views ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ElementView:
    """One revision of an element; ``head`` is the element's latest revision number."""

    name: str
    kind: str
    number: int
    head: int
    content: dict[str, Any]
    author: str
    message: str | None
    created_at: datetime

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.number}"

    @property
    def label(self) -> str:
        return KIND_LABELS[self.kind]

    def preview(self, limit: int = 80) -> str:
        return element_preview(self.kind, self.content, limit)

    def as_modelfile_text(self) -> str:
        """The element as Modelfile lines (how it is exported and how it reads back)."""
        mf = _compose_kwargs(Elements(), {self.kind: self.content})
        lines = write(Modelfile(c for c in mf.compose() if c.name != "from"))
        return lines


@dataclass(frozen=True)
class ElementSummary:
    name: str
    kind: str
    head: int
    created_by: str
    updated_at: datetime
    preview: str
    modelfiles: int
    """Distinct Modelfiles with a revision composed from this element."""
    revisions: int
    """Modelfile revisions composed from it."""


@dataclass(frozen=True)
class Application:
    endpoint: str
    model: str
    applied_by: str
    applied_at: datetime
    job_id: int | None


@dataclass(frozen=True)
class RevisionView:
    name: str
    number: int
    head: int
    text: str
    source: str
    author: str
    message: str | None
    created_at: datetime
    applications: tuple[Application, ...] = ()
    elements: tuple[str, ...] = ()
    """Element revisions (``name@N``) this revision was composed from."""

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.number}"

    @property
    def draft(self) -> bool:
        return not self.applications

    @property
    def modelfile(self) -> Modelfile:
        return parse(self.text)


@dataclass(frozen=True)
class ModelfileSummary:
    name: str
    head: int
    base: str | None
    author: str
    updated_at: datetime
    applied: int
    """How many times the latest revision was created on an endpoint (0: a draft)."""


@dataclass(frozen=True)
class Preview:
    """A Modelfile as it would be saved: its text, what it amounts to, and its problems."""

    text: str
    modelfile: Modelfile
    elements: Elements
    problems: list[Problem]
    used: tuple[ElementView, ...] = field(default=())

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]


@dataclass(frozen=True)
class Combination:
    base: str | None
    elements: tuple[str, ...]
    modelfiles: int
    revisions: int


# -- element content ---------------------------------------------------------------------------


def element_preview(kind: str, content: Mapping[str, Any], limit: int = 80) -> str:
    if kind in ("system", "template"):
        return one_line(str(content.get("text", "")), limit)
    if kind == "parameters":
        parts = []
        for name, value in (content.get("parameters") or {}).items():
            values = value if isinstance(value, list) else [value]
            parts += [f"{name}={one_line(str(v), 30)}" for v in values]
        return one_line(", ".join(parts), limit)
    messages = content.get("messages") or []
    first = f"{messages[0]['role']}: {messages[0]['content']}" if messages else ""
    return one_line(f"{len(messages)} message(s) {first}".strip(), limit)


def _shift(err: ModelfileParseError, lines: int) -> ModelfileParseError:
    return ModelfileParseError(
        err.reason, line=max(1, err.line - lines), column=err.column, ollama_error=err.ollama_error
    )


def _lines_modelfile(text: str, allowed: str, kind: str) -> Modelfile:
    """Parse PARAMETER or MESSAGE lines (no FROM needed) with lines counted from the text."""
    try:
        mf = parse("FROM _\n" + text)
    except ModelfileParseError as err:
        raise _shift(err, 1) from None
    body = Modelfile(replace(c, line=c.line - 1) for c in mf.commands[1:])
    for cmd in body:
        if cmd.name != allowed:
            raise ValidationError(
                f"line {cmd.line}: a {KIND_LABELS[kind]} holds only {allowed.upper()} lines,"
                f" not {cmd.name.upper()}"
            )
    if not len(body):
        raise ValidationError(f"a {KIND_LABELS[kind]} needs at least one {allowed.upper()} line")
    return body


def _first_error(problems: Iterable[Problem]) -> None:
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ValidationError(f"{errors[0]}{more}")


def element_content(
    kind: str, text: str | None = None, settings: Sequence[tuple[str, str]] = ()
) -> tuple[dict[str, Any], list[Problem]]:
    """Validated storage content for an element, plus its warnings.

    System prompts and templates are the text itself; parameter and message sets are written as
    Modelfile lines (``PARAMETER temperature 0.7``, ``MESSAGE user hi``), and parameters may
    also come as ``name=value`` pairs. Anything ``ollama create`` would refuse raises.
    """
    if kind not in ELEMENT_KINDS:
        raise UsageError(f"element kind must be one of {', '.join(ELEMENT_KINDS)} (got {kind!r})")
    if text is not None and len(text) > MAX_TEXT:
        raise ValidationError(f"the text is {len(text)} characters; the limit is {MAX_TEXT}")
    if settings and kind != "parameters":
        raise UsageError("--set is only for parameter sets")
    if kind in ("system", "template"):
        if text is None or not text.strip():
            raise UsageError(f"a {KIND_LABELS[kind]} needs its text (--text or --file)")
        encode_value(text)  # raises when no Modelfile quoting can carry it
        problems: list[Problem] = []
        if kind == "template":
            report = check_template(text)
            problems = [
                Problem(p.severity, p.line, f"template: {p.message}") for p in report.problems
            ]
            _first_error(problems)
        return {"text": text}, problems
    if kind == "messages":
        if text is None:
            raise UsageError("a message set needs MESSAGE lines (--text or --file)")
        body = _lines_modelfile(text, "message", kind)
        problems = [p for p in validate(Modelfile([*body, _from()])) if p.line]
        _first_error(problems)
        return {"messages": [{"role": m.role, "content": m.content} for m in body.messages]}, []
    commands: list[Command] = []
    if text is not None and text.strip():
        commands += list(_lines_modelfile(text, "parameter", kind))
    for name, value in settings:
        commands.append(Command.parameter(name, value))
    if not commands:
        raise UsageError("a parameter set needs PARAMETER lines (--text/--file) or --set k=v")
    problems = validate(Modelfile([*commands, _from()]))
    _first_error(problems)
    values = split_elements(Modelfile([_from(), *commands])).parameters
    return {"parameters": values}, problems


def check_content(kind: str, content: Mapping[str, Any]) -> None:
    """Refuse stored content ``ollama create`` would reject (however it was produced)."""
    if kind not in ELEMENT_KINDS:
        raise UsageError(f"element kind must be one of {', '.join(ELEMENT_KINDS)} (got {kind!r})")
    try:
        elements = _compose_kwargs(Elements(base="_"), {kind: content})
        modelfile = parse(write(elements.compose()))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValidationError(f"malformed {KIND_LABELS[kind]} content ({exc})") from None
    errors = [p for p in validate(modelfile) if p.severity == "error"]
    if errors:
        raise ValidationError(f"{KIND_LABELS[kind]}: {errors[0].message}")


def _from() -> Command:
    return Command.from_("_")


def _compose_kwargs(start: Elements, parts: Mapping[str, Mapping[str, Any]]) -> Elements:
    """``start`` with one element of each kind swapped in (used to render a lone element)."""
    data = start.to_dict()
    for kind, content in parts.items():
        if kind in ("system", "template"):
            data[kind] = content["text"]
        elif kind == "parameters":
            data["parameters"] = dict(content["parameters"])
        elif kind == "messages":
            data["messages"] = list(content["messages"])
    return Elements(**{**data, "messages": [_msg(m) for m in data["messages"]]})


def _msg(m: Mapping[str, str]) -> Message:
    return Message(m["role"], m["content"])


def preview_text(text: str) -> Preview:
    """Parse and validate pasted text (a parse error raises, with its line and column)."""
    if len(text) > MAX_TEXT:
        raise ValidationError(f"the Modelfile is {len(text)} characters; the limit is {MAX_TEXT}")
    modelfile = parse(text)
    return Preview(text, modelfile, split_elements(modelfile), validate(modelfile))


def unified_diff(old: str, new: str, old_label: str, new_label: str) -> str:
    lines = difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True), old_label, new_label
    )
    out = []
    for line in lines:
        out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out)


# -- the service -------------------------------------------------------------------------------


class ModelfileLibrary:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    # -- elements -------------------------------------------------------------------------------

    def save_element(
        self,
        kind: str,
        name: str,
        content: dict[str, Any],
        *,
        author: str,
        message: str | None = None,
    ) -> tuple[ElementView, bool]:
        """Create the element or add a revision; (view, changed). Same content: no new revision."""
        check_element_name(name)
        check_content(kind, content)
        now = self._clock.now()
        try:
            with self._db.transaction() as session:
                element = session.scalar(
                    sa.select(ModelfileElement)
                    .where(ModelfileElement.name == name)
                    .with_for_update()
                )
                if element is None:
                    element = ModelfileElement(
                        name=name, kind=kind, head=0, created_by=author, created_at=now
                    )
                    session.add(element)
                    session.flush()
                elif element.kind != kind:
                    raise ConflictError(
                        f"element {name} is a {KIND_LABELS[element.kind]}, not a"
                        f" {KIND_LABELS[kind]}; pick another name"
                    )
                else:
                    head = self._element_revision(session, element, element.head)
                    if head.content == content:
                        return _element_view(element, head), False
                element.head += 1
                element.updated_at = now
                revision = ModelfileElementRevision(
                    element_id=element.id,
                    number=element.head,
                    content=content,
                    author=author,
                    message=message,
                    created_at=now,
                )
                session.add(revision)
                session.flush()
                return _element_view(element, revision), True
        except IntegrityError:
            raise ConflictError(
                f"element {name} was saved by someone else just now; retry"
            ) from None

    def element(self, ref: str) -> ElementView:
        name, number = parse_ref(ref)
        with self._db.transaction() as session:
            element = self._element_row(session, name)
            return _element_view(
                element, self._element_revision(session, element, number or element.head)
            )

    def element_revisions(self, name: str) -> list[ElementView]:
        with self._db.transaction() as session:
            element = self._element_row(session, name)
            rows = session.scalars(
                sa.select(ModelfileElementRevision)
                .where(ModelfileElementRevision.element_id == element.id)
                .order_by(ModelfileElementRevision.number.desc())
            )
            return [_element_view(element, r) for r in rows]

    def elements(self, kind: str | None = None) -> list[ElementSummary]:
        """Every element with its usage, the most used first."""
        link, rev = ModelfileRevisionElement, ModelfileRevision
        usage = (
            sa.select(
                link.element_id,
                sa.func.count(sa.distinct(rev.modelfile_id)).label("modelfiles"),
                sa.func.count(link.id).label("revisions"),
            )
            .join(rev, rev.id == link.revision_id)
            .group_by(link.element_id)
            .subquery()
        )
        head = ModelfileElementRevision
        stmt = (
            sa.select(ModelfileElement, head, usage.c.modelfiles, usage.c.revisions)
            .join(
                head,
                sa.and_(
                    head.element_id == ModelfileElement.id, head.number == ModelfileElement.head
                ),
            )
            .outerjoin(usage, usage.c.element_id == ModelfileElement.id)
        )
        if kind:
            stmt = stmt.where(ModelfileElement.kind == kind)
        with self._db.transaction() as session:
            rows = session.execute(stmt).all()
        out = [
            ElementSummary(
                name=e.name,
                kind=e.kind,
                head=e.head,
                created_by=e.created_by,
                updated_at=e.updated_at,
                preview=element_preview(e.kind, r.content, 60),
                modelfiles=int(m or 0),
                revisions=int(n or 0),
            )
            for e, r, m, n in rows
        ]
        return sorted(out, key=lambda s: (-s.modelfiles, -s.revisions, s.name))

    # -- composing ------------------------------------------------------------------------------

    def compose(
        self,
        *,
        base: str | None = None,
        start: str | None = None,
        system: str | None = None,
        template: str | None = None,
        parameters: Sequence[str] = (),
        messages: Sequence[str] = (),
        settings: Sequence[tuple[str, str]] = (),
    ) -> Preview:
        """The Modelfile that ``base`` (or stored Modelfile ``start``) plus elements amounts to.

        Later parameter sets override earlier ones and ``--set`` overrides them all; ``stop``
        sequences accumulate, as repeated ``PARAMETER stop`` lines do in Ollama. Message sets
        are concatenated and replace the starting Modelfile's messages. Parameters are written
        in name order.
        """
        data = Elements().to_dict()
        if start:
            data = split_elements(self.revision(start).modelfile).to_dict()
        if base:
            data["base"] = base
        used: list[ElementView] = []

        def take(ref: str, kind: str) -> dict[str, Any]:
            view = self.element(ref)
            if view.kind != kind:
                raise UsageError(
                    f"element {view.name} is a {view.label}, not a {KIND_LABELS[kind]}"
                )
            used.append(view)
            return view.content

        if system:
            data["system"] = take(system, "system")["text"]
        if template:
            data["template"] = take(template, "template")["text"]
        params: dict[str, Any] = dict(data["parameters"])
        for ref in parameters:
            for key, value in take(ref, "parameters")["parameters"].items():
                if key == "stop":
                    stops = list(params.get("stop") or [])
                    params["stop"] = stops + [v for v in value if v not in stops]
                else:
                    params[key] = value
        overridden: dict[str, list[str]] = defaultdict(list)
        for key, value in settings:
            overridden[key].append(value)
        for key, values in overridden.items():
            params[key] = values if key == "stop" else values[-1]
        # Sorted: PostgreSQL's JSONB does not keep key order, and the same elements must
        # compose to the same text on every backend.
        data["parameters"] = dict(sorted(params.items()))
        if messages:
            data["messages"] = [m for ref in messages for m in take(ref, "messages")["messages"]]
        if not data.get("base"):
            raise UsageError("no base model: pass --from MODEL, or --modelfile NAME to start from")
        if len({v.name for v in used}) != len(used):
            raise UsageError("the same element is used twice")
        text = write(Elements.from_dict(data).compose())
        preview = preview_text(text)
        return replace(preview, used=tuple(used))

    # -- stored Modelfiles ----------------------------------------------------------------------

    def save(
        self,
        name: str,
        text: str,
        *,
        author: str,
        message: str | None = None,
        source: str = "paste",
        used: Iterable[ElementView] = (),
        force: bool = False,
    ) -> RevisionView:
        """Store ``text`` as the next revision of ``name`` (a draft until it is applied).

        Refused when it does not parse, when validation finds errors (unless ``force``), or when
        it is the same text as the latest revision.
        """
        check_name(name)
        if source not in SOURCES:
            raise ValueError(f"unknown revision source {source!r}")
        preview = preview_text(text)
        if preview.errors and not force:
            _first_error(preview.errors)
        used = list(used)
        now = self._clock.now()
        try:
            with self._db.transaction() as session:
                stored = session.scalar(
                    sa.select(StoredModelfile).where(StoredModelfile.name == name).with_for_update()
                )
                if stored is None:
                    stored = StoredModelfile(name=name, head=0, created_by=author, created_at=now)
                    session.add(stored)
                    session.flush()
                else:
                    head = self._revision_row(session, stored, stored.head)
                    if head.text == text:
                        raise ConflictError(
                            f"{name} is unchanged: this is the text of revision {head.number}"
                        )
                stored.head += 1
                stored.updated_at = now
                row = ModelfileRevision(
                    modelfile_id=stored.id,
                    number=stored.head,
                    text=text,
                    source=source,
                    author=author,
                    message=message,
                    created_at=now,
                )
                session.add(row)
                session.flush()
                seen: set[str] = set()
                for view in used:
                    if view.name in seen:
                        continue
                    seen.add(view.name)
                    element = self._element_row(session, view.name)
                    session.add(
                        ModelfileRevisionElement(
                            revision_id=row.id, element_id=element.id, element_number=view.number
                        )
                    )
                session.flush()
                return self._revision_view(session, stored, row)
        except IntegrityError:
            raise ConflictError(f"{name} was saved by someone else just now; retry") from None

    def revision(self, ref: str, number: int | None = None) -> RevisionView:
        """``name``, ``name@N``, or ``name`` with ``number``; the latest when unspecified."""
        name, at = parse_ref(ref)
        with self._db.transaction() as session:
            stored = self._stored_row(session, name)
            row = self._revision_row(session, stored, number or at or stored.head)
            return self._revision_view(session, stored, row)

    def history(self, name: str) -> list[RevisionView]:
        with self._db.transaction() as session:
            stored = self._stored_row(session, name)
            rows = session.scalars(
                sa.select(ModelfileRevision)
                .where(ModelfileRevision.modelfile_id == stored.id)
                .order_by(ModelfileRevision.number.desc())
            ).all()
            return [self._revision_view(session, stored, r) for r in rows]

    def list(self) -> list[ModelfileSummary]:
        rev = ModelfileRevision
        applied = (
            sa.select(ModelfileApplication.revision_id, sa.func.count().label("n"))
            .group_by(ModelfileApplication.revision_id)
            .subquery()
        )
        stmt = (
            sa.select(StoredModelfile, rev, applied.c.n)
            .join(
                rev,
                sa.and_(rev.modelfile_id == StoredModelfile.id, rev.number == StoredModelfile.head),
            )
            .outerjoin(applied, applied.c.revision_id == rev.id)
            .order_by(StoredModelfile.name)
        )
        with self._db.transaction() as session:
            rows = session.execute(stmt).all()
        out = []
        for stored, row, n in rows:
            try:
                base = parse(row.text).from_
            except ModelfileParseError:
                base = None
            out.append(
                ModelfileSummary(
                    stored.name, stored.head, base, row.author, row.created_at, int(n or 0)
                )
            )
        return out

    def diff(
        self, name: str, old: int | None = None, new: int | None = None
    ) -> tuple[RevisionView | None, RevisionView, str]:
        """Unified diff text from revision ``old`` to ``new`` (default: the last change)."""
        with self._db.transaction() as session:
            stored = self._stored_row(session, name)
            new_row = self._revision_row(session, stored, new or stored.head)
            old_number = old if old is not None else new_row.number - 1
            old_row = self._revision_row(session, stored, old_number) if old_number else None
            new_view = self._revision_view(session, stored, new_row)
            old_view = self._revision_view(session, stored, old_row) if old_row else None
        text = unified_diff(
            old_view.text if old_view else "",
            new_view.text,
            old_view.ref if old_view else "/dev/null",
            new_view.ref,
        )
        return old_view, new_view, text

    def rollback(
        self, name: str, number: int, *, author: str, message: str | None = None
    ) -> RevisionView:
        """A new revision with the text (and element links) of revision ``number``."""
        old = self.revision(name, number)
        if old.number == old.head:
            raise ConflictError(f"revision {number} is already the latest revision of {name}")
        used = [self.element(ref) for ref in old.elements]
        return self.save(
            name,
            old.text,
            author=author,
            message=message or f"rollback to revision {number}",
            source="rollback",
            used=used,
            force=True,
        )

    def record_application(
        self,
        name: str,
        number: int,
        *,
        endpoint: str,
        model: str,
        user: str,
        job_id: int | None = None,
    ) -> bool:
        """Note that revision ``number`` was created as ``model`` on ``endpoint``.

        Idempotent per job (a resumed job records once); False when already recorded.
        """
        with self._db.transaction() as session:
            if job_id is not None and session.scalar(
                sa.select(ModelfileApplication.id).where(ModelfileApplication.job_id == job_id)
            ):
                return False
            stored = self._stored_row(session, name)
            row = self._revision_row(session, stored, number)
            session.add(
                ModelfileApplication(
                    revision_id=row.id,
                    endpoint=endpoint,
                    model=model,
                    applied_by=user,
                    applied_at=self._clock.now(),
                    job_id=job_id,
                )
            )
        return True

    def combinations(self, limit: int = 10) -> list[Combination]:
        """Base + element sets that Modelfiles were composed from, the most common first."""
        link, rev = ModelfileRevisionElement, ModelfileRevision
        stmt = (
            sa.select(rev.id, rev.modelfile_id, rev.text, ModelfileElement.name)
            .join(link, link.revision_id == rev.id)
            .join(ModelfileElement, ModelfileElement.id == link.element_id)
        )
        with self._db.transaction() as session:
            rows = session.execute(stmt).all()
        names: dict[int, set[str]] = defaultdict(set)
        owner: dict[int, int] = {}
        texts: dict[int, str] = {}
        for rev_id, modelfile_id, text, element in rows:
            names[rev_id].add(element)
            owner[rev_id] = modelfile_id
            texts[rev_id] = text
        revisions: Counter[tuple[str | None, tuple[str, ...]]] = Counter()
        modelfiles: dict[tuple[str | None, tuple[str, ...]], set[int]] = defaultdict(set)
        for rev_id, elements in names.items():
            try:
                base = parse(texts[rev_id]).from_
            except ModelfileParseError:
                base = None
            key = (base, tuple(sorted(elements)))
            revisions[key] += 1
            modelfiles[key].add(owner[rev_id])
        combos = [
            Combination(base, elements, len(modelfiles[(base, elements)]), count)
            for (base, elements), count in revisions.items()
        ]
        combos.sort(key=lambda c: (-c.modelfiles, -c.revisions, c.base or "", c.elements))
        return combos[:limit]

    # -- internals ------------------------------------------------------------------------------

    @staticmethod
    def _element_row(session: Session, name: str) -> ModelfileElement:
        row = session.scalar(sa.select(ModelfileElement).where(ModelfileElement.name == name))
        if row is None:
            raise NotFoundError(f"no element named {name}")
        return row

    @staticmethod
    def _element_revision(
        session: Session, element: ModelfileElement, number: int
    ) -> ModelfileElementRevision:
        row = session.scalar(
            sa.select(ModelfileElementRevision).where(
                ModelfileElementRevision.element_id == element.id,
                ModelfileElementRevision.number == number,
            )
        )
        if row is None:
            raise NotFoundError(
                f"element {element.name} has no revision {number} (latest is {element.head})"
            )
        return row

    @staticmethod
    def _stored_row(session: Session, name: str) -> StoredModelfile:
        row = session.scalar(sa.select(StoredModelfile).where(StoredModelfile.name == name))
        if row is None:
            raise NotFoundError(f"no stored Modelfile named {name}")
        return row

    @staticmethod
    def _revision_row(session: Session, stored: StoredModelfile, number: int) -> ModelfileRevision:
        row = session.scalar(
            sa.select(ModelfileRevision).where(
                ModelfileRevision.modelfile_id == stored.id, ModelfileRevision.number == number
            )
        )
        if row is None:
            raise NotFoundError(f"{stored.name} has no revision {number} (latest is {stored.head})")
        return row

    @staticmethod
    def _revision_view(
        session: Session, stored: StoredModelfile, row: ModelfileRevision
    ) -> RevisionView:
        applications = session.scalars(
            sa.select(ModelfileApplication)
            .where(ModelfileApplication.revision_id == row.id)
            .order_by(ModelfileApplication.applied_at, ModelfileApplication.id)
        ).all()
        links = session.execute(
            sa.select(ModelfileElement.name, ModelfileRevisionElement.element_number)
            .join(ModelfileElement, ModelfileElement.id == ModelfileRevisionElement.element_id)
            .where(ModelfileRevisionElement.revision_id == row.id)
            .order_by(ModelfileElement.name)
        ).all()
        return RevisionView(
            name=stored.name,
            number=row.number,
            head=stored.head,
            text=row.text,
            source=row.source,
            author=row.author,
            message=row.message,
            created_at=row.created_at,
            applications=tuple(
                Application(a.endpoint, a.model, a.applied_by, a.applied_at, a.job_id)
                for a in applications
            ),
            elements=tuple(f"{n}@{number}" for n, number in links),
        )


def _element_view(element: ModelfileElement, row: ModelfileElementRevision) -> ElementView:
    return ElementView(
        name=element.name,
        kind=element.kind,
        number=row.number,
        head=element.head,
        content=dict(row.content),
        author=row.author,
        message=row.message,
        created_at=row.created_at,
    )
