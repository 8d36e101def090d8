"""KV-cache bytes per token (gpu-fit-formulas.md §3.2) and their per-GPU split."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelarium.core.errors import UsageError
from modelarium.core.fit import BLOCK_SIZE, kv_cache_spec, kv_dtype_bytes, read_model_config
from tests.unit.fit.data import read_config

Loader = Callable[[str], dict[str, Any]]


@pytest.mark.parametrize(
    ("name", "per_token"),
    [
        ("llama-3.1-8b-instruct", 131_072),  # 32 × 8 × 128, 128 KiB
        ("llama-3.1-70b-instruct", 327_680),  # 80 × 8 × 128, 320 KiB
        ("llama-2-7b-hf", 524_288),  # MHA 32 × 32 × 128, 512 KiB
        ("qwen2.5-7b-instruct", 57_344),  # 28 × 4 × 128, 56 KiB
        ("qwen3-8b", 147_456),  # 36 × 8 × 128, 144 KiB
        ("qwen3-30b-a3b", 98_304),  # 48 × 4 × 128, 96 KiB
        ("gemma-2-9b-it", 344_064),  # 42 × 8 × 256 (all layers as if full), 336 KiB
        ("deepseek-v3", 70_272),  # MLA: 61 × 576, no ×2
    ],
)
def test_bytes_per_token_bf16(load_config: Loader, name: str, per_token: int) -> None:
    spec = kv_cache_spec(read_model_config(load_config(name)))
    assert spec.bytes_per_token == per_token
    fp8 = kv_cache_spec(read_model_config(load_config(name)), "fp8")
    assert fp8.bytes_per_token * 2 == per_token


def test_full_context_sizes(load_config: Loader) -> None:
    # §3.2: Llama-3.1-8B 131,072 tokens → 16 GiB; DeepSeek-V3 163,840 → 10.7 GiB per GPU.
    llama = kv_cache_spec(read_model_config(load_config("llama-3.1-8b-instruct")))
    assert llama.bytes_for(131_072) == 16 * 2**30
    v3 = kv_cache_spec(read_model_config(load_config("deepseek-v3")), tp=8)
    assert round(v3.bytes_for(163_840) / 2**30, 1) == 10.7


def test_tp_splits_kv_heads_until_replication(load_config: Loader) -> None:
    shape = read_model_config(load_config("qwen2.5-7b-instruct"))  # 4 KV heads
    per_gpu = [kv_cache_spec(shape, tp=tp).kv_heads_per_gpu for tp in (1, 2, 4, 8)]
    assert per_gpu == [4, 2, 1, 1]  # TP 8 > 4 KV heads: replicated, stops shrinking


def test_mla_is_not_divided_by_tp(load_config: Loader) -> None:
    shape = read_model_config(load_config("deepseek-v3"))
    assert kv_cache_spec(shape, tp=1).bytes_per_token == kv_cache_spec(shape, tp=8).bytes_per_token
    assert "latent" in kv_cache_spec(shape).formula()


def test_whole_blocks_are_allocated(load_config: Loader) -> None:
    spec = kv_cache_spec(read_model_config(load_config("llama-3.1-8b-instruct")))
    assert spec.bytes_for(1) == BLOCK_SIZE * 131_072
    assert spec.bytes_for(16) == spec.bytes_for(1)
    assert spec.bytes_for(17) == 2 * BLOCK_SIZE * 131_072
    assert spec.bytes_for(0) == 0


def test_sliding_window_layers_cap_their_tokens(load_config: Loader) -> None:
    shape = read_model_config(load_config("gemma-2-9b-it"))
    spec = kv_cache_spec(shape)
    per_layer = 2 * 8 * 256 * 2
    # Short sequence: sliding layers hold it all (+1 block, as vLLM's SlidingWindowSpec).
    assert spec.bytes_for(1024) == 21 * 1024 * per_layer + 21 * (1024 + 16) * per_layer
    # Long sequence: sliding layers keep window − 1 + 8192 batched tokens, rounded to blocks.
    held = (-(-(4096 - 1 + 8192) // 16) + 1) * 16
    assert spec.bytes_for(100_000) == 21 * 100_000 * per_layer + 21 * held * per_layer
    full_only = kv_cache_spec(read_model_config(load_config("llama-3.1-8b-instruct")))
    assert full_only.sliding_layers == 0


def test_kv_dtype_spellings() -> None:
    assert kv_dtype_bytes("auto") == 2
    assert kv_dtype_bytes("FP8") == 1
    assert kv_dtype_bytes("fp8_e5m2") == 1
    with pytest.raises(UsageError, match="KV-cache dtype"):
        kv_dtype_bytes("int3")


@given(
    budget=st.integers(min_value=0, max_value=64 * 2**30),
    cap=st.integers(min_value=1, max_value=200_000),
)
def test_max_tokens_is_the_largest_that_fits(budget: int, cap: int) -> None:
    spec = kv_cache_spec(read_model_config(read_config("gemma-2-9b-it")))
    best = spec.max_tokens(budget, cap)
    assert 0 <= best <= cap
    if best:
        assert spec.bytes_for(best) <= budget
    if best < cap:
        assert spec.bytes_for(best + 1) > budget
