"""Property tests: writing then parsing gives the same commands; parsing never crashes."""

from __future__ import annotations

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from modelarium.core.modelfiles import (
    Command,
    Modelfile,
    ModelfileParseError,
    ModelfileWriteError,
    compose,
    parse,
    split_elements,
    write,
)
from modelarium.core.modelfiles.model import MESSAGE_ROLES

# Fragments that exercise every quoting rule: quotes of all lengths, edge blanks, newlines
# (LF, CRLF, lone CR), comment markers, template braces, backslashes and non-ASCII text.
FRAGMENTS = [
    "a",
    "word",
    "Hello, world!",
    " ",
    "  ",
    "\t",
    "\n",
    "\r\n",
    "\r",
    '"',
    '""',
    '"""',
    "'",
    "#",
    "# comment",
    "{{ .Prompt }}",
    "<|eot_id|>",
    "\\n",
    "\\",
    "é",
    "你好",
    "👋",
    "FROM x",
    "PARAMETER",
]

values = st.lists(st.sampled_from(FRAGMENTS), max_size=8).map("".join)
single_line_values = values.map(lambda s: s.replace("\r", "").replace("\n", " "))
quote_free_values = values.map(lambda s: s.replace('"', "'"))
param_names = st.from_regex(r"[A-Za-z0-9_]{0,12}", fullmatch=True)
PLAIN = [
    "from",
    "template",
    "system",
    "adapter",
    "license",
    "draft",
    "renderer",
    "parser",
    "requires",
]


def commands(value_strategy: st.SearchStrategy[str]) -> st.SearchStrategy[Command]:
    plain = st.builds(Command, st.sampled_from(PLAIN), value_strategy)
    parameter = st.builds(Command.parameter, param_names, value_strategy)
    message = st.builds(Command.message, st.sampled_from(MESSAGE_ROLES), value_strategy)
    return st.one_of(plain, parameter, message)


def modelfiles(value_strategy: st.SearchStrategy[str]) -> st.SearchStrategy[Modelfile]:
    return st.builds(
        lambda base, rest: Modelfile([Command.from_(base), *rest]),
        st.from_regex(r"[a-z0-9.:/_-]{1,20}", fullmatch=True),
        st.lists(commands(value_strategy), max_size=8),
    )


def readable_by_some_form(value: str) -> bool:
    """Independent oracle: does any of the three forms ParseFile knows carry ``value``?"""
    for form in (value, f'"{value}"', f'"""{value}"""'):
        try:
            if parse(f"FROM x\nSYSTEM {form}\n").commands == (
                Command.from_("x"),
                Command("system", value),
            ):
                return True
        except ModelfileParseError:
            continue
    return False


@settings(max_examples=300)
@given(modelfiles(values))
def test_write_then_parse_gives_the_same_commands(mf: Modelfile) -> None:
    try:
        text = write(mf)
    except ModelfileWriteError:
        assert any(not readable_by_some_form(cmd.args) for cmd in mf)
        return
    assert parse(text) == mf


@settings(max_examples=200)
@given(modelfiles(single_line_values))
def test_single_line_values_are_always_writable(mf: Modelfile) -> None:
    assert parse(write(mf)) == mf


@settings(max_examples=200)
@given(modelfiles(quote_free_values))
def test_values_without_double_quotes_are_always_writable(mf: Modelfile) -> None:
    assert parse(write(mf)) == mf


@settings(max_examples=300)
@given(values)
def test_writer_refuses_only_what_no_form_can_carry(value: str) -> None:
    mf = Modelfile([Command.from_("x"), Command("system", value)])
    try:
        write(mf)
    except ModelfileWriteError:
        assert not readable_by_some_form(value)
    else:
        assert readable_by_some_form(value)


RAW_PIECES = [
    "FROM ",
    "from ",
    "SYSTEM ",
    "TEMPLATE ",
    "PARAMETER ",
    "MESSAGE ",
    "user ",
    "stop ",
    "x",
    " ",
    "  ",
    "\t",
    "\n",
    "\r\n",
    "\r",
    '"',
    '"""',
    "#",
    "é",
    "\u00a0",
    ":",
    "-",
    "_",
    "1",
    "BOGUS ",
]


raw_texts = st.tuples(
    st.sampled_from(["", "FROM base\n"]), st.lists(st.sampled_from(RAW_PIECES), max_size=20)
).map(lambda parts: parts[0] + "".join(parts[1]))


@settings(max_examples=500)
@given(raw_texts)
def test_parse_of_any_text_fails_cleanly_or_is_a_fixed_point(text: str) -> None:
    failure: ModelfileParseError | None = None
    try:
        mf = parse(text)
    except ModelfileParseError as err:
        failure = err
    if failure is not None:
        assert failure.line >= 1
        assert failure.column >= 1
        assert "\n" not in str(failure)
        return
    assert parse(write(mf)) == mf


@settings(max_examples=200)
@given(modelfiles(single_line_values))
def test_compose_of_split_builds_the_same_model(mf: Modelfile) -> None:
    aliases = {"model", "message", *PLAIN}  # PARAMETER names Ollama reads as commands
    assume(all(cmd.name != "parameter" or cmd.key not in aliases for cmd in mf))
    elements = split_elements(mf)
    again = split_elements(compose(**elements.to_dict()))
    assert again == elements
    assert split_elements(parse(write(elements.compose()))) == elements
