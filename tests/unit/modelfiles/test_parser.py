"""Parser behaviour, pinned to Ollama's ``parser_test.go`` cases and its ParseFile quirks."""

from __future__ import annotations

import pytest

from modelarium.core.modelfiles import Command, ModelfileParseError, parse
from modelarium.core.modelfiles.parser import INVALID_COMMAND, INVALID_ROLE

LLAMA3_TEMPLATE = (
    "{{ if .System }}<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>"
    "{{ end }}{{ if .Prompt }}<|start_header_id|>user<|end_header_id|>\n\n{{ .Prompt }}"
    "<|eot_id|>{{ end }}<|start_header_id|>assistant<|end_header_id|>\n\n{{ .Response }}"
    "<|eot_id|>"
)


def cmds(text: str | bytes) -> list[tuple[str, str, str]]:
    """(name, key, args) of every parsed command, the shape Ollama's tests compare."""
    return [(c.name, c.key, c.args) for c in parse(text)]


def test_upstream_full_file() -> None:
    text = (
        "\nFROM model1\nADAPTER adapter1\nLICENSE MIT\nPARAMETER param1 value1\n"
        f'PARAMETER param2 value2\nTEMPLATE """{LLAMA3_TEMPLATE}"""    \n'
    )
    assert cmds(text) == [
        ("from", "", "model1"),
        ("adapter", "", "adapter1"),
        ("license", "", "MIT"),
        ("parameter", "param1", "value1"),
        ("parameter", "param2", "value2"),
        ("template", "", LLAMA3_TEMPLATE),
    ]


def test_upstream_trim_space_keeps_padding_inside_quotes() -> None:
    text = (
        '\nFROM "     model 1"\nADAPTER      adapter3\nLICENSE "MIT       "\n'
        "PARAMETER param1        value1\nPARAMETER param2    value2\n"
        f'TEMPLATE """   {LLAMA3_TEMPLATE}   """    \n'
    )
    assert cmds(text) == [
        ("from", "", "     model 1"),
        ("adapter", "", "adapter3"),
        ("license", "", "MIT       "),
        ("parameter", "param1", "value1"),
        ("parameter", "param2", "value2"),
        ("template", "", f"   {LLAMA3_TEMPLATE}   "),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('FROM "FOO  BAR  "', [("from", "", "FOO  BAR  ")]),
        (
            'FROM "FOO BAR"\nPARAMETER param1 value1',
            [("from", "", "FOO BAR"), ("parameter", "param1", "value1")],
        ),
        ("FROM     FOOO BAR    ", [("from", "", "FOOO BAR")]),
        ("FROM /what/is/the path ", [("from", "", "/what/is/the path")]),
        ("FROM llama3:7b-instruct-q4_K_M", [("from", "", "llama3:7b-instruct-q4_K_M")]),
        (
            "PARAMETER param1 value1\nFROM foo",
            [("parameter", "param1", "value1"), ("from", "", "foo")],
        ),
        (
            "PARAMETER what the \nFROM lemons make lemonade ",
            [("parameter", "what", "the"), ("from", "", "lemons make lemonade")],
        ),
    ],
)
def test_upstream_from_cases(text: str, expected: list[tuple[str, str, str]]) -> None:
    assert cmds(text) == expected


@pytest.mark.parametrize("text", ["", "PARAMETER param1 value1", "  \n\n# only a comment\n"])
def test_missing_from_is_a_parse_error(text: str) -> None:
    with pytest.raises(ModelfileParseError) as err:
        parse(text)
    assert err.value.ollama_error == "no FROM line"
    assert str(err.value) == "line 1, column 1: no FROM line"


def test_parameter_named_model_satisfies_the_from_check_as_in_ollama() -> None:
    mf = parse("PARAMETER model llama3\n")
    assert mf.from_ == "llama3"
    assert mf.parameters == {}


def test_bad_command_reports_line_and_column() -> None:
    with pytest.raises(ModelfileParseError) as err:
        parse("\nFROM foo\nBADCOMMAND param1 value1\n")
    e = err.value
    assert (e.line, e.column) == (3, 1)
    assert e.ollama_error == f"(line 3): {INVALID_COMMAND}"
    assert str(e).startswith('line 3, column 1: command must be one of "from", "license"')
    assert 'got "BADCOMMAND"' in str(e)


def test_error_str_is_one_line_with_position_prefix() -> None:
    with pytest.raises(ModelfileParseError) as err:
        parse("FROM x\n  FORM y\n")
    assert str(err.value).startswith("line 2, column 3: command must be one of")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("text", "ollama_error", "position"),
    [
        ("\nFROM foo\nPARAMETER param1\n", "unexpected EOF: param1", (3, 17)),
        ("FROM x\nPARAMETER stop-x y", "unexpected EOF: stop", (2, 15)),
        ("FROM x\nMESSAGE user: hi", "unexpected EOF: user", (2, 13)),
        ("\nFROM foo\nMESSAGE system\n", "unexpected EOF: system", (3, 15)),
        ("\nFROM foo\nMESSAGE system", "unexpected EOF", (3, 15)),
        ("FROM x\nPARAMETER temperature", "unexpected EOF", (2, 22)),
        ("FROM", "unexpected EOF", (1, 1)),
        ('\nFROM foo\nSYSTEM """This is a multiline system.""\n', "unexpected EOF", (3, 8)),
        ('\nFROM foo\nSYSTEM "\n', "unexpected EOF", (3, 8)),
    ],
)
def test_unexpected_eof_errors(text: str, ollama_error: str, position: tuple[int, int]) -> None:
    with pytest.raises(ModelfileParseError) as err:
        parse(text)
    assert err.value.ollama_error == ollama_error
    assert (err.value.line, err.value.column) == position


def test_invalid_message_role_is_rejected_with_ollama_wording() -> None:
    with pytest.raises(ModelfileParseError) as err:
        parse("\nFROM foo\nMESSAGE badguy I'm a bad guy!\n")
    assert err.value.ollama_error == f"(line 3): {INVALID_ROLE}"
    assert (err.value.line, err.value.column) == (3, 9)
    assert 'got "badguy"' in err.value.reason


def test_message_roles_are_case_sensitive() -> None:
    with pytest.raises(ModelfileParseError, match="message role must be one of"):
        parse("FROM x\nMESSAGE User hi\n")


def test_two_spaces_after_message_give_an_empty_role() -> None:
    with pytest.raises(ModelfileParseError, match="message role must be one of"):
        parse("FROM x\nMESSAGE  user hi\n")


def test_messages_keep_role_and_content_apart() -> None:
    text = (
        "\nFROM foo\nMESSAGE system You are a file parser. Always parse things.\n"
        "MESSAGE user Hey there!\nMESSAGE assistant Hello, I want to parse all the things!\n"
    )
    mf = parse(text)
    assert [(m.role, m.content) for m in mf.messages] == [
        ("system", "You are a file parser. Always parse things."),
        ("user", "Hey there!"),
        ("assistant", "Hello, I want to parse all the things!"),
    ]
    assert mf.commands[1] == Command.message(
        "system", "You are a file parser. Always parse things."
    )


def test_multiline_message() -> None:
    mf = parse('\nFROM foo\nMESSAGE system """\nYou are a multiline file parser.\n"""\n\t\t\t')
    assert mf.messages[0].content == "\nYou are a multiline file parser.\n"


@pytest.mark.parametrize(
    ("value_text", "expected"),
    [
        ('"""\nThis is a\nmultiline system.\n"""', "\nThis is a\nmultiline system.\n"),
        ('"""\nThis is a\nmultiline system."""', "\nThis is a\nmultiline system."),
        ('"""This is a\nmultiline system."""', "This is a\nmultiline system."),
        ('"""This is a multiline system."""', "This is a multiline system."),
        ('"""\nwith "quotes".\n"""', '\nwith "quotes".\n'),
        ('""""""', ""),
        ('""', ""),
        ('"\'"', "'"),
        ('"""\'\'"\'""\'""\'"\'\'\'\'\'""\'""\'"""', "''\"'\"\"'\"\"'\"'''''\"\"'\"\"'"),
        ('"""Say "hi""""', 'Say "hi"'),
        ('"plain quotes\nspan lines too"', "plain quotes\nspan lines too"),
        ('"no \\n escapes \\t here"', "no \\n escapes \\t here"),
        ("'single quotes are literal'", "'single quotes are literal'"),
    ],
)
def test_quoted_values(value_text: str, expected: str) -> None:
    assert parse(f"FROM foo\nSYSTEM {value_text}\n").system == expected


def test_text_after_a_closing_quote_swallows_following_lines() -> None:
    mf = parse('FROM foo\nSYSTEM "hello" world\nMORE "\n')
    assert mf.system == 'hello" world\nMORE '
    with pytest.raises(ModelfileParseError, match="text after the closing quote"):
        parse('FROM foo\nSYSTEM "hello" world\n')


@pytest.mark.parametrize(
    ("line", "name", "value"),
    [
        ("numa true", "numa", "true"),
        ("num_ctx 1", "num_ctx", "1"),
        ("use_mmap true", "use_mmap", "true"),
        ("top_p 1.0", "top_p", "1.0"),
        ("stop ### User:", "stop", "### User:"),
        ("stop ### User: ", "stop", "### User:"),
        ('stop "### User:"', "stop", "### User:"),
        ('stop "### User: "', "stop", "### User: "),
        ('stop """### User:"""', "stop", "### User:"),
        ('stop """### User:\n"""', "stop", "### User:\n"),
        ("stop <|endoftext|>", "stop", "<|endoftext|>"),
        ("stop </s>", "stop", "</s>"),
        ("Temperature 0.5", "Temperature", "0.5"),
        ("temperature 0.5 # not a comment", "temperature", "0.5 # not a comment"),
        (" temperature 0.5", "", "temperature 0.5"),
    ],
)
def test_upstream_parameter_lines(line: str, name: str, value: str) -> None:
    assert cmds(f"FROM foo\nPARAMETER {line}\n")[1] == ("parameter", name, value)


def test_repeated_stop_parameters_accumulate_in_order() -> None:
    mf = parse("FROM x\nPARAMETER stop a\nPARAMETER temperature 1\nPARAMETER stop b\n")
    assert mf.parameters == {"stop": ["a", "b"], "temperature": ["1"]}
    assert mf.parameter("stop") == "b"


def test_comments_only_start_a_line() -> None:
    mf = parse("\n# comment\n   # indented comment\nFROM llama3 # not a comment\n\t")
    assert mf.from_ == "llama3 # not a comment"
    assert parse('FROM x\nSYSTEM """\n# kept\n"""').system == "\n# kept\n"


@pytest.mark.parametrize("keyword", ["from", "FrOm", "FROM"])
def test_command_keywords_are_case_insensitive(keyword: str) -> None:
    assert cmds(f"{keyword} x\nsystem hi\nTeMpLaTe t\n") == [
        ("from", "", "x"),
        ("system", "", "hi"),
        ("template", "", "t"),
    ]


@pytest.mark.parametrize(
    ("keyword", "name"),
    [("DRAFT", "draft"), ("RENDERER", "renderer"), ("PARSER", "parser"), ("REQUIRES", "requires")],
)
def test_undocumented_commands(keyword: str, name: str) -> None:
    assert cmds(f"\nFROM foo\n{keyword} thing1\n")[1] == (name, "", "thing1")


def test_empty_value_after_one_space() -> None:
    assert parse("FROM x\nSYSTEM \n").system == ""
    assert parse("FROM ").from_ == ""


def test_crlf_line_endings() -> None:
    mf = parse('FROM x\r\nSYSTEM """a\r\nb"""\r\nPARAMETER stop y\r\n')
    assert mf.system == "a\r\nb"
    assert mf.parameters["stop"] == ["y"]
    assert [c.line for c in mf] == [1, 2, 4]


def test_crlf_error_lines_are_real_but_ollama_counts_twice() -> None:
    with pytest.raises(ModelfileParseError) as err:
        parse("FROM x\r\nBOGUS y\r\n")
    assert err.value.line == 2
    assert err.value.ollama_error.startswith("(line 3): ")


def test_error_on_the_newline_itself_reports_one_line_more_in_ollama() -> None:
    with pytest.raises(ModelfileParseError) as err:
        parse("FROM x\nSYSTEM\n")
    assert err.value.line == 2
    assert err.value.ollama_error.startswith("(line 3): ")
    assert "SYSTEM must be followed by a space" in err.value.reason


def test_non_printable_runes_are_dropped_even_inside_quotes() -> None:
    mf = parse('FROM x\nSYSTEM "a\u00a0b\u200dc\x07d\te"\n')
    assert mf.system == "abcd\te"


def test_non_printable_rune_before_a_keyword_is_ignored() -> None:
    assert parse("\u200bFROM x\n").from_ == "x"


def test_command_lines_are_recorded() -> None:
    mf = parse('# header\n\nFROM x\nSYSTEM """one\ntwo"""\nPARAMETER stop s\n')
    assert [c.line for c in mf] == [3, 4, 6]


def test_bytes_input_utf8_bom_and_utf16() -> None:
    data = "FROM bob\nPARAMETER param1 1\nSYSTEM You are a utf16 file.\n"
    expected = [
        ("from", "", "bob"),
        ("parameter", "param1", "1"),
        ("system", "", "You are a utf16 file."),
    ]
    assert cmds(b"\xef\xbb\xbf" + data.encode()) == expected
    assert cmds(b"\xff\xfe" + data.encode("utf-16-le")) == expected
    assert cmds(b"\xfe\xff" + data.encode("utf-16-be")) == expected


def test_multibyte_values_and_a_leading_bom_in_str() -> None:
    assert cmds("\ufeffFROM test\n\tSYSTEM 你好👋") == [
        ("from", "", "test"),
        ("system", "", "你好👋"),
    ]


def test_invalid_utf8_becomes_replacement_character() -> None:
    assert parse(b"FROM x\nSYSTEM a\xffb\n").system == "a\ufffdb"


def test_from_may_come_anywhere_and_order_is_kept() -> None:
    mf = parse("SYSTEM s\nLICENSE MIT\nFROM base\nLICENSE Apache\n")
    assert [c.name for c in mf] == ["system", "license", "from", "license"]
    assert mf.licenses == ["MIT", "Apache"]
