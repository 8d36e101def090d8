"""TEMPLATE checking: Go template syntax as Ollama's server judges it, plus what it uses."""

from __future__ import annotations

import pytest

from modelarium.core.modelfiles import check_template
from modelarium.core.modelfiles.template import FUNCTIONS

CHATML_TOOLS = """{{- if .Messages }}
{{- if or .System .Tools }}<|im_start|>system
{{- if .System }}
{{ .System }}
{{- end }}
{{- if .Tools }}
# Tools
<tools>
{{- range .Tools }}
{"type": "function", "function": {{ .Function }}}
{{- end }}
</tools>
{{- end }}<|im_end|>
{{ end }}
{{- range $i, $_ := .Messages }}
{{- $last := eq (len (slice $.Messages $i)) 1 -}}
{{- if eq .Role "user" }}<|im_start|>user
{{ .Content }}<|im_end|>
{{ else if eq .Role "assistant" }}<|im_start|>assistant
{{ if .Content }}{{ .Content }}
{{- else if .ToolCalls }}<tool_call>
{{ range .ToolCalls }}{"name": "{{ .Function.Name }}", "arguments": {{ .Function.Arguments }}}
{{ end }}</tool_call>
{{- end }}{{ if not $last }}<|im_end|>
{{ end }}
{{- else if eq .Role "tool" }}<|im_start|>user
<tool_response>
{{ .Content }}
</tool_response><|im_end|>
{{ end }}
{{- if and (ne .Role "assistant") $last }}<|im_start|>assistant
{{ end }}
{{- end }}
{{- else }}
{{- if .System }}<|im_start|>system
{{ .System }}<|im_end|>
{{ end }}{{ if .Prompt }}<|im_start|>user
{{ .Prompt }}<|im_end|>
{{ end }}<|im_start|>assistant
{{ end }}{{ .Response }}{{ if .Response }}<|im_end|>{{ end }}"""


def test_a_realistic_tool_calling_template_is_clean() -> None:
    report = check_template(CHATML_TOOLS)
    assert report.ok
    assert report.problems == ()
    assert {"System", "Tools", "Messages", "Prompt", "Response"} <= report.root_fields
    assert {"Role", "Content", "ToolCalls", "Function", "Name", "Arguments"} <= report.fields
    assert report.emits("<|im_end|>")
    assert report.emits("<tool_call>")
    assert report.uses_system


@pytest.mark.parametrize(
    ("template", "vars_"),
    [
        ("{{ .Prompt }}", ("prompt", "response")),
        ("{{ .System }} {{ .Prompt }}", ("prompt", "response", "system")),
        ("{{ .System }} {{ .Prompt }} {{ .Response }}", ("prompt", "response", "system")),
        (
            "{{ with .Tools }}{{ . }}{{ end }} {{ .System }} {{ .Prompt }}",
            ("prompt", "response", "system", "tools"),
        ),
        (
            "{{ range .Messages }}{{ .Role }} {{ .Content }}{{ end }}",
            ("content", "messages", "role"),
        ),
        (
            '{{ range .Messages }}{{ if eq .Role "tool" }}Tool Result: {{ .ToolName }} '
            "{{ .Content }}{{ end }}{{ end }}",
            ("content", "messages", "role", "toolname"),
        ),
        ("{{ range $m := .Messages }}{{ $m.Role }}{{ end }}", ("$m", "messages", "role")),
    ],
)
def test_vars_match_ollama_template_vars(template: str, vars_: tuple[str, ...]) -> None:
    """Upstream TestParse: lowercased identifiers, plus the ``response`` Ollama appends."""
    assert check_template(template).vars == vars_


@pytest.mark.parametrize(
    ("template", "message", "line"),
    [
        ("{{ .Prompt ", "unclosed action", 1),
        (
            '{{define "x"}}{{template "x"}}{{end}}{{template "x"}}',
            "undefined template specified",
            1,
        ),
        ("a\n{{ if .System }}\nb", "unexpected EOF: {{if}} has no matching {{end}}", 2),
        ("{{ range .Messages }}\n{{ end }}\n{{ end }}", "unexpected {{end}}", 3),
        ("{{ else }}", "unexpected {{else}}", 1),
        ("{{ foo .Prompt }}", 'function "foo" not defined', 1),
        ("{{ $x }}", 'undefined variable "$x"', 1),
        ("{{ if $x := .System }}{{ end }}{{ $x }}", 'undefined variable "$x"', 1),
        ("{{ break }}", "{{break}} outside {{range}}", 1),
        ("{{ .Prompt | 3 }}", "non executable command in pipeline stage 2", 1),
        ("{{}}", "missing value for command", 1),
        ("{{ if }}{{ end }}", "missing value for if", 1),
        ("{{ 089 }}", 'integer overflow: "089"', 1),
        ("{{ 1e400 }}", 'illegal number syntax: "1e400"', 1),
        ('{{ "a\\q" }}', "invalid syntax", 1),
        ("{{ 'ab' }}", "malformed character constant: 'ab'", 1),
        ("{{ (len .Messages }}", "unclosed left paren", 1),
        ("{{ .Prompt) }}", "unexpected right paren", 1),
        ("{{/* note }}", "unclosed comment", 1),
        ("{{/* note */ }}", "comment ends before closing delimiter", 1),
        ("{{ .Prompt@ }}", "bad character U+0040 '@'", 1),
        ("{{ \u00a0 }}", "unrecognized character in action: U+00A0", 1),
        ('{{ "x }}', "unterminated quoted string", 1),
        ("{{ range .Messages }}{{ else if .System }}{{ end }}", "unexpected <if> in input", 1),
        (
            '{{ define "a" }}x{{ end }}{{ define "a" }}y{{ end }}',
            'multiple definition of template "a"',
            1,
        ),
        ("{{ .Prompt.5 }}", 'unexpected ".5" in operand', 1),
        ("{{ 1x }}", 'bad number syntax: "1x"', 1),
    ],
)
def test_syntax_errors_go_would_report(template: str, message: str, line: int) -> None:
    report = check_template(template)
    assert not report.ok
    assert report.errors[0].line == line
    assert message in report.errors[0].message


@pytest.mark.parametrize(
    "template",
    [
        "{{/* a comment */}}{{ .Prompt }}",
        "{{- /* trimmed comment */ -}} {{ .Prompt }}",
        "{{-3}}{{ 3 -}} x",
        "{{ if .System }}a{{ else if .Prompt }}b{{ else }}c{{ end }}",
        "{{ with .System }}{{ . }}{{ else with .Prompt }}{{ . }}{{ end }}",
        "{{ range .Messages }}{{ if .Content }}{{ continue }}{{ end }}{{ break }}{{ end }}",
        "{{ $x := 1 }}{{ $x = 2 }}{{ $x }}",
        '{{ block "sys" . }}{{ .System }}{{ end }}{{ template "sys" . }}',
        "{{ 0x1p-2 }} {{ 1_000 }} {{ 1i }} {{ 1+2e-3i }} {{ 'a' }} {{ `raw\nstring` }}",
        "{{ currentDate }} {{ yesterdayDate }} {{ json .Tools }}",
        "{{ range $k, $v := .Tools }}{{ $k }}{{ $v.Function.Parameters.Properties }}{{ end }}",
        '{{ printf "%s" .Prompt | len }}',
        "{{\n  .Prompt\n}}",
    ],
)
def test_valid_templates(template: str) -> None:
    report = check_template(template)
    assert report.problems == ()


def test_every_ollama_function_is_known() -> None:
    assert {"json", "currentDate", "yesterdayDate", "toTypeScriptType"} <= FUNCTIONS
    assert {"slice", "index", "len", "eq", "ne", "and", "or", "not", "printf"} <= FUNCTIONS


@pytest.mark.parametrize(
    ("template", "warning"),
    [
        (
            "{{ .system }}",
            'Ollama passes no .system; it prints "<no value>" (did you mean .System?)',
        ),
        ("{{ .Messages.Role }}", "can't evaluate field Role in type []Message"),
        (
            "{{ range $i, $m := .Messages }}{{ $m.Foo }}{{ end }}",
            "can't evaluate field Foo in type Message",
        ),
        ("{{ range .Messages }}{{ .content }}{{ end }}", "(did you mean .Content?)"),
        ("{{ len .Messages 2 }}", "wrong number of args for len: want 1 got 2"),
        ("{{ .Prompt | not 1 }}", "wrong number of args for not: want 1 got 2"),
        ("{{ .Prompt 1 }}", "can't give argument to non-function"),
        ('{{ template "missing" . }}', 'no such template "missing"'),
        ("{{ .Prompt.Length }}", "can't evaluate field Length in type string"),
    ],
)
def test_runtime_problems_are_warnings(template: str, warning: str) -> None:
    report = check_template(template)
    assert report.ok
    assert any(warning in p.message for p in report.warnings), report.warnings


def test_problem_lines_are_template_lines() -> None:
    report = check_template("line one\n{{ .Prompt }}\n{{ .Nope }}\n")
    assert [(p.severity, p.line) for p in report.problems] == [("warning", 3)]


def test_literals_apply_trim_markers() -> None:
    report = check_template("A  \n{{- .Prompt -}}\n  B{{ if .System }} C {{ end }}")
    assert report.text == ("A", "B", " C ")
    assert report.emits("A")
    assert not report.emits("A  ")


def test_string_constants_count_as_emitted_text() -> None:
    report = check_template('{{ .Prompt }}{{ "<|end|>" }}{{ printf "%s</s>" .Response }}')
    assert report.emits("<|end|>")
    assert report.emits("</s>")
    assert not report.emits("<|eot_id|>")


def test_system_use_follows_ollama_messages_path() -> None:
    assert not check_template("{{ .Prompt }}").uses_system
    assert check_template("{{ if .System }}{{ .System }}{{ end }}").uses_system
    assert check_template("{{ range .Messages }}{{ .Content }}{{ end }}").uses_system


def test_defined_templates_are_reported() -> None:
    report = check_template('{{ define "a" }}x{{ end }}{{ block "b" . }}y{{ end }}')
    assert report.defined == {"a", "b"}
