"""Writer output: Ollama's ``Modelfile.String()`` where it is lossless, a safe form elsewhere."""

from __future__ import annotations

import pytest

from modelarium.core.modelfiles import Command, Modelfile, ModelfileWriteError, parse, write
from modelarium.core.modelfiles.writer import encode_value, ollama_quote

UPSTREAM_ROUND_TRIP_CASES = [
    """
FROM foo
ADAPTER adapter1
LICENSE MIT
PARAMETER param1 value1
PARAMETER param2 value2
TEMPLATE template1
MESSAGE system You are a file parser. Always parse things.
MESSAGE user Hey there!
MESSAGE assistant Hello, I want to parse all the things!
""",
    '''
FROM foo
ADAPTER adapter1
LICENSE MIT
PARAMETER param1 value1
PARAMETER param2 value2
TEMPLATE template1
MESSAGE system """
You are a store greeter. Always respond with "Hello!".
"""
MESSAGE user Hey there!
MESSAGE assistant Hello, I want to parse all the things!
''',
    '''
FROM foo
ADAPTER adapter1
LICENSE """
Very long and boring legal text.
Blah blah blah.
"Oh look, a quote!"
"""

PARAMETER param1 value1
PARAMETER param2 value2
TEMPLATE template1
MESSAGE system """
You are a store greeter. Always respond with "Hello!".
"""
MESSAGE user Hey there!
MESSAGE assistant Hello, I want to parse all the things!
''',
    '\nFROM foo\nSYSTEM ""\n',
]


@pytest.mark.parametrize("text", UPSTREAM_ROUND_TRIP_CASES)
def test_upstream_format_parse_round_trip(text: str) -> None:
    mf = parse(text)
    assert parse(write(mf)) == mf


def test_output_matches_ollama_string_for_ordinary_content() -> None:
    mf = parse(UPSTREAM_ROUND_TRIP_CASES[2])
    assert write(mf) == (
        "FROM foo\n"
        "ADAPTER adapter1\n"
        'LICENSE """\nVery long and boring legal text.\nBlah blah blah.\n"Oh look, a quote!"\n"""\n'
        "PARAMETER param1 value1\n"
        "PARAMETER param2 value2\n"
        "TEMPLATE template1\n"
        'MESSAGE system """\nYou are a store greeter. Always respond with "Hello!".\n"""\n'
        "MESSAGE user Hey there!\n"
        "MESSAGE assistant Hello, I want to parse all the things!\n"
    )


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("plain", "plain"),
        ("", ""),
        ("a\nb", '"a\nb"'),
        ('say "hi"\nbye', '"""say "hi"\nbye"""'),
        (" padded", '" padded"'),
        ("padded ", '"padded "'),
        ("<|eot_id|>", "<|eot_id|>"),
        ("# not a comment", "# not a comment"),
        ("\ttab", "\ttab"),
    ],
)
def test_ollama_quote_rules(value: str, quoted: str) -> None:
    assert ollama_quote(value) == quoted


def test_empty_system_is_written_with_a_trailing_space_like_ollama() -> None:
    assert write(Modelfile([Command.from_("x"), Command("system", "")])) == "FROM x\nSYSTEM \n"


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ("\ttab first", '"\ttab first"'),  # Ollama writes it bare and loses the tab
        ('"x"', '""x""'),  # bare would lose its quotes
        ('"Hi," she said', '""Hi," she said"'),  # bare would be an unterminated quote
        ('a"\nb', '"""a"\nb"""'),  # plain quotes would close at the first line
        ("a\rb", '"a\rb"'),  # a lone CR is a newline to ParseFile
    ],
)
def test_values_ollama_would_mangle_get_a_form_that_reads_back(value: str, encoded: str) -> None:
    assert encode_value(value) == encoded
    assert parse(f"FROM x\nSYSTEM {encoded}\n").system == value


def test_from_is_bare_like_ollama_unless_that_would_change_it() -> None:
    assert write(Modelfile([Command.from_("my model:latest")])) == "FROM my model:latest\n"
    mf = Modelfile([Command.from_("  spaced  ")])
    assert write(mf) == 'FROM "  spaced  "\n'
    assert parse(write(mf)) == mf


def test_parameter_and_message_forms() -> None:
    mf = Modelfile(
        [
            Command.from_("x"),
            Command.parameter("stop", "<|im_end|>"),
            Command.parameter("stop", " "),
            Command.message("user", 'multi\nline "quoted"'),
        ]
    )
    text = write(mf)
    assert text == (
        'FROM x\nPARAMETER stop <|im_end|>\nPARAMETER stop " "\n'
        'MESSAGE user """multi\nline "quoted""""\n'
    )
    assert parse(text) == mf


def test_empty_parameter_name_round_trips() -> None:
    mf = parse("FROM x\nPARAMETER  temperature 0.5\n")
    assert write(mf) == "FROM x\nPARAMETER  temperature 0.5\n"
    assert parse(write(mf)) == mf


@pytest.mark.parametrize("value", ['x"""\ny"', '"""\na'])
def test_unrepresentable_values_raise_instead_of_changing(value: str) -> None:
    with pytest.raises(ModelfileWriteError, match="cannot be written"):
        write(Modelfile([Command.from_("x"), Command("system", value)]))


def test_characters_ollama_drops_are_refused() -> None:
    with pytest.raises(ModelfileWriteError, match="U\\+00A0"):
        encode_value("non\u00a0breaking")


@pytest.mark.parametrize(
    ("cmd", "match"),
    [
        (Command("bogus", "x"), "unknown command"),
        (Command.parameter("bad-name", "1"), "invalid parameter name"),
        (Command.message("tool", "x"), "message role must be one of"),
    ],
)
def test_commands_ollama_cannot_read_are_refused(cmd: Command, match: str) -> None:
    with pytest.raises(ModelfileWriteError, match=match):
        write(Modelfile([Command.from_("x"), cmd]))
