"""TEMPLATE checker: Go template syntax as Ollama's server judges it, plus what it refers to.

Errors are what makes ``ollama create`` fail with ``template error: ...`` (Go's parse errors,
and Ollama's own refusal of ``{{template "x"}}`` without a pipeline). Warnings are what would
only break at chat time: fields Ollama never passes (``.system``, ``.Message``), wrong argument
counts, calls of templates that are not defined. The report also says which fields the
template reads and what text it can emit, which the Modelfile checks build on.

The data a template sees is Ollama's ``template.Execute`` input: a map with ``System``,
``Messages``, ``Tools``, ``Prompt``, ``Suffix``, ``Response``, ``Think``, ``ThinkLevel`` and
``IsThinkSet``; messages and tools are the ``templateMessage``/``templateTool`` structs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from modelarium.core.modelfiles.template_lexer import TemplateSyntaxError
from modelarium.core.modelfiles.template_nodes import (
    Action,
    Branch,
    Chain,
    Dot,
    Field,
    Identifier,
    Loop,
    Nil,
    Node,
    Operand,
    Pipe,
    TemplateCall,
    Text,
    Tree,
    Variable,
)
from modelarium.core.modelfiles.template_nodes import Literal as LiteralNode
from modelarium.core.modelfiles.template_parser import parse

Severity = Literal["error", "warning"]

#: Go's text/template builtins, then the FuncMap of Ollama's ``template`` package.
GO_BUILTINS = frozenset(
    {"and", "call", "html", "index", "slice", "js", "len", "not", "or", "print", "printf"}
    | {"println", "urlquery", "eq", "ge", "gt", "le", "lt", "ne"}
)
OLLAMA_FUNCS = frozenset({"json", "currentDate", "yesterdayDate", "toTypeScriptType"})
FUNCTIONS = GO_BUILTINS | OLLAMA_FUNCS

# (min, max) arguments; None means variadic. Go's exec errors say "wrong number of args".
_ARITY: dict[str, tuple[int, int | None]] = {
    "and": (1, None),
    "or": (1, None),
    "not": (1, 1),
    "len": (1, 1),
    "index": (1, None),
    "slice": (1, 4),
    "eq": (2, None),
    "ne": (2, 2),
    "lt": (2, 2),
    "le": (2, 2),
    "gt": (2, 2),
    "ge": (2, 2),
    "printf": (1, None),
    "call": (1, None),
    "json": (1, 1),
    "toTypeScriptType": (1, 1),
}

# Struct and map shapes reachable from the template data, by Go type name.
_STRUCTS: dict[str, dict[str, str]] = {
    "Values": {
        "System": "string",
        "Messages": "[]Message",
        "Tools": "[]Tool",
        "Prompt": "string",
        "Suffix": "string",
        "Response": "string",
        "Think": "bool",
        "ThinkLevel": "string",
        "IsThinkSet": "bool",
    },
    "Message": {
        "Role": "string",
        "Content": "string",
        "Thinking": "string",
        "Images": "[]any",
        "ToolCalls": "[]ToolCall",
        "ToolName": "string",
        "ToolCallID": "string",
    },
    "ToolCall": {"ID": "string", "Function": "ToolCallFunction"},
    "ToolCallFunction": {"Index": "int", "Name": "string", "Arguments": "map[string]any"},
    "Tool": {"Type": "string", "Items": "any", "Function": "ToolFunction", "String": "string"},
    "ToolFunction": {
        "Name": "string",
        "Description": "string",
        "Parameters": "ToolFunctionParameters",
    },
    "ToolFunctionParameters": {
        "Type": "string",
        "Defs": "any",
        "Items": "any",
        "Required": "[]string",
        "Properties": "map[string]ToolProperty",
    },
    "ToolProperty": {
        "AnyOf": "[]ToolProperty",
        "Type": "any",
        "Items": "any",
        "Description": "string",
        "Enum": "[]any",
        "Properties": "any",
        "Required": "[]string",
        "ToTypeScriptType": "string",
    },
}
_SLICE_METHODS = {"[]Tool": {"String"}}
ROOT, ANY = "Values", "any"


@dataclass(frozen=True, slots=True)
class TemplateProblem:
    severity: Severity
    line: int  # 1-based, within the template text
    message: str


@dataclass(frozen=True, slots=True)
class TemplateReport:
    """What :func:`check_template` found; ``ok`` means Ollama's server would accept it."""

    problems: tuple[TemplateProblem, ...] = ()
    fields: frozenset[str] = frozenset()
    root_fields: frozenset[str] = frozenset()
    vars: tuple[str, ...] = ()
    functions: frozenset[str] = frozenset()
    defined: frozenset[str] = frozenset()
    literals: tuple[str, ...] = ()
    text: tuple[str, ...] = field(default=(), repr=False)

    @property
    def ok(self) -> bool:
        return not any(p.severity == "error" for p in self.problems)

    @property
    def errors(self) -> list[TemplateProblem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[TemplateProblem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def uses_system(self) -> bool:
        """Whether a SYSTEM prompt can reach the model: Ollama passes it as ``.System`` and, in
        the messages path (any ``messages`` identifier), as a ``system`` message too."""
        return "system" in self.vars or "messages" in self.vars

    def emits(self, s: str) -> bool:
        """Whether ``s`` appears in text the template can output verbatim."""
        return any(s in chunk for chunk in self.literals) or s in "".join(self.text)


def check_template(source: str) -> TemplateReport:
    """Parse ``source`` as Ollama's ``template.Parse`` does and report problems and references."""
    try:
        trees = parse(source, FUNCTIONS)
    except TemplateSyntaxError as err:
        return TemplateReport(problems=(TemplateProblem("error", err.line, err.message),))
    walker = _Walker(trees)
    walker.run()
    problems = walker.ollama_problems() + sorted(walker.warnings, key=lambda p: p.line)
    return TemplateReport(
        problems=tuple(problems),
        fields=frozenset(walker.fields),
        root_fields=frozenset(walker.root_fields),
        vars=walker.ollama_vars(),
        functions=frozenset(walker.functions),
        defined=frozenset(name for name in trees if name),
        literals=tuple(walker.text + walker.strings),
        text=tuple(walker.text),
    )


def _elem(t: str) -> str:
    if t.startswith("[]"):
        return t[2:]
    if t.startswith("map[string]"):
        return t[len("map[string]") :]
    return ANY


class _Walker:
    def __init__(self, trees: dict[str, Tree]) -> None:
        self.trees = trees
        self.warnings: list[TemplateProblem] = []
        self.fields: set[str] = set()
        self.root_fields: set[str] = set()
        self.functions: set[str] = set()
        self.text: list[str] = []
        self.strings: list[str] = []

    def warn(self, line: int, message: str) -> None:
        self.warnings.append(TemplateProblem("warning", line, message))

    def run(self) -> None:
        for name, tree in self.trees.items():
            top = ROOT if name == "" else ANY  # a defined template gets whatever it is passed
            self.nodes(tree.body, top, {"$": top})

    # -- Ollama's own Parse checks (template.Vars / Identifiers) ---------------------------
    def ollama_problems(self) -> list[TemplateProblem]:
        return [
            TemplateProblem("error", node.line, "undefined template specified")
            for tree in self.trees.values()
            for node in _walk(tree.body)
            if isinstance(node, TemplateCall) and node.pipe is None
        ]

    def ollama_vars(self) -> tuple[str, ...]:
        """``Template.Vars()`` after ``Parse``: lowercased identifiers, plus the ``response``
        Ollama appends when a template names neither messages nor response."""
        names: set[str] = set()
        for tree in self.trees.values():
            for node in _walk(tree.body):
                pipe = node.pipe if isinstance(node, Action | Branch | TemplateCall) else None
                if pipe is not None:
                    names.update(ident.lower() for ident in _pipe_identifiers(pipe))
        if "messages" not in names:
            names.add("response")
        return tuple(sorted(names))

    # -- walking with types ----------------------------------------------------------------
    def nodes(self, nodes: Iterable[Node], dot: str, env: dict[str, str]) -> None:
        for node in nodes:
            if isinstance(node, Text):
                self.text.append(node.text)
            elif isinstance(node, Action):
                t = self.pipe(node.pipe, dot, env)
                for name in node.pipe.decl:
                    if not node.pipe.is_assign or name not in env:
                        env[name] = t
            elif isinstance(node, Branch):
                self.branch(node, dot, env)
            elif isinstance(node, TemplateCall):
                if node.name not in self.trees:
                    self.warn(node.line, f'no such template "{node.name}"')
                if node.pipe is not None:
                    self.pipe(node.pipe, dot, env)
            elif not isinstance(node, Loop):  # pragma: no cover - the parser builds no other
                raise TypeError(node)

    def branch(self, node: Branch, dot: str, env: dict[str, str]) -> None:
        inner = dict(env)
        t = self.pipe(node.pipe, dot, inner)
        decl = node.pipe.decl
        body_dot = dot
        if node.kind == "range":
            body_dot = _elem(t) if t.startswith(("[]", "map[")) else "int" if t == "int" else ANY
            key = "int" if t.startswith("[]") or t == "int" else "string" if t != ANY else ANY
            if len(decl) == 1:
                inner[decl[0]] = body_dot
            elif len(decl) == 2:
                inner[decl[0]], inner[decl[1]] = key, body_dot
        else:
            if node.kind == "with":
                body_dot = t
            for name in decl:
                inner[name] = t
        self.nodes(node.body, body_dot, inner)
        if node.else_body is not None:
            self.nodes(node.else_body, dot, dict(inner))

    def pipe(self, pipe: Pipe, dot: str, env: dict[str, str]) -> str:
        t = ANY
        for i, cmd in enumerate(pipe.cmds):
            t = self.command(cmd.args, dot, env, piped=i > 0)
        return t

    def command(self, args: list[Operand], dot: str, env: dict[str, str], piped: bool) -> str:
        first = args[0]
        if isinstance(first, Identifier):
            types = [self.operand(arg, dot, env) for arg in args[1:]]
            return self.call(first, types, piped)
        t = self.operand(first, dot, env)
        if len(args) > 1 or piped:
            self.warn(first.line, "can't give argument to non-function")
        for arg in args[1:]:
            self.operand(arg, dot, env)
        return t

    def call(self, ident: Identifier, types: list[str], piped: bool) -> str:
        name = ident.name
        self.functions.add(name)
        got = len(types) + piped
        low, high = _ARITY.get(name, (0, None))
        if got < low or (high is not None and got > high):
            want = str(low) if low == high else f"{low}+" if high is None else f"{low}-{high}"
            self.warn(ident.line, f"wrong number of args for {name}: want {want} got {got}")
        if name == "len":
            return "int"
        if name in ("index", "slice") and types and not piped:
            t = types[0]
            if name == "index":
                for _ in types[1:]:
                    t = _elem(t) if t.startswith(("[]", "map[")) else ANY
            return t
        if name in ("eq", "ne", "lt", "le", "gt", "ge", "not"):
            return "bool"
        if name in ("and", "or", "call"):
            return ANY
        return "string"

    def operand(self, node: Operand, dot: str, env: dict[str, str]) -> str:
        if isinstance(node, Field):
            return self.resolve(dot, node.idents, node.line)
        if isinstance(node, Variable):
            base = env.get(node.idents[0].split(".")[0], ANY)
            return self.resolve(base, node.idents[1:], node.line)
        if isinstance(node, Chain):
            return self.resolve(self.operand(node.node, dot, env), node.fields, node.line)
        if isinstance(node, Dot):
            return dot
        if isinstance(node, Pipe):
            return self.pipe(node, dot, env)
        if isinstance(node, Identifier):
            return self.call(node, [], piped=False)
        if isinstance(node, LiteralNode):
            if node.kind == "string":
                self.strings.append(str(node.value))
                return "string"
            return "bool" if node.kind == "bool" else "number"
        assert isinstance(node, Nil)
        return ANY

    def resolve(self, t: str, names: Iterable[str], line: int) -> str:
        for name in names:
            self.fields.add(name)
            if t == ROOT:
                self.root_fields.add(name)
            t = self.field(t, name, line)
        return t

    def field(self, t: str, name: str, line: int) -> str:
        if t == ANY or t.startswith("map["):
            return _elem(t) if t.startswith("map[") else ANY
        if t in _STRUCTS:
            known = _STRUCTS[t]
            if name in known:
                return known[name]
            near = [k for k in known if k.lower() == name.lower()]
            hint = f" (did you mean .{near[0]}?)" if near else ""
            if t == ROOT:
                self.warn(line, f'Ollama passes no .{name}; it prints "<no value>"{hint}')
            else:
                self.warn(line, f"can't evaluate field {name} in type {t}{hint}")
            return ANY
        if name in _SLICE_METHODS.get(t, ()):
            return "string"
        self.warn(line, f"can't evaluate field {name} in type {t}")
        return ANY


def _walk(nodes: Iterable[Node]) -> Iterable[Node]:
    for node in nodes:
        yield node
        if isinstance(node, Branch):
            yield from _walk(node.body)
            yield from _walk(node.else_body or ())


def _pipe_identifiers(pipe: Pipe) -> list[str]:
    """Ollama's ``Identifiers`` over a pipeline: fields and variables, parens included,
    chains like ``(x).Field`` not (it does not look inside them)."""
    out: list[str] = []
    for cmd in pipe.cmds:
        for arg in cmd.args:
            if isinstance(arg, Field | Variable):
                out.extend(arg.idents)
            elif isinstance(arg, Pipe):
                out.extend(_pipe_identifiers(arg))
    return out
