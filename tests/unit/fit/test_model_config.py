"""config.json normalisation: head_dim, KV heads, max model length rules, attention patterns."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from modelarium.core.errors import ValidationError
from modelarium.core.fit import derive_max_model_len, read_model_config, text_config

Loader = Callable[[str], dict[str, Any]]


def test_head_dim_is_read_not_derived_when_given(load_config: Loader) -> None:
    # Trap 1: Qwen3 head_dim 128 while hidden/heads = 4096/32 = 128; Gemma2 256 vs 3584/16 = 224.
    assert read_model_config(load_config("gemma-2-9b-it")).head_dim == 256
    assert read_model_config(load_config("llama-3.2-1b-instruct")).head_dim == 64
    # Missing head_dim → hidden / heads.
    assert read_model_config(load_config("mistral-7b-v0.1")).head_dim == 128


def test_kv_heads_default_to_attention_heads(load_config: Loader) -> None:
    config = dict(load_config("llama-2-7b-hf"))
    del config["num_key_value_heads"]
    assert read_model_config(config).num_kv_heads == 32


@pytest.mark.parametrize(
    ("name", "length"),
    [
        ("llama-3.1-8b-instruct", 131_072),  # llama3 RoPE: already in max_position_embeddings
        ("deepseek-v3", 163_840),  # yarn: original 4096 × factor 40
        ("qwen2.5-7b-instruct", 32_768),
        ("gemma-2-9b-it", 8_192),
        ("phi-3-mini-4k-instruct", 4_096),
        ("gemma-3-1b-it", 32_768),
    ],
)
def test_derived_max_model_len(load_config: Loader, name: str, length: int) -> None:
    assert read_model_config(load_config(name)).max_model_len == length


def test_linear_rope_factor_multiplies_but_gemma3_does_not() -> None:
    linear = {"max_position_embeddings": 4096, "rope_scaling": {"type": "linear", "factor": 4.0}}
    assert derive_max_model_len(linear, "llama")[0] == 16_384
    longrope = {
        "max_position_embeddings": 131072,
        "rope_scaling": {"type": "longrope", "factor": 32},
    }
    assert derive_max_model_len(longrope, "phi3")[0] == 131_072
    gemma3 = {
        "max_position_embeddings": 131072,
        "rope_scaling": {"rope_type": "linear", "factor": 8},
    }
    assert derive_max_model_len(gemma3, "gemma3_text")[0] == 131_072
    # transformers v5 spells it rope_parameters.
    v5 = {
        "max_position_embeddings": 16384,
        "rope_parameters": {
            "rope_type": "yarn",
            "factor": 16.0,
            "original_max_position_embeddings": 16384,
        },
    }
    assert derive_max_model_len(v5, "ministral3")[0] == 262_144


def test_smallest_length_key_wins_and_default() -> None:
    assert (
        derive_max_model_len({"max_position_embeddings": 8192, "seq_length": 4096}, "x")[0] == 4096
    )
    length, reason = derive_max_model_len({}, "x")
    assert length == 2048
    assert "falls back" in reason


def test_layer_kinds(load_config: Loader) -> None:
    gemma2 = read_model_config(load_config("gemma-2-9b-it"))
    assert gemma2.layer_kinds[:4] == ("sliding", "full", "sliding", "full")
    assert gemma2.sliding_layers == 21
    gemma3 = read_model_config(load_config("gemma-3-1b-it"))
    assert gemma3.sliding_layers == 22  # 5 local : 1 global over 26 layers → 4 global
    qwen = read_model_config(load_config("qwen2.5-7b-instruct"))  # use_sliding_window: false
    assert qwen.sliding_layers == 0
    mistral = read_model_config(load_config("mistral-7b-v0.1"))
    assert mistral.sliding_layers == 32
    assert mistral.sliding_window == 4096
    llama = read_model_config(load_config("llama-3.1-8b-instruct"))
    assert set(llama.layer_kinds) == {"full"}


def test_layer_types_list_is_authoritative() -> None:
    config = {
        "hidden_size": 64,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "vocab_size": 100,
        "sliding_window": 128,
        "layer_types": [
            "sliding_attention",
            "full_attention",
            "linear_attention",
            "full_attention",
        ],
    }
    shape = read_model_config(config)
    assert shape.layer_kinds == ("sliding", "full", "none", "full")
    assert shape.attention_layers == 3


def test_moe_layers(load_config: Loader) -> None:
    v3 = read_model_config(load_config("deepseek-v3"))
    assert v3.num_experts == 256
    assert v3.moe_layers[0] == 3  # first_k_dense_replace
    assert v3.dense_layers == 3
    assert v3.shared_experts == 1
    assert v3.shared_expert_intermediate_size == 2048
    assert v3.is_mla
    qwen3 = read_model_config(load_config("qwen3-30b-a3b"))
    assert qwen3.dense_layers == 0
    assert qwen3.moe_intermediate_size == 768
    mixtral = read_model_config(load_config("mixtral-8x7b-v0.1"))
    assert mixtral.moe_intermediate_size == 14336  # Mixtral experts use intermediate_size


def test_text_config_keeps_checkpoint_level_keys() -> None:
    wrapper = {
        "architectures": ["Mistral3ForConditionalGeneration"],
        "quantization_config": {"quant_method": "fp8"},
        "text_config": {"hidden_size": 64, "num_hidden_layers": 2},
    }
    merged = text_config(wrapper)
    assert merged["hidden_size"] == 64
    assert merged["quantization_config"] == {"quant_method": "fp8"}
    assert merged["architectures"] == ["Mistral3ForConditionalGeneration"]
    plain = {"hidden_size": 1}
    assert text_config(plain) == plain


def test_zero_sizes_are_rejected() -> None:
    with pytest.raises(ValidationError, match="zero"):
        read_model_config(
            {"hidden_size": 0, "num_hidden_layers": 2, "num_attention_heads": 2, "vocab_size": 10}
        )
