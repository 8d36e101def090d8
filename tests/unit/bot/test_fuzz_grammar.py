"""Fuzzing the command grammar: whatever anyone types, one clear line, never a crash.

Hypothesis builds command lines from every registered command path followed by hostile words
(quotes, flags, huge numbers, control and bidi characters, Slack escapes, template syntax), and
plain random text, and runs them as a viewer, an operator and an admin through the one
dispatcher every front uses. "Something went wrong" (an unexpected exception) or a traceback
in a reply fails the test, with the input that caused it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import modelarium.bot.commands  # noqa: F401  (registers every command)
from modelarium.bot.commands.registry import registry
from modelarium.bot.dispatch import CommandRunner
from modelarium.core.app import Core
from modelarium.core.rbac import Role
from tests.conftest import make_settings

PATHS = sorted(" ".join(command.path) for command in registry.commands())

WORDS = [
    "--page", "--file", "--text", "--since", "--format", "--set", "--location", "--endpoint",
    "--note", "--digest", "--revision", "--api-key", "-", "--", "'", '"', "'unclosed", '"a b"',
    "<@U1>", "<@U_ADMIN|boss>", "<!channel>", "<#C1|general>", "<https://x.io|x>", "0", "-1",
    "1", "2", "99999999999999999999999", "1e309", "nan", "inf", "30d", "-5m", "0s", "10GiB",
    "\x00", "\x1b[31m", "\u202e", "\u200b", "é", "🦙", "a" * 300, "org/model", "org/model@rev",
    "../../etc/passwd", "/dev/null", "/", "http://8.8.8.8:1", "http://127.0.0.1:1",
    "{{if .System}}", "{{", "}}", "{}", "[", "]", "=", "k=v", "num_ctx=abc", "viewer",
    "operator", "admin", "json", "csv", "lru", "age", "llama3", "llama3:latest", "S0GROUP",
    "health_checks", "system", "template", "%s", "\\", "\\n", "$(id)", "`id`", ";",
]  # fmt: skip

word = st.one_of(
    st.sampled_from(WORDS),
    st.text(max_size=30),
    st.from_regex(r"--[a-z][a-z-]{0,14}", fullmatch=True),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
)
command_line = st.builds(
    lambda path, words: " ".join([path, *words]),
    st.sampled_from(PATHS),
    st.lists(word, max_size=6),
)
line = st.one_of(command_line, command_line, st.text(max_size=200))
user = st.sampled_from(["U_ADMIN", "U_OP", "U_VIEWER"])


@pytest.fixture
def fuzz_core(tmp_path: Path, database_url: str, make_core):
    """Every outside system unreachable at once (closed local ports, short timeouts)."""
    core = make_core(
        make_settings(
            tmp_path,
            database_url,
            hf_endpoint="http://127.0.0.1:9",
            hub_timeout=0.5,
            health_timeout=0.3,
            endpoint_allowlist=["127.0.0.0/8"],
        )
    )
    core.rbac.grant("U_OP", Role.OPERATOR, granted_by="U_ADMIN")
    core.endpoints.add("U_ADMIN", "gpu-1", "http://127.0.0.1:9", shared_with="everyone")
    return core


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=line, who=user)
def test_no_command_line_crashes_the_dispatcher(fuzz_core: Core, text: str, who: str) -> None:
    reply = CommandRunner(fuzz_core).execute(text, user=who, front="cmd")
    shown = reply.text + str(reply.data)
    assert "Something went wrong" not in shown, (text, who)
    assert "Traceback" not in shown, (text, who)
    if not reply.ok and "error" in reply.data:
        assert "\n" not in str(reply.data["error"]), (text, reply.data["error"])
