"""Go's ``text/template/parse`` parser, ported, enough to judge TEMPLATE syntax.

Ollama's server runs ``template.Parse`` on every TEMPLATE and refuses the model on any error,
so this follows Go's grammar closely (``else if``/``else with``, ``break``/``continue`` only in
``range``, declared variables, defined functions, number and string literal rules, duplicate
definitions) and stops at the first error as Go does. It never executes anything.
"""

from __future__ import annotations

from modelarium.core.modelfiles import go_strconv
from modelarium.core.modelfiles.template_lexer import (
    TemplateSyntaxError,
    Token,
    go_quote,
    lex,
)
from modelarium.core.modelfiles.template_nodes import (
    Action,
    Branch,
    Chain,
    Command,
    Dot,
    Field,
    Identifier,
    Literal,
    Loop,
    Marker,
    Nil,
    Node,
    Operand,
    Pipe,
    TemplateCall,
    Text,
    Tree,
    Variable,
)

MAX_NESTING = 100
"""Blocks (if/range/with/define/block, else-if chains) and parenthesized pipelines nested
deeper than this are refused with one clear error instead of exhausting Python's stack (a
template nested a few thousand deep ended in a RecursionError). Real templates nest a handful."""

_OPERAND_START = frozenset(
    {"bool", "charconst", "complex", "dot", "field", "ident", "number", "nil", "rawstring"}
    | {"string", "var", "lparen"}
)


def _is_empty(nodes: list[Node]) -> bool:
    """Go's ``IsEmptyTree`` for a list: only blank text."""
    return all(isinstance(n, Text) and not n.text.strip() for n in nodes)


class _Parser:
    def __init__(self, tokens: list[Token], functions: frozenset[str]) -> None:
        self.tokens = tokens
        self.functions = functions
        self.i = 0
        self.far = 0
        self.vars: list[str] = ["$"]
        self.range_depth = 0
        self.action_line = 0
        self.open: list[tuple[str, int]] = []
        self.trees: dict[str, Tree] = {}
        self.depth = 0

    def enter(self, what: str, line: int | None = None) -> None:
        """One level deeper (leave with ``self.depth -= 1``); refused past MAX_NESTING."""
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise self.error(f"{what} nested more than {MAX_NESTING} deep", line)

    # token stream
    def next(self) -> Token:
        tok = self.tokens[min(self.i, len(self.tokens) - 1)]
        self.i += 1
        self.far = max(self.far, self.i - 1)
        return tok

    def backup(self) -> None:
        self.i -= 1

    def peek(self) -> Token:
        tok = self.next()
        self.backup()
        return tok

    def next_non_space(self) -> Token:
        tok = self.next()
        while tok.kind == "space":
            tok = self.next()
        return tok

    def peek_non_space(self) -> Token:
        tok = self.next_non_space()
        self.backup()
        return tok

    # errors
    def error(self, message: str, line: int | None = None) -> TemplateSyntaxError:
        if line is None:
            line = self.tokens[min(self.far, len(self.tokens) - 1)].line
        return TemplateSyntaxError(message, line)

    def unexpected(self, tok: Token, context: str) -> TemplateSyntaxError:
        if tok.kind == "error":
            unclosed = tok.val in ("unclosed action", "unclosed left paren")
            return self.error(
                tok.val, self.action_line if unclosed and self.action_line else tok.line
            )
        return self.error(f"unexpected {tok.describe()} in {context}")

    def expect(self, kinds: tuple[str, ...], context: str) -> Token:
        tok = self.next_non_space()
        if tok.kind not in kinds:
            raise self.unexpected(tok, context)
        return tok

    # structure
    def parse(self) -> dict[str, Tree]:
        root: list[Node] = []
        while self.peek().kind != "eof":
            if self.peek().kind == "left":
                save = self.i
                self.next()
                define = self.next_non_space()
                if define.kind == "define":
                    self.definition(define.line)
                    continue
                self.i = save
            node = self.text_or_action()
            if isinstance(node, Marker):
                raise self.error(f"unexpected {node}")
            root.append(node)
        self.add(Tree("", 1, root))
        return self.trees

    def add(self, tree: Tree) -> None:
        existing = self.trees.get(tree.name)
        if existing is None or _is_empty(existing.body):
            self.trees[tree.name] = tree
        elif not _is_empty(tree.body):
            name = go_quote(tree.name)
            raise self.error(f"template: multiple definition of template {name}", tree.line)

    def isolated(self, kind: str, line: int) -> list[Node]:
        """Parse a define/block body with fresh variables, as Go's ``startParse`` does."""
        saved = self.vars, self.range_depth
        self.vars, self.range_depth = ["$"], 0
        self.enter("blocks", line)
        self.open.append((kind, line))
        body, end = self.item_list()
        self.open.pop()
        self.depth -= 1
        self.vars, self.range_depth = saved
        if end.kind != "end":
            raise self.error(f"unexpected {end} in {kind} clause")
        return body

    def definition(self, line: int) -> None:
        name = self.template_name(self.next_non_space(), "define clause")
        self.expect(("right",), "define clause")
        self.add(Tree(name, line, self.isolated("define", line)))

    def item_list(self) -> tuple[list[Node], Marker]:
        items: list[Node] = []
        while self.peek_non_space().kind != "eof":
            node = self.text_or_action()
            if isinstance(node, Marker):
                return items, node
            items.append(node)
        if self.open:
            kind, line = self.open[-1]
            raise self.error(f"unexpected EOF: {{{{{kind}}}}} has no matching {{{{end}}}}", line)
        raise self.error("unexpected EOF")

    def text_or_action(self) -> Node | Marker:
        tok = self.next_non_space()
        if tok.kind == "text":
            return Text(tok.line, tok.val)
        if tok.kind == "left":
            self.action_line = tok.line
            try:
                return self.action()
            finally:
                self.action_line = 0
        raise self.unexpected(tok, "input")

    def action(self) -> Node | Marker:
        tok = self.next_non_space()
        if tok.kind == "block":
            return self.block(tok.line)
        if tok.kind in ("break", "continue"):
            after = self.next_non_space()
            if after.kind != "right":
                raise self.unexpected(after, "{{" + tok.kind + "}}")
            if not self.range_depth:
                raise self.error(f"{{{{{tok.kind}}}}} outside {{{{range}}}}", tok.line)
            return Loop(tok.line, tok.kind)
        if tok.kind == "else":
            peek = self.peek_non_space()
            if peek.kind in ("if", "with"):
                return Marker("else", peek.line)
            return Marker("else", self.expect(("right",), "else").line)
        if tok.kind == "end":
            return Marker("end", self.expect(("right",), "end").line)
        if tok.kind in ("if", "range", "with"):
            return self.control(tok.kind, tok.line)
        if tok.kind == "template":
            name_tok = self.next_non_space()
            name = self.template_name(name_tok, "template clause")
            pipe = None
            if self.next_non_space().kind != "right":
                self.backup()
                pipe = self.pipeline("template clause", "right")
            return TemplateCall(name_tok.line, name, pipe)
        self.backup()
        return Action(self.peek().line, self.pipeline("command", "right"))

    def control(self, kind: str, line: int) -> Branch:
        self.enter("blocks", line)
        nvars = len(self.vars)
        pipe = self.pipeline(kind, "right")
        self.open.append((kind, line))
        self.range_depth += kind == "range"
        body, nxt = self.item_list()
        self.range_depth -= kind == "range"
        else_body: list[Node] | None = None
        if nxt.kind == "else":
            if kind in ("if", "with") and self.peek().kind == kind:
                chained = self.next()
                else_body = [self.control(kind, chained.line)]
            else:
                else_body, nxt = self.item_list()
                if nxt.kind != "end":
                    raise self.error(f"expected end; found {nxt}")
        self.open.pop()
        del self.vars[nvars:]
        self.depth -= 1
        return Branch(kind, line, pipe, body, else_body)

    def block(self, line: int) -> TemplateCall:
        name_tok = self.next_non_space()
        name = self.template_name(name_tok, "block clause")
        pipe = self.pipeline("block clause", "right")
        self.add(Tree(name, line, self.isolated("block", line)))
        return TemplateCall(name_tok.line, name, pipe)

    def template_name(self, tok: Token, context: str) -> str:
        if tok.kind not in ("string", "rawstring"):
            raise self.unexpected(tok, context)
        try:
            return go_strconv.unquote(tok.val)
        except ValueError:
            raise self.error("invalid syntax") from None

    # pipelines
    def pipeline(self, context: str, end: str) -> Pipe:
        pipe = Pipe(self.peek_non_space().line)
        while True:  # declarations: "$x :=", "$x =", "$i, $e :="
            if self.peek_non_space().kind != "var":
                break
            at = self.i
            var = self.next()
            nxt = self.peek_non_space()
            if nxt.kind in ("assign", "declare"):
                pipe.is_assign = nxt.kind == "assign"
                self.next_non_space()
                pipe.decl.append(var.val)
                self.vars.append(var.val)
            elif nxt.kind == "char" and nxt.val == ",":
                self.next_non_space()
                pipe.decl.append(var.val)
                self.vars.append(var.val)
                if context == "range" and len(pipe.decl) < 2:
                    if self.peek_non_space().kind in ("var", "right", "rparen"):
                        continue
                    raise self.error("range can only initialize variables")
                raise self.error(f"too many declarations in {context}")
            else:
                self.i = at  # "$x" is an argument, not a declaration
            break
        while True:
            tok = self.next_non_space()
            if tok.kind == end:
                self.check_pipeline(pipe, context)
                return pipe
            if tok.kind not in _OPERAND_START:
                raise self.unexpected(tok, context)
            self.backup()
            pipe.cmds.append(self.command())

    def check_pipeline(self, pipe: Pipe, context: str) -> None:
        if not pipe.cmds:
            raise self.error(f"missing value for {context}")
        for stage, cmd in enumerate(pipe.cmds[1:], start=2):
            if isinstance(cmd.args[0], Literal | Dot | Nil):
                raise self.error(f"non executable command in pipeline stage {stage}")

    def command(self) -> Command:
        cmd = Command(self.peek_non_space().line)
        while True:
            self.peek_non_space()
            operand = self.operand()
            if operand is not None:
                cmd.args.append(operand)
            tok = self.next()
            if tok.kind == "space":
                continue
            if tok.kind in ("right", "rparen"):
                self.backup()
            elif tok.kind != "pipe":
                raise self.unexpected(tok, "operand")
            break
        if not cmd.args:
            raise self.error("empty command")
        return cmd

    def operand(self) -> Operand | None:
        node = self.term()
        if node is None or self.peek().kind != "field":
            return node
        fields: list[str] = []
        while self.peek().kind == "field":
            fields.append(self.next().val[1:])
        if isinstance(node, Field):
            return Field(node.line, node.idents + tuple(fields))
        if isinstance(node, Variable):
            return Variable(node.line, node.idents + tuple(fields))
        if isinstance(node, Literal | Nil | Dot):
            source = (
                node.source
                if isinstance(node, Literal)
                else "nil"
                if isinstance(node, Nil)
                else "."
            )
            raise self.error(f"unexpected . after term {go_quote(source)}")
        return Chain(node.line, node, tuple(fields))

    def term(self) -> Operand | None:
        tok = self.next_non_space()
        kind, line = tok.kind, tok.line
        if kind == "ident":
            if tok.val not in self.functions:
                raise self.error(f"function {go_quote(tok.val)} not defined")
            return Identifier(line, tok.val)
        if kind == "dot":
            return Dot(line)
        if kind == "nil":
            return Nil(line)
        if kind == "var":
            name = tok.val.split(".")[0]
            if name not in self.vars:
                raise self.error(f"undefined variable {go_quote(name)}")
            return Variable(line, (tok.val,))
        if kind == "field":
            return Field(line, (tok.val[1:],))
        if kind == "bool":
            return Literal(line, "bool", tok.val == "true", tok.val)
        if kind in ("charconst", "complex", "number"):
            self.check_number(tok)
            return Literal(line, "number", tok.val, tok.val)
        if kind == "lparen":
            self.enter("parentheses", line)
            pipe = self.pipeline("parenthesized pipeline", "rparen")
            self.depth -= 1
            return pipe
        if kind in ("string", "rawstring"):
            try:
                return Literal(line, "string", go_strconv.unquote(tok.val), tok.val)
            except ValueError:
                raise self.error("invalid syntax") from None
        self.backup()
        return None

    def check_number(self, tok: Token) -> None:
        """Go's ``newNumber`` acceptance (chars, complex, ints of any base, floats)."""
        text = tok.val
        if tok.kind == "charconst":
            try:
                go_strconv.unquote(text)
                return
            except ValueError:
                pass
            try:
                go_strconv.unquote(f'"{text[1:-1]}"')
            except ValueError:
                raise self.error("invalid syntax") from None
            raise self.error(f"malformed character constant: {text}")
        if tok.kind == "complex":
            splits = [
                j for j in range(1, len(text)) if text[j] in "+-" and text[j - 1] not in "eEpP"
            ]
            for j in splits:
                try:
                    go_strconv.parse_float(text[:j])
                    go_strconv.parse_float(text[j:-1])
                    return
                except ValueError:
                    continue
            raise self.error(f"illegal number syntax: {go_quote(text)}")
        if text.endswith("i"):
            try:
                go_strconv.parse_float(text[:-1])
                return
            except ValueError:
                pass
        try:
            if -(2**63) <= go_strconv.parse_int_base0(text) <= go_strconv.UINT64_MAX:
                return
        except ValueError:
            pass
        try:
            go_strconv.parse_float(text)
        except ValueError:
            raise self.error(f"illegal number syntax: {go_quote(text)}") from None
        if not any(ch in text for ch in ".eEpP"):
            raise self.error(f"integer overflow: {go_quote(text)}")


def parse(text: str, functions: frozenset[str]) -> dict[str, Tree]:
    """Parse like Go's ``Template.Parse``: every tree by name (``""`` is the main one)."""
    return _Parser(lex(text), functions).parse()
