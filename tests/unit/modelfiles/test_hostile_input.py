"""Hostile Modelfiles (issue 13, item 13): long lines, deeply nested templates.

The parser did work proportional to the value so far at every space of a value, so a 340 KB
line took 50 s of a viewer's ``modelfile check``; templates nested a few thousand deep ended in
a RecursionError ("Something went wrong").
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import modelarium.core.modelfiles.parser as parser_module
from modelarium.core.modelfiles import parse


def _examined(monkeypatch, text: str) -> int:
    """Characters the parser hands to ``unquote`` (its per-value check) while parsing ``text``."""
    seen = [0]
    original = parser_module.unquote

    def counting(value: str) -> tuple[str, bool]:
        seen[0] += len(value)
        return original(value)

    monkeypatch.setattr(parser_module, "unquote", counting)
    parse(text)
    return seen[0]


@pytest.mark.parametrize(
    "make",
    [
        lambda n: "FROM llama3\nSYSTEM " + "word " * n + "\n",
        lambda n: 'FROM llama3\nSYSTEM """' + "line\n" * n + '"""\n',
        lambda n: 'FROM llama3\nSYSTEM "' + "a " * n + '"\n',
        lambda n: "FROM llama3\nPARAMETER stop " + "\t" * n + "x\n",
    ],
    ids=["spaces", "quoted-lines", "quoted-spaces", "tabs"],
)
def test_the_parser_does_linear_work(monkeypatch, make):
    """Time-independent: the work per character does not grow with the line."""
    small, large = make(2_000), make(20_000)
    work_small, work_large = _examined(monkeypatch, small), _examined(monkeypatch, large)
    assert work_large <= 2 * len(large), (work_small, work_large)
    assert work_large <= 12 * max(work_small, 1)


def test_a_340_kb_line_parses_in_well_under_a_few_seconds():
    text = "FROM llama3\nSYSTEM " + "lorem ipsum " * 30_000 + "\n"  # 360 KB, one line
    started = time.perf_counter()
    modelfile = parse(text)
    elapsed = time.perf_counter() - started
    assert modelfile.commands[-1].args.startswith("lorem ipsum")
    assert elapsed < 15, f"{elapsed:.1f}s"  # a bound the quadratic parser missed by minutes


def _check(runner, tmp_path: Path, text: str):
    path = tmp_path / "Modelfile"
    path.write_text(text)
    return runner.execute(f"modelfile check --file {path}", user="U_VIEWER")


@pytest.mark.parametrize(
    "template",
    [
        "{{if .System}}" * 3000 + "x" + "{{end}}" * 3000,
        "{{range .Messages}}" * 3000 + "{{end}}" * 3000,
        "{{with .Prompt}}" * 1500 + "{{if .System}}" * 1500 + "{{end}}" * 3000,
        "{{ " + "(" * 3000 + ".Prompt" + ")" * 3000 + " }}",
        '{{define "a"}}' + '{{block "b" .}}' * 2000 + "{{end}}" * 2001,
    ],
    ids=["if", "range", "with", "parens", "block"],
)
def test_deeply_nested_templates_are_one_clear_error(runner, tmp_path, template):
    reply = _check(runner, tmp_path, f'FROM llama3\nTEMPLATE """{template}"""\n')
    assert not reply.ok
    text = reply.text
    assert "Something went wrong" not in text, text
    assert "nested" in text and "deep" in text, text
