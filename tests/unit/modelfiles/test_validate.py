"""Validation: create-time refusals the parser cannot see, and cross-element warnings."""

from __future__ import annotations

import pytest

from modelarium.core.modelfiles import Command, Modelfile, Problem, parse, validate
from modelarium.core.modelfiles.validate import base_differs, is_semver

GOOD = '''FROM llama3:8b
TEMPLATE """{{ if .System }}<|start_header_id|>system<|end_header_id|>

{{ .System }}<|eot_id|>{{ end }}<|start_header_id|>user<|end_header_id|>

{{ .Prompt }}<|eot_id|><|start_header_id|>assistant<|end_header_id|>

{{ .Response }}<|eot_id|>"""
SYSTEM You are concise.
PARAMETER temperature 0.7
PARAMETER num_ctx 8192
PARAMETER stop <|eot_id|>
PARAMETER stop <|start_header_id|>
MESSAGE user Hi
MESSAGE assistant Hello!
LICENSE MIT
REQUIRES 0.14.0
'''


def found(text: str | Modelfile, **kwargs: str) -> list[tuple[str, int, str]]:
    mf = parse(text) if isinstance(text, str) else text
    return [(p.severity, p.line, p.message) for p in validate(mf, **kwargs)]


def test_a_good_modelfile_has_no_problems() -> None:
    assert validate(parse(GOOD)) == []


def test_problem_is_a_severity_line_message_tuple() -> None:
    problem = validate(Modelfile([Command("system", "x")]))[0]
    severity, line, message = problem
    assert (severity, line, message) == ("error", 0, "no FROM line")
    assert str(Problem("warning", 3, "m")) == "line 3: warning: m"


def test_several_from_lines_are_an_error() -> None:
    assert (
        "error",
        2,
        "2 FROM lines; a Modelfile needs exactly one (Ollama keeps only the last model name)",
    ) in found("FROM llama3\nFROM mistral\n")


def test_several_local_files_are_merged_like_ollama_show_output() -> None:
    assert found("FROM /blobs/sha256-model\nFROM /blobs/sha256-projector\n") == []


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "PARAMETER Temperature 0.7",
            "unknown parameter 'Temperature' (did you mean 'temperature'?)",
        ),
        ("PARAMETER  temperature 0.7", "unknown parameter '' (two spaces after PARAMETER?)"),
        ("PARAMETER numa true", "unknown parameter 'numa'"),
        ("PARAMETER num_ctx 4k", "invalid int value [4k] for parameter 'num_ctx'"),
        (
            "PARAMETER temperature 0.5 # c",
            "invalid float value [0.5 # c] for parameter 'temperature'",
        ),
        ("PARAMETER use_mmap yes", "invalid bool value [yes] for parameter 'use_mmap'"),
        ("PARAMETER top_p 3", "top_p must be between 0 and 1, got 3"),
        ("PARAMETER temperature -1", "temperature must be >= 0, got -1"),
        ("PARAMETER num_ctx 0", "num_ctx must be >= 1, got 0"),
        ("PARAMETER temperature NaN", "temperature must be a finite number, got nan"),
        ("REQUIRES latest", "requires must be a valid semver (e.g. 0.14.0)"),
        ("REQUIRES 0.14.0.1", "requires must be a valid semver (e.g. 0.14.0)"),
        ("ADAPTER ", "ADAPTER has no path"),
    ],
)
def test_create_time_errors(line: str, message: str) -> None:
    assert found(f"FROM x\n{line}\n") == [("error", 2, message)]


@pytest.mark.parametrize(
    ("version", "ok"),
    [
        ("0.14.0", True),
        ("v0.14", True),
        ("1", True),
        ("0.14.0-rc1", True),
        ("1.2.3+build.5", True),
        ("01.2.3", False),
        ("1.2-rc1", False),
        ("", False),
    ],
)
def test_requires_semver_rules(version: str, ok: bool) -> None:
    assert is_semver(version) is ok


def test_deprecated_parameters_warn_without_value_checks() -> None:
    assert found("FROM x\nPARAMETER mirostat banana\n") == [
        ("warning", 2, "parameter mirostat is deprecated; Ollama ignores it")
    ]


def test_parameter_named_like_a_command_is_flagged() -> None:
    problems = found("FROM x\nPARAMETER system be nice\n")
    assert ("warning", 2, "PARAMETER system is read by Ollama as SYSTEM; write SYSTEM") in problems


def test_bad_message_role_in_a_built_modelfile() -> None:
    mf = Modelfile([Command.from_("x"), Command.message("tool", "result")])
    assert any(
        p.severity == "error"
        and 'message role must be one of "system", "user", or "assistant" (got "tool")' in p.message
        for p in validate(mf)
    )


def test_template_syntax_errors_carry_the_modelfile_line() -> None:
    problems = found(
        'FROM x\nSYSTEM s\nTEMPLATE """{{ .System }}\n{{ if .Prompt }}\n{{ .Prompt }}"""\n'
    )
    assert problems == [
        ("error", 4, "template error: unexpected EOF: {{if}} has no matching {{end}}")
    ]


def test_template_runtime_problems_are_warnings() -> None:
    problems = found('FROM x\nTEMPLATE """{{ .Prompt }}\n{{ .system }}"""\n')
    assert problems == [
        (
            "warning",
            3,
            'template: Ollama passes no .system; it prints "<no value>" (did you mean .System?)',
        )
    ]


def test_stop_tokens_the_template_never_emits() -> None:
    text = (
        'FROM x\nTEMPLATE "[INST] {{ .Prompt }} [/INST]"\n'
        "PARAMETER stop [INST]\nPARAMETER stop </s>\n"
    )
    assert found(text) == [
        ("warning", 4, 'stop sequence "</s>" never appears literally in the TEMPLATE'),
    ]


def test_stop_tokens_are_not_judged_without_a_template() -> None:
    assert found("FROM x\nPARAMETER stop </s>\n") == []


def test_system_ignored_by_the_template() -> None:
    text = 'FROM x\nTEMPLATE "{{ .Prompt }}"\nSYSTEM You are a pirate.\nMESSAGE system Be brief.\n'
    assert found(text) == [
        ("warning", 3, "SYSTEM is ignored: the TEMPLATE uses neither .System nor .Messages"),
        (
            "warning",
            4,
            "system MESSAGE is ignored: the TEMPLATE uses neither .System nor .Messages",
        ),
    ]


def test_system_reaches_a_messages_template() -> None:
    text = (
        'FROM x\nTEMPLATE "{{ range .Messages }}{{ .Content }}{{ end }}"\n'
        "SYSTEM You are a pirate.\n"
    )
    assert found(text) == []


def test_duplicate_singletons_warn_at_the_overridden_line() -> None:
    text = "FROM x\nSYSTEM first\nTEMPLATE {{ .System }}{{ .Prompt }}\nSYSTEM second\n"
    assert found(text) == [
        ("warning", 2, "SYSTEM is overridden by a later one; Ollama keeps the last")
    ]


def test_repeated_scalar_parameter_warns_but_repeated_stop_does_not() -> None:
    text = (
        "FROM x\nPARAMETER temperature 1\nPARAMETER stop a\n"
        "PARAMETER stop b\nPARAMETER temperature 0\n"
    )
    assert found(text) == [
        ("warning", 2, "parameter temperature is set again later; Ollama keeps the last value")
    ]


def test_empty_system_and_template_are_ignored_by_ollama() -> None:
    assert found('FROM x\nSYSTEM ""\nTEMPLATE ""\n') == [
        ("warning", 2, "an empty SYSTEM is ignored: the base model's system prompt stays"),
        ("warning", 3, "an empty TEMPLATE is ignored: the base model's template stays"),
    ]


def test_adapter_on_another_base_warns_through_the_hook() -> None:
    text = "FROM mistral:7b\nADAPTER ./llama3-lora.gguf\n"
    assert found(text) == []
    assert found(text, adapter_base="meta-llama/Meta-Llama-3-8B") == [
        (
            "warning",
            2,
            'the adapter was trained on "meta-llama/Meta-Llama-3-8B" but FROM is "mistral:7b";'
            " a LoRA adapter only works on its own base model",
        )
    ]
    assert (
        found("FROM llama3:8b\nADAPTER ./a.gguf\n", adapter_base="meta-llama/Meta-Llama-3-8B") == []
    )


@pytest.mark.parametrize(
    ("from_", "base", "differs"),
    [
        ("llama3:8b", "llama3", False),
        ("llama3:8b", "llama3:70b", True),
        ("llama3:latest", "llama3:8b", False),
        ("hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M", "llama-3.2-1b-instruct", False),
        ("/models/qwen2.5-7b.gguf", "Qwen/Qwen2.5-7B", False),
        ("mistral", "llama3", True),
    ],
)
def test_base_differs_heuristic(from_: str, base: str, differs: bool) -> None:
    assert base_differs(from_, base) is differs


def test_values_a_modelfile_cannot_carry_are_errors() -> None:
    mf = Modelfile([Command.from_("x"), Command("system", "a\u00a0b")])
    assert [p.severity for p in validate(mf)] == ["error"]
    assert "U+00A0" in validate(mf)[0].message


def test_one_line_commands_spanning_lines_are_errors() -> None:
    problems = found('FROM "llama3\nSYSTEM hi"\n')
    assert ("error", 1, "FROM value spans several lines (a quote left open?)") in problems


def test_draft_must_differ_from_from() -> None:
    assert found("FROM ./model.gguf\nDRAFT ./model.gguf\n") == [
        ("error", 2, "DRAFT must not reference the same local path as FROM: ./model.gguf")
    ]
