"""Storage formats: detection from config.json, operator spellings, and weight bytes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from modelarium.core.errors import UsageError
from modelarium.core.fit import (
    GGUF_BITS_PER_WEIGHT,
    checkpoint_weight_bytes,
    count_params,
    detect_quantization,
    parse_quant,
    read_safetensors,
    weight_bytes,
)

Loader = Callable[[str], dict[str, Any]]
GIB = 2**30

AWQ = {"bits": 4, "group_size": 128, "quant_method": "awq", "version": "gemm", "zero_point": True}
GPTQ = {"bits": 4, "group_size": 128, "desc_act": False, "quant_method": "gptq", "sym": True}


def test_detects_common_quantization_configs(load_config: Loader) -> None:
    assert detect_quantization({"quantization_config": AWQ}).label == "AWQ 4-bit g128"
    gptq = detect_quantization({"quantization_config": GPTQ})
    assert (gptq.method, gptq.bits, gptq.group_size, gptq.g_idx) == ("gptq", 4, 128, True)
    per_channel = detect_quantization({"quantization_config": {**GPTQ, "group_size": -1}})
    assert per_channel.group_size is None
    assert "per-channel" in per_channel.label
    # Trap 5: torch_dtype says bfloat16, the weights are FP8 with 128×128 block scales.
    v3 = detect_quantization(load_config("deepseek-v3"))
    assert (v3.method, v3.fp8_block) == ("fp8", 128)
    bnb = detect_quantization(
        {
            "quantization_config": {
                "quant_method": "bitsandbytes",
                "load_in_4bit": True,
                "bnb_4bit_use_double_quant": True,
            }
        }
    )
    assert (bnb.method, bnb.bits, bnb.double_quant) == ("bitsandbytes", 4, True)
    assert (
        detect_quantization(
            {"quantization_config": {"quant_method": "bitsandbytes", "load_in_8bit": True}}
        ).bits
        == 8
    )


def test_compressed_tensors() -> None:
    w4 = {
        "quant_method": "compressed-tensors",
        "format": "pack-quantized",
        "config_groups": {
            "group_0": {
                "weights": {"num_bits": 4, "group_size": 128, "type": "int", "symmetric": True}
            }
        },
    }
    q = detect_quantization({"quantization_config": w4})
    assert (q.method, q.bits, q.group_size, q.zero_point) == ("compressed-tensors", 4, 128, False)
    fp8 = {
        "quant_method": "compressed-tensors",
        "config_groups": {"g": {"weights": {"num_bits": 8, "type": "float"}}},
    }
    assert detect_quantization({"quantization_config": fp8}).label == "compressed-tensors FP8"
    nvfp4 = {
        "quant_method": "compressed-tensors",
        "config_groups": {"g": {"weights": {"num_bits": 4, "type": "float", "group_size": 16}}},
    }
    assert detect_quantization({"compression_config": nvfp4}).method == "nvfp4"


def test_unquantized_dtypes() -> None:
    assert detect_quantization({}).label == "bf16"
    assert detect_quantization({}, "float16").label == "fp16"
    fp32 = detect_quantization({}, "float32")
    assert fp32.bits == 16  # vLLM --dtype auto downcasts fp32 checkpoints
    assert "fp32" in fp32.label


@pytest.mark.parametrize(
    ("text", "method", "bits", "flag"),
    [
        ("bf16", "none", 16, None),
        ("FP16", "none", 16, None),
        ("fp32", "none", 32, None),
        ("fp8", "fp8", 8, "fp8"),
        ("awq", "awq", 4, None),
        ("AWQ-4bit", "awq", 4, None),
        ("gptq", "gptq", 4, None),
        ("gptq-8bit", "gptq", 8, None),
        ("gptq-int8", "gptq", 8, None),
        ("int4", "awq", 4, None),
        ("int8", "int8", 8, None),
        ("bnb", "bitsandbytes", 4, "bitsandbytes"),
        ("nvfp4", "nvfp4", 4, None),
        ("Q4_K_M", "gguf", GGUF_BITS_PER_WEIGHT["Q4_K_M"], None),
        ("gguf:q8_0", "gguf", GGUF_BITS_PER_WEIGHT["Q8_0"], None),
        ("q4_k", "gguf", GGUF_BITS_PER_WEIGHT["Q4_K_M"], None),
    ],
)
def test_parse_quant(text: str, method: str, bits: float, flag: str | None) -> None:
    q = parse_quant(text)
    assert (q.method, q.bits, q.vllm_flag) == (method, bits, flag)


def test_parse_quant_group_size_and_errors() -> None:
    assert parse_quant("awq-g64").group_size == 64
    assert parse_quant("gptq-4bit-g32").group_size == 32
    with pytest.raises(UsageError, match="unknown quantization"):
        parse_quant("q9_z")
    with pytest.raises(UsageError, match="bit width"):
        parse_quant("awq-5bit")


def test_gguf_bits_follow_llama_cpp() -> None:
    # ggml block sizes: Q4_0 stores 32 weights in 18 bytes (4.5 bpw) before output/embedding mix;
    # whole Llama-3-8B files per llama-quantize --help: Q4_K_M 4.58G, Q8_0 7.96G.
    assert GGUF_BITS_PER_WEIGHT["IQ4_XS"] == 4.25
    assert 4.5 < GGUF_BITS_PER_WEIGHT["Q4_0"] < 4.7
    assert 4.85 < GGUF_BITS_PER_WEIGHT["Q4_K_M"] < 4.95
    assert 8.5 <= GGUF_BITS_PER_WEIGHT["Q8_0"] < 8.55
    ordered = [GGUF_BITS_PER_WEIGHT[k] for k in ("Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K")]
    assert ordered == sorted(ordered)


def test_bf16_weights_are_two_bytes_per_param(load_config: Loader) -> None:
    params = count_params(load_config("llama-3.1-8b-instruct"))
    w = weight_bytes(params, parse_quant("bf16"))
    assert w.total == 8_030_261_248 * 2
    assert round(w.total / GIB, 2) == 14.96
    assert weight_bytes(params, parse_quant("fp32")).total == 8_030_261_248 * 4


def test_awq_llama2_7b_matches_the_published_file(load_config: Loader) -> None:
    # TheBloke/Llama-2-7B-Chat-AWQ: the HF file page shows 3.89 GB (gpu-fit-formulas.md §2).
    config = dict(load_config("llama-2-7b-hf"), quantization_config=AWQ)
    params = count_params(config)
    w = weight_bytes(params, detect_quantization(config))
    assert abs(w.total - 3.89e9) / 3.89e9 < 0.01
    # Linear weights cost 0.5 + 2.5/128 B; embeddings and head stay fp16.
    linear = sum(g.params for g in params.groups if g.kind == "linear")
    assert linear == 6_476_005_376
    assert w.total == pytest.approx(
        linear * (0.5 + 2.5 / 128) + (params.total - linear) * 2, rel=1e-9
    )


def test_gptq_adds_g_idx_and_zeros(load_config: Loader) -> None:
    params = count_params(load_config("llama-2-7b-hf"))
    awq = weight_bytes(params, parse_quant("awq")).total
    gptq = weight_bytes(params, parse_quant("gptq")).total
    # g_idx: one int32 per input row of every Linear (32 layers × 7 matrices).
    inputs = 32 * (4 * 4096 + 2 * 4096 + 11008)
    assert gptq - awq == pytest.approx(inputs * 4, rel=1e-9)
    eight = weight_bytes(params, parse_quant("gptq-8bit")).total
    assert 1.7 < eight / gptq < 1.9


def test_fp8_block_checkpoint_is_about_one_byte_per_param(load_config: Loader) -> None:
    config = load_config("deepseek-v3")
    params = count_params(config)
    w = weight_bytes(params, detect_quantization(config))
    assert 1.0 < w.total / params.total < 1.01
    # Router, norms, MLA down-projections are replicated on every TP rank.
    assert 0 < w.replicated < 0.01 * w.total
    assert w.per_gpu(8) == pytest.approx((w.total - w.replicated) / 8 + w.replicated)


def test_gguf_q4_k_m_of_llama3_8b_is_llama_cpp_reference_size(load_config: Loader) -> None:
    params = count_params(load_config("llama-3.1-8b-instruct"))
    w = weight_bytes(params, parse_quant("Q4_K_M"))
    assert round(w.total / GIB, 2) == 4.58  # llama-quantize: "Q4_K_M : 4.58G @ Llama-3-8B"


def test_online_fp8_and_nf4_sizes(load_config: Loader) -> None:
    params = count_params(load_config("llama-3.1-8b-instruct"))
    fp8 = weight_bytes(params, parse_quant("fp8")).total
    # Linear layers 1 B (+ per-channel scales), embeddings and LM head stay bf16.
    non_linear = params.embeddings + params.lm_head + params.norms
    assert fp8 == pytest.approx((params.total - non_linear) * 1.0 + non_linear * 2, rel=0.001)
    nf4 = weight_bytes(params, parse_quant("bnb")).total
    assert nf4 < fp8


def test_checkpoint_bytes_prefer_safetensors_sizes(load_config: Loader) -> None:
    config = dict(load_config("llama-2-7b-hf"), quantization_config=AWQ)
    params = count_params(config)
    info = read_safetensors({"parameters": {"I32": 850_000_000, "F16": 245_000_000}})
    w = checkpoint_weight_bytes(info, params, detect_quantization(config))
    assert w.total == 850_000_000 * 4 + 245_000_000 * 2
    assert w.source == "safetensors metadata"


def test_other_quantization_methods() -> None:
    modelopt = {"quant_method": "modelopt", "quant_algo": "FP8"}
    assert detect_quantization({"quantization_config": modelopt}).method == "fp8"
    nested = {"quant_method": "modelopt", "quantization": {"quant_algo": "NVFP4"}}
    assert detect_quantization({"quantization_config": nested}).method == "nvfp4"
    assert detect_quantization({"quantization_config": {"quant_method": "mxfp4"}}).bits == 4
    hqq = detect_quantization(
        {"quantization_config": {"quant_method": "hqq", "bits": 4, "group_size": 64}}
    )
    assert (hqq.method, hqq.bits, hqq.group_size) == ("gptq", 4, 64)
    assert "hqq" in hqq.label
    mystery = detect_quantization({"quantization_config": {"quant_method": "mystery"}})
    assert not mystery.is_quantized


def test_mxfp4_quantizes_only_routed_experts(load_config: Loader) -> None:
    # gpt-oss style: experts in MXFP4 (4 bits + one e8m0 scale per 32), the rest bf16.
    params = count_params(load_config("mixtral-8x7b-v0.1"))
    w = weight_bytes(
        params, detect_quantization({"quantization_config": {"quant_method": "mxfp4"}})
    )
    routed = sum(g.params for g in params.groups if g.active_count is not None)
    assert w.total == pytest.approx(routed * (0.5 + 1 / 32) + (params.total - routed) * 2)
