"""Replies never echo a long argument whole (issue 14, item 11).

Every command of the registry gets a 15,000-character word in each of its arguments and flags
(the runner refuses text past 20,000 characters before parsing). Whatever the answer (an error,
a usage line, "no such model", a did-you-mean), it quotes at most the start of that word.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

import modelarium.bot.commands  # noqa: F401  (registers every command)
from modelarium.bot.commands.registry import registry
from modelarium.bot.commands.spec import Arg, Command, Flag
from modelarium.bot.dispatch import CommandRunner
from modelarium.core.app import Core
from modelarium.core.echo import ECHO_LIMIT, shown
from tests.conftest import make_settings
from tests.plugins.databases import PostgresSchemas, SqliteTemplate, _leased_postgres_url

LONG = "ab" * 7_500  # 15,000 characters, no spaces: one word
BOUND = 2 * ECHO_LIMIT + 40  # the longest run of it a reply may contain (a value shown twice)


def _cases() -> list[tuple[Command, Arg | Flag]]:
    out: list[tuple[Command, Arg | Flag]] = []
    for command in registry.commands():
        out += [(command, a) for a in command.args]
        out += [(command, f) for f in command.flags if not f.is_switch]
    return out


CASES = _cases()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def offline_runner(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    sqlite_template: SqliteTemplate,
    postgres_schemas: PostgresSchemas,
) -> Iterator[CommandRunner]:
    """One core per backend for the module (hundreds of commands, each failing on its argument,
    none writing what another reads), with every outside system unreachable."""
    tmp_path = tmp_path_factory.mktemp("echo")
    leased = None
    if request.param == "sqlite":
        sqlite_template.copy_to(tmp_path / "modelarium.db")
        url = f"sqlite:///{tmp_path / 'modelarium.db'}"
    else:
        leased = _leased_postgres_url(postgres_schemas)
        url = next(leased)
    core = Core(
        make_settings(
            tmp_path, url, hf_endpoint="http://127.0.0.1:9", hub_timeout=0.5, health_timeout=0.3
        )
    )
    core.migrate()
    yield CommandRunner(core)
    core.close()
    if leased is not None:
        next(leased, None)  # gives the schema back


def _longest_run(text: str) -> int:
    """Longest stretch of the echoed word inside ``text``."""
    return max((len(m) for m in re.findall(r"(?:ab)+", text)), default=0)


def test_shown_keeps_the_start_and_says_how_much_is_left_out():
    assert shown("abc") == "'abc'"
    cut = shown("x" * 1000)
    assert cut.startswith("'" + "x" * ECHO_LIMIT + "…'") and "920 more characters" in cut
    assert shown("x" * 1000, quote=False).startswith("x" * ECHO_LIMIT + "…")


@pytest.mark.parametrize(("command", "item"), CASES, ids=[f"{c.name}:{i.name}" for c, i in CASES])
def test_a_long_argument_is_never_echoed_whole(offline_runner, command, item):
    words = [*command.path]
    if isinstance(item, Arg):
        for arg in command.args:
            if arg is item:
                words.append(LONG)
                break
            words.append("1" if arg.required else "")
    else:
        words += [f"--{item.name}", LONG]
    reply = offline_runner.execute(" ".join(w for w in words if w), user="U_ADMIN")
    rendered = reply.text + " " + str(reply.data.get("error", ""))
    assert _longest_run(rendered) <= BOUND, rendered[:300]


@pytest.mark.parametrize(
    "text",
    [
        LONG,  # unknown command, with a did-you-mean
        f"help {LONG}",
        f"info {LONG}",
        f"info org/{LONG}",
        f"endpoint show {LONG}",
        f"approve 1 --bogus-{LONG}",
    ],
)
def test_unknown_names_and_suggestions_are_bounded(offline_runner, text):
    reply = offline_runner.execute(text, user="U_ADMIN")
    assert not reply.ok
    assert _longest_run(reply.text) <= BOUND, reply.text[:300]
