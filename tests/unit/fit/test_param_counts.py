"""Parameter counts from config.json alone against published figures (must be within 1%).

Every case names the published figure and where it comes from. "Exact" cases compare against
the checkpoint's ``model.safetensors.index.json`` ``total_size`` / 2 (bf16), which counts every
stored parameter; card figures are rounded, so their rounding is the real tolerance.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from modelarium.core.errors import ValidationError
from modelarium.core.fit import count_params, read_safetensors, resolve_params

Loader = Callable[[str], dict[str, Any]]

# (config file, published total, source of the published figure)
PUBLISHED_TOTALS = [
    # meta-llama/Llama-3.1-8B-Instruct: index total_size 16,060,522,496 B / 2 (bf16).
    ("llama-3.1-8b-instruct", 8_030_261_248, "HF index total_size / 2"),
    # meta-llama/Llama-3.1-70B-Instruct: index total_size 141,107,412,992 B / 2.
    ("llama-3.1-70b-instruct", 70_553_706_496, "HF index total_size / 2"),
    # meta-llama/Llama-2-7b-hf: total_size / 2 = 6,738,419,712 (includes 4,096 inv_freq buffers).
    ("llama-2-7b-hf", 6_738_419_712, "HF index total_size / 2"),
    # meta-llama/Llama-3.2-1B-Instruct model card: "1B (1.23B)" (tied embeddings, head_dim 64).
    ("llama-3.2-1b-instruct", 1_230_000_000, "model card 1.23B"),
    # mistralai/Mistral-7B-v0.1: total_size / 2 (the announcement rounds it to "7.3B").
    ("mistral-7b-v0.1", 7_241_732_096, "HF index total_size / 2"),
    # Qwen/Qwen2.5-7B-Instruct: total_size / 2; model card "7.61B" (QKV bias).
    ("qwen2.5-7b-instruct", 7_615_616_512, "HF index total_size / 2"),
    # Qwen/Qwen3-8B model card: "Number of Parameters: 8.2B" (q/k norm, head_dim 128).
    ("qwen3-8b", 8_200_000_000, "model card 8.2B"),
    # google/gemma-2-9b: Gemma 2 technical report 9,242,164,736 (it counts vocab 256,128).
    ("gemma-2-9b-it", 9_242_164_736, "Gemma 2 report"),
    # google/gemma-7b: HF model page "8.54B params" (tied, head_dim 256, MHA).
    ("gemma-7b", 8_540_000_000, "HF page 8.54B"),
    # google/gemma-3-1b-it: HF safetensors metadata total 999,885,952.
    ("gemma-3-1b-it", 999_885_952, "HF safetensors total"),
    # microsoft/Phi-3-mini-4k-instruct model card: "3.8B parameters" (HF page 3.82B).
    ("phi-3-mini-4k-instruct", 3_820_000_000, "HF page 3.82B"),
    # mistralai/Mixtral-8x7B-v0.1: Mistral AI "Mixtral of experts" post, 46.7B total.
    ("mixtral-8x7b-v0.1", 46_700_000_000, "Mistral AI blog 46.7B"),
    # Qwen/Qwen3-30B-A3B model card: "30.5B in total and 3.3B activated".
    ("qwen3-30b-a3b", 30_500_000_000, "model card 30.5B"),
    # Qwen/Qwen1.5-MoE-A2.7B model card: 14.3B total, 2.7B activated.
    ("qwen1.5-moe-a2.7b-chat", 14_300_000_000, "model card 14.3B"),
    # deepseek-ai/DeepSeek-V3 README: 671B main model (the MTP module adds more; not loaded).
    ("deepseek-v3", 671_000_000_000, "DeepSeek-V3 README 671B"),
    # deepseek-ai/DeepSeek-V2-Lite-Chat: HF page "15.7B params" (README rounds to 16B).
    ("deepseek-v2-lite-chat", 15_700_000_000, "HF page 15.7B"),
]


@pytest.mark.parametrize(("name", "published", "source"), PUBLISHED_TOTALS)
def test_total_within_one_percent_of_published(
    load_config: Loader, name: str, published: int, source: str
) -> None:
    total = count_params(load_config(name)).total
    error = abs(total - published) / published
    assert error < 0.01, f"{name}: {total:,} vs {published:,} ({source}) = {error:.2%}"


def test_exact_matches_where_the_checkpoint_size_is_known(load_config: Loader) -> None:
    # Derived in gpu-fit-formulas.md §1.1 and equal to the file's total_size / 2.
    assert count_params(load_config("llama-3.1-8b-instruct")).total == 8_030_261_248
    assert count_params(load_config("mistral-7b-v0.1")).total == 7_241_732_096
    assert count_params(load_config("qwen2.5-7b-instruct")).total == 7_615_616_512
    # Llama-2's file holds 4,096 extra rotary inv_freq buffer elements, which are not params.
    assert count_params(load_config("llama-2-7b-hf")).total == 6_738_415_616


def test_mixtral_active_params(load_config: Loader) -> None:
    # Mistral AI blog: "12.9B active parameters per token" (2 of 8 experts).
    params = count_params(load_config("mixtral-8x7b-v0.1"))
    assert params.active == 12_879_925_248
    assert abs(params.active - 12.9e9) / 12.9e9 < 0.01


def test_qwen3_moe_active_uses_moe_intermediate_size(load_config: Loader) -> None:
    # Model card: 3.3B activated (truncated); intermediate_size 6144 is used by no layer.
    params = count_params(load_config("qwen3-30b-a3b"))
    assert params.active == 3_353_032_704
    assert int(params.active / 1e8) / 10 == 3.3


def test_qwen2_moe_shared_expert_and_gate(load_config: Loader) -> None:
    # Model card: 14.3B total, 2.7B activated (shared expert 5632 wide + its sigmoid gate).
    params = count_params(load_config("qwen1.5-moe-a2.7b-chat"))
    assert params.total == 14_315_784_192
    assert abs(params.active - 2.7e9) / 2.7e9 < 0.01
    names = {g.name for g in params.groups}
    assert "shared_expert_gate" in names
    assert "shared_experts.down_proj" in names


def test_deepseek_v3_mla_moe(load_config: Loader) -> None:
    params = count_params(load_config("deepseek-v3"))
    assert params.total == 671_026_419_200  # gpu-fit-formulas.md §1.3, derived
    # README_WEIGHTS: 36.7B activated; DeepSeek leaves the input embedding out of "activated".
    active = params.active - params.embeddings
    assert abs(active - 36.7e9) / 36.7e9 < 0.01
    # MTP layer: ~11.5B unique params in README_WEIGHTS; reported but not loaded by vLLM.
    assert abs(params.mtp_params - 11.5e9) / 11.5e9 < 0.02
    assert any("MTP" in note for note in params.notes)
    # First 3 layers are dense (first_k_dense_replace), 58 are MoE with a noaux_tc bias.
    names = {g.name for g in params.groups}
    assert {"mlp.gate_proj", "router.e_score_correction_bias", "kv_a_proj_with_mqa"} <= names
    assert "q_a_proj" in names  # q_lora_rank 1536


def test_deepseek_v2_lite_without_q_lora(load_config: Loader) -> None:
    params = count_params(load_config("deepseek-v2-lite-chat"))
    assert params.total == 15_706_484_224  # §1.3 derived
    names = {g.name for g in params.groups}
    assert "q_proj" in names
    assert "q_a_proj" not in names
    # README: "2.4B activated" (truncated), again without the input embedding.
    assert int((params.active - params.embeddings) / 1e8) / 10 == 2.4


def test_breakdown_parts_add_up(load_config: Loader) -> None:
    p = count_params(load_config("llama-3.1-8b-instruct"))
    h, v = 4096, 128_256
    assert p.embeddings == v * h
    assert p.lm_head == v * h
    assert p.attention == 32 * (4096 * 4096 * 2 + 2 * 4096 * 1024)
    assert p.mlp == 32 * 3 * 4096 * 14336
    assert p.norms == 32 * 2 * h + h
    assert p.experts == 0
    assert p.embeddings + p.attention + p.mlp + p.norms + p.lm_head == p.total
    assert p.active == p.total
    assert not p.is_moe


def test_tied_embeddings_counted_once(load_config: Loader) -> None:
    tied = count_params(load_config("llama-3.2-1b-instruct"))
    assert tied.lm_head == 0
    assert tied.total == 1_235_814_400  # §1.1 derived
    assert any("tied" in note for note in tied.notes)
    untied = dict(load_config("llama-3.2-1b-instruct"), tie_word_embeddings=False)
    assert count_params(untied).total == tied.total + 128_256 * 2048


def test_gemma_defaults_to_tied_and_gemma2_has_four_norms(load_config: Loader) -> None:
    gemma = count_params(load_config("gemma-7b"))  # config.json has no tie_word_embeddings
    assert gemma.lm_head == 0
    gemma2 = count_params(load_config("gemma-2-9b-it"))
    assert gemma2.norms == 42 * 4 * 3584 + 3584


def test_qkv_bias_and_qk_norm_are_counted(load_config: Loader) -> None:
    qwen = count_params(load_config("qwen2.5-7b-instruct"))
    bias = next(g for g in qwen.groups if g.name == "qkv_bias")
    assert bias.params == 28 * (28 + 2 * 4) * 128
    qwen3 = count_params(load_config("qwen3-8b"))
    norm = next(g for g in qwen3.groups if g.name == "q_norm+k_norm")
    assert norm.params == 36 * 2 * 128


def test_phi3_fused_projections_count_like_separate_ones(load_config: Loader) -> None:
    # qkv_proj (3072 → 9216) and gate_up_proj (3072 → 16384) hold the same numbers.
    assert count_params(load_config("phi-3-mini-4k-instruct")).total == 3_821_079_552


def test_text_config_of_a_multimodal_wrapper(load_config: Loader) -> None:
    text = load_config("llama-3.1-8b-instruct")
    wrapper = {
        "architectures": ["LlavaForConditionalGeneration"],
        "model_type": "llava",
        "text_config": text,
        "vision_config": {
            "hidden_size": 1024,
            "intermediate_size": 4096,
            "num_hidden_layers": 24,
            "patch_size": 14,
        },
    }
    params = count_params(wrapper)
    assert params.total - params.vision == 8_030_261_248
    # ViT-L/14: ~0.3B; the estimate is approximate and says so.
    assert 0.28e9 < params.vision < 0.35e9
    assert any("vision" in note for note in params.notes)


def test_missing_fields_raise_validation_error() -> None:
    with pytest.raises(ValidationError, match="hidden_size"):
        count_params({"num_hidden_layers": 2, "num_attention_heads": 2, "vocab_size": 10})
    with pytest.raises(ValidationError, match="vocab_size"):
        count_params({"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2})
    with pytest.raises(ValidationError, match="not a non-negative number"):
        count_params(
            {
                "hidden_size": "big",
                "num_hidden_layers": 2,
                "num_attention_heads": 2,
                "vocab_size": 1,
            }
        )
    with pytest.raises(ValidationError, match="JSON object"):
        count_params(["not", "a", "dict"])  # type: ignore[arg-type]


def test_safetensors_metadata_is_preferred_and_says_so(load_config: Loader) -> None:
    meta = {"parameters": {"BF16": 8_030_261_248}, "total": 8_030_261_248}
    params = resolve_params(load_config("llama-3.1-8b-instruct"), meta)
    assert params.source == "safetensors metadata"
    assert params.total == 8_030_261_248
    assert any("safetensors" in note for note in params.notes)
    # A different (e.g. extended-vocab) checkpoint: the stored count wins over the config.
    bigger = resolve_params(
        load_config("llama-3.1-8b-instruct"),
        {"safetensors": {"parameters": {"BF16": 8_100_000_000}, "total": 8_100_000_000}},
    )
    assert bigger.total == 8_100_000_000


def test_packed_awq_safetensors_do_not_replace_the_config_count(load_config: Loader) -> None:
    # HF shows "1.96B params" for a Qwen2.5-7B AWQ repo: packed int32 elements, not weights.
    meta = {"parameters": {"I32": 900_000_000, "F16": 1_060_000_000}, "total": 1_960_000_000}
    params = resolve_params(load_config("qwen2.5-7b-instruct"), meta)
    assert params.total == 7_615_616_512
    assert params.source == "config.json"
    assert any("packed" in note for note in params.notes)


def test_safetensors_total_with_mtp_layers_is_reduced(load_config: Loader) -> None:
    # HF lists DeepSeek-V3 as 685B: 671B main + the MTP module (with its own embed/head copies).
    meta = {"parameters": {"BF16": 3_900_000_000, "F8_E4M3": 680_600_000_000, "F32": 40_000_000}}
    params = resolve_params(load_config("deepseek-v3"), meta)
    assert params.total < 685_000_000_000
    assert abs(params.total - 673e9) / 673e9 < 0.01
    assert any("MTP" in note for note in params.notes)


def test_bad_safetensors_metadata() -> None:
    with pytest.raises(ValidationError, match="parameters"):
        read_safetensors({"total": 5})
    with pytest.raises(ValidationError, match="not a count"):
        read_safetensors({"parameters": {"BF16": -1}})
    info = read_safetensors({"parameters": {"BF16": 10, "F32": 5}})
    assert info.total == 15
    assert info.file_bytes == 10 * 2 + 5 * 4
