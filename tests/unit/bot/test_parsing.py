"""Command text -> command + typed arguments, with one-line errors."""

from __future__ import annotations

import pytest

from modelarium.bot.commands.parsing import bind, tokenize, user_id
from modelarium.bot.commands.spec import Arg, Command, Flag
from modelarium.config.units import parse_duration
from modelarium.core.errors import UsageError


def _cmd() -> Command:
    return Command(
        path=("search",),
        handler=lambda ctx, **kw: kw,
        help="",
        args=(Arg("text", rest=True),),
        flags=(
            Flag("sort", choices=("downloads", "likes")),
            Flag("force", type=None),
            Flag("limit", type=int, default=10),
            Flag("since", type=parse_duration),
        ),
    )


def test_tokenize_handles_smart_quotes_escapes_and_links():
    assert tokenize("say “hello world” &amp; <https://x.io/a|x.io>") == [
        "say",
        "hello world",
        "&",
        "https://x.io/a",
    ]


def test_unbalanced_quotes_are_a_usage_error():
    with pytest.raises(UsageError, match="quotes"):
        tokenize('install "org/model')


def test_flags_anywhere_and_rest_argument():
    values = bind(_cmd(), ["llama", "--sort", "likes", "3", "--force", "--limit=5", "8b"])
    assert values == {
        "text": "llama 3 8b",
        "sort": "likes",
        "force": True,
        "limit": 5,
        "since": None,
    }


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["x", "--sort", "stars"], "--sort must be one of downloads, likes"),
        (["x", "--limit", "many"], "--limit: expected a whole number, got 'many'"),
        (["x", "--nope"], "unknown flag --nope"),
        (["x", "--force=yes"], "--force takes no value"),
        (["x", "--sort"], "--sort needs a value"),
        (["x", "--since", "soon"], "--since: not a duration"),
        ([], "missing <text>"),
    ],
)
def test_bad_arguments(words, message):
    with pytest.raises(UsageError) as info:
        bind(_cmd(), words)
    assert str(info.value).startswith(message)


def test_double_dash_ends_flags():
    assert bind(_cmd(), ["--", "--sort"])["text"] == "--sort"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("<@U123ABC|alice>", "U123ABC"), ("<@W99>", "W99"), ("@U55", "U55"), ("bob", "bob")],
)
def test_user_ids(raw, expected):
    assert user_id(raw) == expected


def test_usage_line():
    assert _cmd().usage() == (
        "/model search <text>... [--sort downloads|likes] [--force] [--limit LIMIT] [--since SINCE]"
    )
