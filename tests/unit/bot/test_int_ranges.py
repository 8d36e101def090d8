"""Numbers beyond 64 bits: one line and the usage, on every command that takes one.

The commands are read from the registry, so a command added later with an integer argument
(``type=int``, ``positive_int`` or an ``ident``) is covered without touching this file.
"""

from __future__ import annotations

import pytest

import modelarium.bot.commands  # noqa: F401  (registers every command)
from modelarium.bot.commands.parsing import integer_type, user_id
from modelarium.bot.commands.registry import registry
from modelarium.bot.commands.spec import Arg, Command, Flag
from modelarium.config.units import parse_duration

HUGE = str(2**64 + 1)  # 18446744073709551617: past every 64-bit column and C long


def _filler(item: Arg | Flag) -> str:
    """A value the parser accepts for an argument that is not under test."""
    kind = item.type
    if item.choices:
        return item.choices[0]
    if integer_type(kind) is not None:
        return "1"
    if kind is parse_duration:
        return "1h"
    if kind is user_id:
        return "U_OTHER"
    return "x"


def _int_cases() -> list[tuple[Command, Arg | Flag]]:
    cases = []
    for command in registry.commands():
        for item in (*command.args, *command.flags):
            if integer_type(item.type) is not None:
                cases.append((command, item))
    return cases


CASES = _int_cases()


def _line(command: Command, target: Arg | Flag, value: str) -> str:
    words = [*command.path]
    for arg in command.args:
        if arg is target:
            words.append(value)
        elif arg.required or any(a is target for a in command.args):
            words.append(_filler(arg))
    if isinstance(target, Flag):
        words += [f"--{target.name}", value]
    return " ".join(words)


def test_every_id_argument_of_the_issue_is_enumerated_and_names_what_it_points_at():
    names = {(c.name, i.name): integer_type(i.type) for c, i in CASES}
    for expected in [
        ("approve", "id"),
        ("approval", "id"),
        ("reject", "id"),
        ("jobs", "id"),
        ("cancel", "id"),
        ("alert ack", "id"),
        ("unsilence", "id"),
        ("change", "id"),
        ("revert", "id"),
        ("modelfile rollback", "revision"),
        ("modelfile show", "revision"),
        ("modelfile diff", "from"),
    ]:
        assert expected in names
        kind = names[expected]
        assert kind is not None and kind.noun, expected
    assert ("deployments", "page") in names


@pytest.mark.parametrize(("command", "item"), CASES, ids=[f"{c.name}:{i.name}" for c, i in CASES])
def test_a_64_bit_number_is_one_line_and_the_usage(runner, command: Command, item: Arg | Flag):
    reply = runner.execute(_line(command, item, HUGE), user="U_ADMIN")
    assert not reply.ok, reply.text
    assert reply.outcome == "usage", reply.text
    assert "went wrong" not in reply.text
    error = reply.data["error"]
    assert "\n" not in error
    assert HUGE in error or "at most" in error, error
    assert f"Usage: `/model {command.name}" in reply.text
    kind = integer_type(item.type)
    if kind is not None and kind.noun:
        # an id that cannot exist is answered like any unknown id
        assert error == f"no {kind.noun} #{HUGE}"


def test_an_id_of_fifteen_thousand_digits_is_not_echoed_whole(runner):
    reply = runner.execute("approve " + "9" * 15_000, user="U_ADMIN")
    assert not reply.ok and reply.outcome == "usage"
    assert reply.data["error"].startswith("no approval request #999")
    assert len(reply.text) < 400


@pytest.mark.parametrize(
    "line",
    [
        f"silence health_check {HUGE}d",
        f"audit --since {HUGE}d",
        f"token create ci --expires {HUGE}d",
        f"deployment history chat --at {HUGE}d",
        f"modelfile export assistant@{HUGE}",
        f"modelfile compose --modelfile assistant@{HUGE}",
    ],
)
def test_durations_and_revision_references_beyond_range(runner, line: str):
    reply = runner.execute(line, user="U_ADMIN")
    assert not reply.ok, reply.text
    assert reply.outcome in ("usage", "not_found"), reply.text
    assert "went wrong" not in reply.text
    assert "\n" not in reply.data["error"]
