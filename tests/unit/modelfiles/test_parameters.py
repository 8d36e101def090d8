"""PARAMETER names, types, Go-exact coercion (``api.FormatParams``) and sanity ranges."""

from __future__ import annotations

import math

import pytest

from modelarium.core.modelfiles import PARAMETERS, ParameterError, ParamType
from modelarium.core.modelfiles import go_strconv as go
from modelarium.core.modelfiles.parameters import (
    DEPRECATED_PARAMETERS,
    coerce,
    format_value,
    range_problem,
    resolve,
    suggest,
)


def test_names_and_types_match_ollama_options() -> None:
    by_type = {t: sorted(n for n, s in PARAMETERS.items() if s.type is t) for t in ParamType}
    ints = {"num_ctx", "num_batch", "num_gpu", "main_gpu", "num_thread", "draft_num_predict"}
    ints |= {"num_keep", "seed", "num_predict", "top_k", "repeat_last_n"}
    floats = {"top_p", "min_p", "typical_p", "temperature", "repeat_penalty"}
    floats |= {"presence_penalty", "frequency_penalty"}
    assert by_type[ParamType.INT] == sorted(ints)
    assert by_type[ParamType.FLOAT] == sorted(floats)
    assert by_type[ParamType.BOOL] == ["use_mmap"]
    assert by_type[ParamType.STRING_LIST] == ["stop"]
    assert not DEPRECATED_PARAMETERS & PARAMETERS.keys()


@pytest.mark.parametrize(
    ("name", "text", "value"),
    [
        ("temperature", "0.5", 0.5),
        ("temperature", "1", 1.0),
        ("temperature", "1e-1", 0.10000000149011612),  # float32, as Ollama stores it
        ("top_k", "40", 40),
        ("seed", "-1", -1),
        ("num_ctx", "+8192", 8192),
        ("use_mmap", "T", True),
        ("use_mmap", "False", False),
        ("use_mmap", "0", False),
        ("stop", "<|eot_id|>", "<|eot_id|>"),
    ],
)
def test_coerce_accepts_what_go_accepts(name: str, text: str, value: object) -> None:
    assert coerce(name, text) == value


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("num_ctx", "4k", "invalid int value [4k]"),
        ("num_ctx", "8_192", "invalid int value [8_192]"),
        ("num_ctx", "1.0", "invalid int value [1.0]"),
        ("num_ctx", " 8", "invalid int value [ 8]"),
        ("seed", "9223372036854775808", "invalid int value [9223372036854775808]"),
        ("temperature", "warm", "invalid float value [warm]"),
        ("temperature", "0.5 # c", "invalid float value [0.5 # c]"),
        ("temperature", "1e40", "invalid float value [1e40]"),
        ("use_mmap", "yes", "invalid bool value [yes]"),
        ("use_mmap", "TRUE ", "invalid bool value [TRUE ]"),
        ("Temperature", "1", "unknown parameter 'Temperature'"),
        ("numa", "true", "unknown parameter 'numa'"),
        ("num_gqa", "1", "unknown parameter 'num_gqa'"),
        ("tfs_z", "1", "unknown parameter 'tfs_z'"),
    ],
)
def test_coerce_rejects_with_ollama_messages(name: str, text: str, message: str) -> None:
    with pytest.raises(ParameterError) as err:
        coerce(name, text)
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1_23.50_0_0e+1_2", 1.235e14),
        ("0x_1_2.3_4_5p+1_2", 74565.0),
        ("0x1p-2", 0.25),
        (".5", 0.5),
        ("5.", 5.0),
        ("Inf", math.inf),
        ("-infinity", -math.inf),
        ("+INF", math.inf),
    ],
)
def test_go_parse_float_accepts(text: str, expected: float) -> None:
    assert go.parse_float(text) == expected


def test_go_parse_float_nan() -> None:
    assert math.isnan(go.parse_float("NaN"))


@pytest.mark.parametrize(
    "text",
    [
        "-_123.5e+12",
        "_123.5e+12",
        "1__23.5e+12",
        "123_.5e+12",
        "123._5e+12",
        "123.5_e+12",
        "123.5e_+12",
        "123.5e+12_",
        "0x12.345p+12_",
        "0x1.8",  # hex mantissa needs a p exponent
        "+nan",
        "infin",
        ".",
        "1e",
        "",
        " 1",
        "1,5",
    ],
)
def test_go_parse_float_syntax_errors(text: str) -> None:
    with pytest.raises(go.GoSyntaxError):
        go.parse_float(text)


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("340282346638528859811704183484516925440", True),  # largest float32
        ("3.402823567e38", True),  # just under the rounding border
        ("0x.ffffff7fp128", True),
        ("3.4028235678e38", False),  # just over it
        ("3.4028236e38", False),
        ("0x1.0p128", False),
        ("0x.ffffff8p128", False),
        ("1e-50", True),  # underflow to zero is not an error in Go
    ],
)
def test_go_parse_float32_range(text: str, ok: bool) -> None:
    if ok:
        assert math.isfinite(go.parse_float(text, 32))
    else:
        with pytest.raises(go.GoRangeError):
            go.parse_float(text, 32)


def test_go_parse_int_base0_forms() -> None:
    assert go.parse_int_base0("0x1F") == 31
    assert go.parse_int_base0("0o17") == 15
    assert go.parse_int_base0("017") == 15
    assert go.parse_int_base0("0b101") == 5
    assert go.parse_int_base0("-1_000") == -1000
    with pytest.raises(go.GoSyntaxError):
        go.parse_int_base0("089")
    with pytest.raises(go.GoSyntaxError):
        go.parse_int_base0("1__0")


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("temperature", -0.1, "temperature must be >= 0, got -0.1"),
        ("top_p", 3.0, "top_p must be between 0 and 1, got 3"),
        ("min_p", -1.0, "min_p must be between 0 and 1, got -1"),
        ("num_ctx", 0, "num_ctx must be >= 1, got 0"),
        ("repeat_penalty", 0.0, "repeat_penalty must be > 0, got 0"),
        ("num_predict", -3, "num_predict must be >= -2, got -3"),
        ("temperature", math.inf, "temperature must be a finite number, got inf"),
        ("stop", "", "an empty stop sequence is useless"),
    ],
)
def test_range_problems(name: str, value: float | str, problem: str) -> None:
    assert range_problem(name, value) == problem


@pytest.mark.parametrize(
    ("name", "value"),
    [("temperature", 0.0), ("top_p", 1.0), ("num_gpu", -1), ("num_predict", -2), ("seed", -1)],
)
def test_meaningful_edge_values_pass(name: str, value: float) -> None:
    assert range_problem(name, value) is None


def test_resolve_is_ollama_create_request_parameters() -> None:
    pairs = [
        ("temperature", "0.5"),
        ("top_k", "1"),
        ("stop", "a"),
        ("mirostat", "whatever"),  # deprecated: dropped without checking the value
        ("stop", "b"),
        ("temperature", "0.25"),
    ]
    assert resolve(pairs) == {"temperature": 0.25, "top_k": 1, "stop": ["a", "b"]}
    with pytest.raises(ParameterError, match="unknown parameter 'typo'"):
        resolve([("temperature", "1"), ("typo", "1")])


def test_suggest_and_format_value() -> None:
    assert suggest("Temperature") == "temperature"
    assert suggest("temprature") == "temperature"
    assert suggest("zzz") is None
    assert format_value(True) == "true"
    assert format_value(0.7) == "0.7"
    assert format_value(4096) == "4096"
    assert coerce("temperature", format_value(0.7)) == pytest.approx(0.7)
