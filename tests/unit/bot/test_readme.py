"""The README's command reference is generated from the registry and must match it."""

from __future__ import annotations

from pathlib import Path

from modelarium.bot.reference import markdown_reference, render_into

README = Path(__file__).parents[3] / "README.md"


def test_readme_command_reference_is_current():
    text = README.read_text()
    assert render_into(text, markdown_reference()) == text, (
        "README command reference is stale: run `modelarium commands --update-readme README.md`"
    )


def test_readme_shows_the_two_commands():
    text = README.read_text()
    assert "make run" in text and "make test" in text
