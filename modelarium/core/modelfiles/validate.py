"""Modelfile validation: what ``ollama create`` would refuse, and what would quietly misbehave.

Errors are the create-time and server-time refusals the parser cannot see (parameter names,
types, REQUIRES, template syntax) plus values that make no sense (``top_p 3``) or that a
Modelfile cannot carry. Warnings are combinations Ollama accepts without complaint but that
rarely do what the author meant: a SYSTEM the template never shows, stop sequences the template
never writes, an overridden duplicate, an adapter trained on another base.
"""

from __future__ import annotations

import json
import posixpath
import re
from typing import Literal, NamedTuple

from modelarium.core.modelfiles import parameters as params
from modelarium.core.modelfiles.errors import ModelfileWriteError, ParameterError
from modelarium.core.modelfiles.model import (
    COMMANDS,
    MESSAGE_ROLES,
    SINGLETONS,
    Command,
    Modelfile,
)
from modelarium.core.modelfiles.parser import INVALID_ROLE, MISSING_FROM
from modelarium.core.modelfiles.template import check_template
from modelarium.core.modelfiles.writer import encode_value

Severity = Literal["error", "warning"]

_SEMVER = re.compile(
    r"v(0|[1-9][0-9]*)(?:\.(0|[1-9][0-9]*)(?:\.(0|[1-9][0-9]*)"
    r"(?:-((?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
    r"(?:\.(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?)?)?"
)
_LOCAL_FILE = re.compile(r"\.(gguf|bin|safetensors|pth)$", re.IGNORECASE)
_ONE_LINE = ("from", "adapter", "draft", "renderer", "parser")
# PARAMETER names Ollama cannot tell from a command: its Command.Name is shared by both.
_ALIASES = {"model": "from"} | {c: c for c in COMMANDS if c not in ("from", "parameter")}


class Problem(NamedTuple):
    """One finding; ``line`` is the command's source line, 0 for a Modelfile built in code."""

    severity: Severity
    line: int
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.severity}: {self.message}"


def is_semver(requires: str) -> bool:
    """``golang.org/x/mod/semver.IsValid`` after ``ollama create`` adds the ``v`` prefix."""
    return bool(_SEMVER.fullmatch(requires if requires.startswith("v") else "v" + requires))


def is_local_path(ref: str) -> bool:
    """Whether a FROM/ADAPTER value names a file or folder rather than a registry model."""
    return (
        ref.startswith(("/", "./", "../", "~", "\\"))
        or ref in (".", "..")
        or bool(re.match(r"[A-Za-z]:[\\/]", ref))
        or bool(_LOCAL_FILE.search(ref))
    )


def _show(value: str) -> str:
    """A value as one line, for messages (newlines and tabs escaped)."""
    return (
        json.dumps(value, ensure_ascii=False)[1:-1] if any(c in value for c in "\r\n\t") else value
    )


def _role(cmd: Command) -> str:
    return cmd.key if cmd.name == "message" else cmd.args.partition(": ")[0]


def _model_name(ref: str) -> tuple[str, str]:
    ref = ref.strip().lower().replace("\\", "/")
    if is_local_path(ref):
        return _LOCAL_FILE.sub("", posixpath.basename(ref.rstrip("/"))), ""
    ref = re.sub(r"^(https?://)?(hf\.co|huggingface\.co|registry\.ollama\.ai)/", "", ref)
    name, _, tag = ref.partition(":")
    return name.rsplit("/", 1)[-1], tag


def base_differs(from_: str, adapter_base: str) -> bool:
    """Heuristic: do two model references name different bases (family or size tag)?"""
    (name_a, tag_a), (name_b, tag_b) = _model_name(from_), _model_name(adapter_base)
    a, b = re.sub(r"[^a-z0-9]", "", name_a), re.sub(r"[^a-z0-9]", "", name_b)
    if not a or not b:
        return False
    if a in b or b in a:
        return bool(tag_a and tag_b and tag_a != tag_b and "latest" not in (tag_a, tag_b))
    return True


class _Validator:
    def __init__(self, mf: Modelfile, adapter_base: str | None) -> None:
        self.mf = mf
        self.adapter_base = adapter_base
        self.problems: list[Problem] = []

    def error(self, cmd: Command | None, message: str) -> None:
        self.problems.append(Problem("error", cmd.line if cmd else 0, message))

    def warn(self, cmd: Command | None, message: str) -> None:
        self.problems.append(Problem("warning", cmd.line if cmd else 0, message))

    def run(self) -> list[Problem]:
        self.values()
        self.froms()
        self.parameters()
        self.messages()
        self.singletons()
        self.requires()
        self.template()
        self.adapters()
        order = {"error": 0, "warning": 1}
        return sorted(self.problems, key=lambda p: (p.line, order[p.severity]))

    def values(self) -> None:
        for cmd in self.mf:
            try:
                encode_value(cmd.args)
            except ModelfileWriteError as err:
                self.error(cmd, f"{cmd.name.upper()}: {err}")
            if cmd.name in _ONE_LINE and any(c in cmd.args for c in "\r\n"):
                self.error(
                    cmd, f"{cmd.name.upper()} value spans several lines (a quote left open?)"
                )
            if cmd.name == "parameter" and cmd.key in _ALIASES:
                alias = _ALIASES[cmd.key].upper()
                self.warn(cmd, f"PARAMETER {cmd.key} is read by Ollama as {alias}; write {alias}")

    def froms(self) -> None:
        froms = self.mf.where("from")
        if not froms:
            self.error(None, MISSING_FROM)
            return
        for cmd in froms:
            if not cmd.args.strip():
                self.error(cmd, "FROM has no model name or path")
        if len(froms) > 1 and not all(is_local_path(c.args) for c in froms):
            self.error(
                froms[1],
                f"{len(froms)} FROM lines; a Modelfile needs exactly one"
                " (Ollama keeps only the last model name)",
            )
        draft = self.mf.draft
        if draft and is_local_path(draft):
            same = [c for c in froms if posixpath.normpath(c.args) == posixpath.normpath(draft)]
            if same:
                self.error(
                    self.mf.where("draft")[-1],
                    f"DRAFT must not reference the same local path as FROM: {draft}",
                )

    def parameters(self) -> None:
        last_line: dict[str, Command] = {}
        for cmd in self.mf.where("parameter"):
            name, value = cmd.key, cmd.args
            if name in params.DEPRECATED_PARAMETERS:
                self.warn(cmd, f"parameter {name} is deprecated; Ollama ignores it")
                continue
            if name not in params.PARAMETERS:
                hint = params.suggest(name)
                if not name:
                    hint_text = " (two spaces after PARAMETER?)"
                else:
                    hint_text = f" (did you mean '{hint}'?)" if hint else ""
                self.error(cmd, f"unknown parameter '{name}'{hint_text}")
                continue
            try:
                coerced = params.coerce(name, value)
            except ParameterError as err:
                message = str(err).replace(f"[{value}]", f"[{_show(value)}]")
                self.error(cmd, f"{message} for parameter '{name}'")
                continue
            problem = params.range_problem(name, coerced)
            if problem:
                if name == "stop":
                    self.warn(cmd, problem)
                else:
                    self.error(cmd, problem)
            if name != "stop":
                if name in last_line:
                    self.warn(
                        last_line[name],
                        f"parameter {name} is set again later; Ollama keeps the last value",
                    )
                last_line[name] = cmd

    def messages(self) -> None:
        for cmd in self.mf.where("message"):
            role = _role(cmd)
            if role not in MESSAGE_ROLES:
                self.error(cmd, f'{INVALID_ROLE} (got "{role}")')

    def singletons(self) -> None:
        for name in SINGLETONS:
            cmds = self.mf.where(name)
            for cmd in cmds[:-1]:
                self.warn(
                    cmd, f"{name.upper()} is overridden by a later one; Ollama keeps the last"
                )
        system = self.mf.where("system")
        if system and system[-1].args == "":
            self.warn(
                system[-1], "an empty SYSTEM is ignored: the base model's system prompt stays"
            )
        template = self.mf.where("template")
        if template and template[-1].args == "":
            self.warn(template[-1], "an empty TEMPLATE is ignored: the base model's template stays")
        for cmd in self.mf.where("adapter"):
            if not cmd.args.strip():
                self.error(cmd, "ADAPTER has no path")

    def requires(self) -> None:
        cmds = self.mf.where("requires")
        if cmds and not is_semver(cmds[-1].args):
            self.error(cmds[-1], "requires must be a valid semver (e.g. 0.14.0)")

    def template(self) -> None:
        cmds = self.mf.where("template")
        if not cmds or not cmds[-1].args:
            return  # the base model's template applies; nothing here to check against
        cmd = cmds[-1]
        report = check_template(cmd.args)
        for p in report.problems:
            line = cmd.line + p.line - 1 if cmd.line else 0
            prefix = "template error" if p.severity == "error" else "template"
            self.problems.append(Problem(p.severity, line, f"{prefix}: {p.message}"))
        if not report.ok:
            return
        for stop in self.mf.where("parameter"):
            if stop.key == "stop" and stop.args and not report.emits(stop.args):
                self.warn(
                    stop,
                    f'stop sequence "{_show(stop.args)}" never appears literally in the TEMPLATE',
                )
        if not report.uses_system:
            system = self.mf.where("system")
            if system and system[-1].args:
                self.warn(
                    system[-1],
                    "SYSTEM is ignored: the TEMPLATE uses neither .System nor .Messages",
                )
            for msg in self.mf.where("message"):
                if _role(msg) == "system":
                    self.warn(
                        msg,
                        "system MESSAGE is ignored: the TEMPLATE uses neither .System"
                        " nor .Messages",
                    )

    def adapters(self) -> None:
        adapters = self.mf.where("adapter")
        base = self.mf.from_
        if adapters and base and self.adapter_base and base_differs(base, self.adapter_base):
            self.warn(
                adapters[-1],
                f'the adapter was trained on "{self.adapter_base}" but FROM is "{base}";'
                " a LoRA adapter only works on its own base model",
            )


def validate(modelfile: Modelfile, adapter_base: str | None = None) -> list[Problem]:
    """Every problem in ``modelfile``, errors before warnings on the same line.

    ``adapter_base`` is the base model the ADAPTER was trained on, when the caller knows it
    (from the adapter's metadata); it enables the adapter/FROM mismatch warning.
    """
    return _Validator(modelfile, adapter_base).run()
