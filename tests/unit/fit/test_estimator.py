"""Known-answer cases for the fit estimator, each worked by hand in the test."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from modelarium.core.errors import NotFoundError, UsageError
from modelarium.core.fit import (
    FRAMEWORK_OVERHEAD_BYTES,
    VLLM_DEFAULT_GPU_MEMORY_UTILIZATION,
    FitResult,
    estimate,
    get_gpu,
)

Loader = Callable[[str], dict[str, Any]]
GIB = 2**30
MIB = 2**20


def _flag(result: FitResult, name: str) -> str | None:
    flags = list(result.flags)
    if name not in flags:
        return None
    index = flags.index(name)
    return (
        flags[index + 1] if index + 1 < len(flags) and not flags[index + 1].startswith("--") else ""
    )


def _llama8b_on_l4_max_tokens() -> int:
    """Llama-3.1-8B bf16 on one L4, by hand (gpu-fit-formulas.md rules 5 and 6)."""
    budget = 23_034 * MIB * 0.9  # GFD memory label × default gpu_memory_utilization
    weights = 8_030_261_248 * 2  # bf16
    overhead = 2 * GIB  # CUDA graphs + NCCL + context
    activations = 8192 * (4 * 4096 + 2 * 14336) * 2 + 256 * 128_256 * 4
    kv_available = budget - weights - overhead - activations
    per_token = 2 * 32 * 8 * 128 * 2  # 128 KiB
    return int(kv_available // (16 * per_token)) * 16  # whole 16-token blocks


def test_defaults_follow_the_reference() -> None:
    assert VLLM_DEFAULT_GPU_MEMORY_UTILIZATION == 0.9
    assert FRAMEWORK_OVERHEAD_BYTES == 2 * GIB


def test_llama8b_on_one_l4_does_not_fit_128k(load_config: Loader) -> None:
    result = estimate(load_config("llama-3.1-8b-instruct"), "L4", context="128k")
    assert not result.fits
    assert result.tensor_parallel_size is None
    assert result.flags == ()
    assert result.command("meta-llama/Llama-3.1-8B-Instruct") == ""
    max_tokens = _llama8b_on_l4_max_tokens()
    assert 20_000 < max_tokens < 20_500
    assert result.memory is not None
    assert result.memory.max_len == max_tokens
    assert result.max_model_len == max_tokens // 1024 * 1024 == 19_456
    advice = " ".join(result.advice)
    assert "Reduce context to 19,456 tokens" in advice
    assert "`--max-model-len 19456`" in advice
    assert "--kv-cache-dtype fp8" in advice
    assert "Use 2 GPUs" in advice
    assert "AWQ" in advice


def test_llama8b_on_one_l4_fits_at_the_smaller_context(load_config: Loader) -> None:
    n = _llama8b_on_l4_max_tokens() // 1024 * 1024
    result = estimate(load_config("llama-3.1-8b-instruct"), "L4", context=n)
    assert result.fits
    assert result.tensor_parallel_size == 1
    assert _flag(result, "--max-model-len") == str(n)
    assert _flag(result, "--gpu-memory-utilization") == "0.9"
    assert "--tensor-parallel-size" not in result.flags
    assert not estimate(load_config("llama-3.1-8b-instruct"), "L4", context=n + 1024).fits
    assert result.command("meta-llama/Llama-3.1-8B-Instruct").startswith(
        "vllm serve meta-llama/Llama-3.1-8B-Instruct --max-model-len"
    )


def test_without_a_context_it_serves_what_fits(load_config: Loader) -> None:
    result = estimate(load_config("llama-3.1-8b-instruct"), "L4")
    assert result.fits  # runs, but not at the model's full 131,072 tokens
    assert result.recommended_max_model_len == 19_456
    assert result.model_max_len == 131_072
    assert "Serving with 19,456 tokens" in result.advice[0]
    assert "fits on 1× L4 with --max-model-len 19,456" in result.summary()


def test_arithmetic_is_shown(load_config: Loader) -> None:
    result = estimate(load_config("llama-3.1-8b-instruct"), "L4", context="8k")
    lines = "\n".join(result.arithmetic)
    assert "params = 8,030,261,248" in lines
    assert "weights = 8.03e9 params × 2 B (bf16) = 14.96 GiB" in lines
    assert "budget per GPU = 22.49 GiB (L4: 23,034 MiB) × 0.9 = 20.24 GiB" in lines
    assert (
        "KV per token per GPU = 2 × 32 layers × 8 KV heads × 128 head_dim × 2 B = 128.0 KiB"
        in lines
    )
    assert "KV for one 8,192-token sequence = 1.00 GiB" in lines
    assert "→ fits" in lines
    assert "cross-check (GPUStack" in lines


def test_70b_needs_tp4_on_a100_80gb_at_bf16(load_config: Loader) -> None:
    # 70.55e9 × 2 B = 131.4 GiB. Budget per A100-80GB: 81,920 MiB × 0.9 = 72 GiB.
    # TP 2: 65.7 GiB weights + 2 GiB + ~1 GiB activations leaves ~3.2 GiB: 128k needs 20 GiB.
    # TP 4: 32.9 GiB weights leaves ~36 GiB: 128k needs 80 × 2 × 128 × 2 × 2 B × 131,072 = 10 GiB.
    result = estimate(load_config("llama-3.1-70b-instruct"), "a100-80g", gpus=8)
    assert result.fits
    assert result.tensor_parallel_size == 4
    assert _flag(result, "--tensor-parallel-size") == "4"
    assert _flag(result, "--max-model-len") == "131072"
    assert result.memory is not None
    assert result.memory.kv.bytes_for(131_072) == 10 * GIB
    assert result.max_concurrency == pytest.approx(result.memory.kv_available / (10 * GIB))
    # With only 2 GPUs the full context does not fit; with 16k it does (TP 2).
    short = estimate(load_config("llama-3.1-70b-instruct"), "a100-80g", gpus=8, context="16k")
    assert short.tensor_parallel_size == 2
    two = estimate(load_config("llama-3.1-70b-instruct"), "a100-80g", gpus=2, context="128k")
    assert not two.fits
    assert any("Use 4 GPUs" in line for line in two.advice)


def test_weights_alone_do_not_fit(load_config: Loader) -> None:
    result = estimate(load_config("llama-3.1-70b-instruct"), "L4", gpus=1)
    assert not result.fits
    assert result.max_model_len == 0
    assert any("no room for any KV cache" in line for line in result.arithmetic)
    assert any("Even 4-bit weights" in line for line in result.advice)


def test_tp_must_divide_heads(load_config: Loader) -> None:
    # Qwen2.5-7B has 28 heads: TP 8 is never chosen, and the notes say why.
    result = estimate(load_config("qwen2.5-7b-instruct"), "T4", gpus=8, context="32k")
    assert result.fits
    assert result.tensor_parallel_size in (2, 4)
    assert any("TP 8: 28 attention heads are not divisible" in note for note in result.notes)


def test_quantize_advice_when_weights_do_not_fit(load_config: Loader) -> None:
    # Gemma-2-9B bf16 = 17.2 GiB on one 22.5 GiB L4: nothing left for an 8k KV cache.
    result = estimate(load_config("gemma-2-9b-it"), "L4", context="8k")
    assert not result.fits
    assert any("Quantize to FP8: `--quantization fp8`" in line for line in result.advice)
    fp8 = estimate(load_config("gemma-2-9b-it"), "L4", context="8k", quant="fp8")
    assert fp8.fits
    assert _flag(fp8, "--quantization") == "fp8"


def test_kv_cache_fp8_flag_and_capacity(load_config: Loader) -> None:
    auto = estimate(load_config("llama-3.1-8b-instruct"), "L4")
    fp8 = estimate(load_config("llama-3.1-8b-instruct"), "L4", kv_cache_dtype="fp8")
    assert _flag(fp8, "--kv-cache-dtype") == "fp8"
    assert fp8.memory is not None
    assert auto.memory is not None
    assert fp8.memory.max_len == pytest.approx(2 * auto.memory.max_len, abs=16)


def test_trust_remote_code_comes_from_the_vllm_registry(load_config: Loader) -> None:
    v3 = estimate(load_config("deepseek-v3"), "h200", gpus=8)
    assert v3.fits
    assert v3.tensor_parallel_size == 8
    assert "--trust-remote-code" in v3.flags
    assert _flag(v3, "--max-model-len") == "163840"
    assert v3.quantization.method == "fp8"
    # Phi-3 ships auto_map but vLLM serves Phi3ForCausalLM natively.
    phi = estimate(load_config("phi-3-mini-4k-instruct"), "L4")
    assert "--trust-remote-code" not in phi.flags
    custom = dict(
        load_config("llama-3.2-1b-instruct"),
        architectures=["MyCustomForCausalLM"],
        auto_map={"AutoModelForCausalLM": "modeling_x.MyCustomForCausalLM"},
    )
    result = estimate(custom, "L4")
    assert "--trust-remote-code" in result.flags
    assert any("not in vLLM's registry" in note for note in result.notes)


def test_deepseek_v3_does_not_fit_one_h100_node(load_config: Loader) -> None:
    result = estimate(load_config("deepseek-v3"), "8xH100")
    assert result.gpus_available == 8
    assert not result.fits
    assert any(
        "Use 16 GPUs" in line and "--pipeline-parallel-size" in line for line in result.advice
    )


def test_t4_runs_fp16(load_config: Loader) -> None:
    result = estimate(load_config("qwen2.5-7b-instruct"), "T4", gpus=2)
    assert result.fits
    assert _flag(result, "--dtype") == "half"
    assert any("no bf16" in note for note in result.notes)


def test_awq_checkpoint_flags_and_notes(load_config: Loader) -> None:
    awq = {
        "bits": 4,
        "group_size": 128,
        "quant_method": "awq",
        "version": "gemm",
        "zero_point": True,
    }
    config = dict(load_config("qwen2.5-7b-instruct"), quantization_config=awq)
    result = estimate(config, "L4")
    assert result.fits
    assert result.quantization.method == "awq"
    assert "--quantization" not in result.flags  # vLLM reads it from the checkpoint
    assert _flag(result, "--dtype") == "half"
    assert any("fp16 activations" in note for note in result.notes)
    assert result.weights.total < 6 * GIB


def test_asking_for_a_format_the_checkpoint_is_not_in(load_config: Loader) -> None:
    result = estimate(load_config("llama-3.1-70b-instruct"), "a100-80g", quant="awq")
    assert result.fits
    assert "--quantization" not in result.flags
    assert any("pre-quantized checkpoint" in note for note in result.notes)
    v3 = estimate(load_config("deepseek-v3"), "h200", gpus=8, quant="bf16")
    assert any("checkpoint is FP8" in note for note in v3.notes)
    assert not v3.fits  # 671B × 2 B does not fit 8 × 141 GB


def test_gguf_sizing(load_config: Loader) -> None:
    result = estimate(load_config("llama-3.1-8b-instruct"), "T4", quant="Q4_K_M", context="8k")
    assert result.fits
    assert round(result.weights.total / GIB, 2) == 4.58
    assert any("GGUF" in note for note in result.notes)


def test_context_beyond_the_model_maximum(load_config: Loader) -> None:
    result = estimate(load_config("qwen2.5-7b-instruct"), "h100", context="64k")
    assert not result.fits
    assert "at most 32,768 tokens" in result.advice[0]


def test_sliding_window_is_noted(load_config: Loader) -> None:
    result = estimate(load_config("mistral-7b-v0.1"), "L4")
    assert any("sliding window" in line for line in result.arithmetic)
    assert any("hybrid KV manager" in note for note in result.notes)


def test_moe_arithmetic_mentions_all_experts(load_config: Loader) -> None:
    result = estimate(load_config("mixtral-8x7b-v0.1"), "a100-80g", gpus=4)
    assert result.fits
    assert result.tensor_parallel_size == 2  # 87 GiB of bf16 weights
    assert any("all 8 experts stay in memory" in line for line in result.arithmetic)


def test_safetensors_input(load_config: Loader) -> None:
    meta = {"safetensors": {"parameters": {"BF16": 8_030_261_248}, "total": 8_030_261_248}}
    result = estimate(load_config("llama-3.1-8b-instruct"), "a100-80g", safetensors=meta)
    assert result.params.source == "safetensors metadata"
    assert any("safetensors" in line for line in result.arithmetic)


def test_gpu_memory_utilization(load_config: Loader) -> None:
    low = estimate(load_config("llama-3.1-8b-instruct"), "L4", gpu_memory_utilization=0.8)
    high = estimate(load_config("llama-3.1-8b-instruct"), "L4", gpu_memory_utilization=0.95)
    assert low.memory is not None
    assert high.memory is not None
    assert low.memory.max_len < high.memory.max_len
    assert _flag(high, "--gpu-memory-utilization") == "0.95"
    tight = estimate(
        load_config("gemma-2-9b-it"), get_gpu("L4"), context=1024, gpu_memory_utilization=0.85
    )
    assert not tight.fits
    assert any("--gpu-memory-utilization 0.95" in line for line in tight.advice)


def test_bad_arguments(load_config: Loader) -> None:
    config = load_config("llama-3.1-8b-instruct")
    with pytest.raises(UsageError, match="gpu_memory_utilization"):
        estimate(config, "L4", gpu_memory_utilization=1.5)
    with pytest.raises(UsageError, match="number of GPUs"):
        estimate(config, "L4", gpus=0)
    with pytest.raises(UsageError, match="KV-cache dtype"):
        estimate(config, "L4", kv_cache_dtype="int2")
    with pytest.raises(UsageError, match="context"):
        estimate(config, "L4", context="lots")
    with pytest.raises(NotFoundError):
        estimate(config, "voodoo-gpu")
