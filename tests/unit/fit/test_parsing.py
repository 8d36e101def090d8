"""Context and model-size spellings used by commands and search filters."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelarium.core.errors import UsageError
from modelarium.core.fit import format_gib, format_params, parse_context, parse_param_size


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("32k", 32_768),
        ("128K", 131_072),
        ("8192", 8_192),
        (" 4k ", 4_096),
        ("1.5k", 1_536),
        ("1m", 1_048_576),
        ("16k tokens", 16_384),
        (2048, 2_048),
    ],
)
def test_parse_context(text: str | int, tokens: int) -> None:
    assert parse_context(text) == tokens


@pytest.mark.parametrize("bad", ["", "k", "32q", "-4k", "0", 0, "big", True])
def test_parse_context_rejects(bad: str | int) -> None:
    with pytest.raises(UsageError):
        parse_context(bad)


@given(st.integers(min_value=1, max_value=4096))
def test_k_suffix_is_binary(k: int) -> None:
    assert parse_context(f"{k}k") == k * 1024
    assert parse_context(f"{k}K") == parse_context(k * 1024)


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("8B", 8_000_000_000),
        ("70b", 70_000_000_000),
        ("1.5B", 1_500_000_000),
        ("500M", 500_000_000),
        ("0.5b", 500_000_000),
        ("1T", 1_000_000_000_000),
        ("8x7B", 56_000_000_000),
        ("7", 7_000_000_000),
        ("8030261248", 8_030_261_248),
        (1.5, 1_500_000_000),
        ("135m params", 135_000_000),
    ],
)
def test_parse_param_size(text: str | float, count: int) -> None:
    assert parse_param_size(text) == count


@pytest.mark.parametrize("bad", ["", "B", "eight", "8Q", "-8B", "0B", False])
def test_parse_param_size_rejects(bad: str) -> None:
    with pytest.raises(UsageError):
        parse_param_size(bad)


def test_formatting() -> None:
    assert format_params(8_030_261_248) == "8.03B"
    assert format_params(494_032_768) == "494.03M"
    assert format_params(671_026_419_200) == "671.03B"
    assert format_params(1.2e12) == "1.20T"
    assert format_params(12) == "12"
    assert format_gib(16_060_522_496) == "14.96 GiB"
