"""Tensor-parallel sizes vLLM accepts (gpu-fit-formulas.md §5)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from modelarium.core.fit import parse_quant, read_model_config, tp_problems, valid_tp_sizes

Loader = Callable[[str], dict[str, Any]]


@pytest.mark.parametrize(
    ("name", "sizes"),
    [
        # §5 "Valid TP sets": ≥ 16 replicates KV heads.
        ("llama-3.1-8b-instruct", [1, 2, 4, 8, 16, 32]),
        ("mixtral-8x7b-v0.1", [1, 2, 4, 8, 16, 32]),
        ("llama-3.1-70b-instruct", [1, 2, 4, 8, 16, 32, 64]),
        ("qwen2.5-7b-instruct", [1, 2, 4]),  # 28 heads
        ("qwen3-30b-a3b", [1, 2, 4, 8, 16, 32]),  # {1,2,4} partition KV, {8,16,32} replicate
    ],
)
def test_valid_tp_sets(load_config: Loader, name: str, sizes: list[int]) -> None:
    assert valid_tp_sizes(read_model_config(load_config(name)), 64) == sizes


def test_heads_must_divide(load_config: Loader) -> None:
    shape = read_model_config(load_config("qwen2.5-7b-instruct"))
    problems = tp_problems(shape, 8)
    assert problems
    assert "28 attention heads are not divisible by tensor parallel size 8" in problems[0]
    assert tp_problems(shape, 4) == []
    assert tp_problems(shape, 0) == ["tensor parallel size must be at least 1, not 0"]


def test_kv_head_rule_and_intermediate() -> None:
    base = {"hidden_size": 768, "num_hidden_layers": 2, "vocab_size": 10, "intermediate_size": 3072}
    # 12 heads, 3 KV heads: TP 4 > 3 KV heads needs 4 % 3 == 0 → rejected; TP 6 replicates fine.
    shape = read_model_config({**base, "num_attention_heads": 12, "num_key_value_heads": 3})
    assert any("not a multiple of the 3 KV heads" in p for p in tp_problems(shape, 4))
    assert tp_problems(shape, 6) == []
    # 12 KV heads, TP 8: heads 12 % 8 fails, and 12 KV % 8 fails too.
    mha = read_model_config({**base, "num_attention_heads": 16, "num_key_value_heads": 12})
    assert any("12 KV heads are not divisible" in p for p in tp_problems(mha, 8))
    odd = read_model_config({**base, "num_attention_heads": 16, "intermediate_size": 3000})
    assert any("intermediate_size 3000" in p for p in tp_problems(odd, 16))


def test_awq_group_alignment(load_config: Loader) -> None:
    # Rule 4: (intermediate_size / TP) % group_size == 0 for the row-parallel down_proj.
    shape = read_model_config(load_config("qwen2.5-7b-instruct"))  # 18944 = 128 × 148
    awq = parse_quant("awq")
    assert tp_problems(shape, 2, awq) == []
    problems = tp_problems(shape, 4, awq)  # 18944 / 4 = 4736 = 37 × 128: fine
    assert problems == []
    g64 = parse_quant("awq-g64")
    assert tp_problems(shape, 4, g64) == []
    small = read_model_config(
        {
            "hidden_size": 1024,
            "num_hidden_layers": 2,
            "num_attention_heads": 8,
            "vocab_size": 10,
            "intermediate_size": 2816,
        }
    )
    problems = tp_problems(small, 4, awq)  # 2816 / 4 = 704 = 5.5 × 128
    assert any("group size 128" in p for p in problems)
    assert tp_problems(small, 4) == []  # unquantized: fine


def test_mla_ignores_kv_head_rule(load_config: Loader) -> None:
    shape = read_model_config(load_config("deepseek-v3"))
    assert tp_problems(shape, 8) == []
    assert 16 in valid_tp_sizes(shape, 16)
