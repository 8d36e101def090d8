"""The human side of an estimate: arithmetic lines, ``vllm serve`` flags, and caveats.

Operators decide on GPUs from these lines, so each states its inputs and result in units they
can check against nvidia-smi and vLLM's startup log.
"""

from __future__ import annotations

from modelarium.core.fit.gpus import GpuProfile
from modelarium.core.fit.model_config import ModelShape
from modelarium.core.fit.params import ParamBreakdown
from modelarium.core.fit.parsing import format_gib, format_params
from modelarium.core.fit.plan import (
    DEFAULT_MAX_NUM_BATCHED_TOKENS,
    FRAMEWORK_OVERHEAD_BYTES,
    MemoryPlan,
    activation_bytes,
    round_len,
)
from modelarium.core.fit.quantization import Quantization
from modelarium.core.fit.weights import WeightBytes


def _describe_params(params: ParamBreakdown, shape: ModelShape) -> list[str]:
    parts = [
        f"{name} {format_params(value)}"
        for name, value in (
            ("embeddings", params.embeddings),
            ("attention", params.attention),
            ("mlp", params.mlp),
            ("experts", params.experts),
            ("norms", params.norms),
            ("lm_head", params.lm_head),
            ("vision≈", params.vision),
        )
        if value
    ]
    lines = [f"params = {params.total:,} ({params.source}: {', '.join(parts)})"]
    if params.is_moe:
        lines.append(
            f"MoE: all {shape.num_experts} experts stay in memory; active per token = "
            f"{format_params(params.active)} of {format_params(params.total)} "
            f"({shape.experts_per_token} of {shape.num_experts} experts)"
        )
    return lines


def _sci(value: float) -> str:
    """``8030261248 -> '8.03e9'``: short enough to read, exact enough to check."""
    mantissa, exponent = f"{value:.2e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def _weights_line(params: ParamBreakdown, weights: WeightBytes) -> str:
    q = weights.quantization
    if weights.source == "safetensors metadata" and q.is_quantized:
        return (
            f"weights = {format_gib(weights.total)} (stored {q.label} tensors, safetensors sizes)"
        )
    if not q.is_quantized or q.whole_model:
        per = f"{q.bits / 8:g} B"
        total = format_gib(weights.total)
        return f"weights = {_sci(params.total)} params × {per} ({q.label}) = {total}"
    return (
        f"weights = {_sci(params.total)} params: {q.label} Linear weights (with scales/zeros) + "
        f"16-bit embeddings/norms/routers = {format_gib(weights.total)} "
        f"({weights.total / params.total:.3f} B/param)"
    )


def arithmetic_lines(
    shape: ModelShape,
    params: ParamBreakdown,
    weights: WeightBytes,
    gpu: GpuProfile,
    gmu: float,
    plan: MemoryPlan,
    target: int,
    fits: bool,
    served: int,
) -> list[str]:
    lines = [*_describe_params(params, shape), _weights_line(params, weights)]
    if plan.tp > 1:
        sharded = weights.total - weights.replicated
        replicated = (
            f" + {format_gib(weights.replicated)} replicated on each GPU"
            if weights.replicated >= 0.005 * 2**30
            else ""
        )
        lines.append(
            f"weights per GPU = {format_gib(sharded)} / TP {plan.tp}{replicated}"
            + (f", / PP {plan.pp} stages" if plan.pp > 1 else "")
            + f" = {format_gib(plan.weights)}"
        )
    elif plan.pp > 1:
        lines.append(
            f"weights per GPU ≈ {format_gib(weights.total)} / PP {plan.pp} stages (layers split "
            f"between them) = {format_gib(plan.weights)}"
        )
    if plan.pp > 1:
        nodes = plan.nodes(gpu.count)
        lines.append(
            f"{gpu.count} {gpu.name} per node: tensor parallel {plan.tp} inside a node × "
            f"pipeline parallel {plan.pp} = {plan.gpus} GPUs on {nodes} node(s)"
        )
    lines.append(
        f"budget per GPU = {format_gib(gpu.memory_bytes)} ({gpu.name}: "
        f"{gpu.memory_mib:,.0f} MiB) × {gmu:g} = {format_gib(plan.budget)}"
    )
    lines.append(
        f"overhead per GPU = {format_gib(plan.overhead)} (CUDA graphs, NCCL, CUDA context; "
        "rule of thumb)"
    )
    _, act_text = activation_bytes(shape, plan.tp, DEFAULT_MAX_NUM_BATCHED_TOKENS)
    lines.append(f"activations per GPU ≈ {act_text} = {format_gib(plan.activations)}")
    lines.append(
        f"KV available per GPU = {format_gib(plan.budget)} − {format_gib(plan.weights)} − "
        f"{format_gib(plan.overhead)} − {format_gib(plan.activations)} = "
        f"{format_gib(plan.kv_available)}"
    )
    tp_note = ""
    if not shape.is_mla and plan.tp > 1:
        tp_note = f" ({shape.num_kv_heads} KV heads / TP {plan.tp}, at least 1)"
    elif shape.is_mla and plan.tp > 1:
        tp_note = " (MLA latent is replicated on every GPU)"
    if plan.pp > 1:
        tp_note += f" (this stage's layers: 1/{plan.pp} of them)"
    lines.append(f"KV per token per GPU = {plan.kv.formula()}{tp_note}")
    if plan.kv.sliding_layers:
        lines.append(
            f"{plan.kv.sliding_layers} of {plan.kv.full_layers + plan.kv.sliding_layers} layers "
            f"use a {plan.kv.sliding_window}-token sliding window: they keep at most "
            f"{plan.kv.sliding_window} − 1 + {plan.kv.max_num_batched_tokens} batched tokens "
            "(+1 block)"
        )
    need = plan.kv.bytes_for(target)
    verdict = "fits" if plan.fits(target) and target <= shape.max_model_len else "does not fit"
    lines.append(
        f"KV for one {target:,}-token sequence = {format_gib(need)} vs "
        f"{format_gib(max(plan.kv_available, 0))} available → {verdict}"
    )
    if plan.kv_available <= 0:
        lines.append("weights + overhead + activations exceed the budget: no room for any KV cache")
    elif plan.max_len < shape.max_model_len:
        lines.append(
            f"largest context that fits = {plan.max_len:,} tokens → --max-model-len "
            f"{round_len(plan.max_len, shape.max_model_len):,} (rounded down)"
        )
    if fits and served:
        concurrency = plan.kv_available / plan.kv.bytes_for(served)
        lines.append(
            f"concurrent {served:,}-token sequences ≈ {format_gib(plan.kv_available)} / "
            f"{format_gib(plan.kv.bytes_for(served))} = {concurrency:.1f}"
        )
    claim = 1.2 * plan.weights + FRAMEWORK_OVERHEAD_BYTES
    lines.append(
        f"cross-check (GPUStack, conservative): 1.2 × {format_gib(plan.weights)} + 2 GiB = "
        f"{format_gib(claim)} per GPU vs budget {format_gib(plan.budget)}"
    )
    return lines


def serve_flags(
    plan: MemoryPlan,
    served: int,
    quant: Quantization,
    checkpoint: Quantization,
    kv_dtype: str,
    gmu: float,
    gpu: GpuProfile,
    remote_code: bool,
) -> tuple[str, ...]:
    flags: list[str] = []
    if plan.tp > 1:
        flags += ["--tensor-parallel-size", str(plan.tp)]
    if plan.pp > 1:
        flags += ["--pipeline-parallel-size", str(plan.pp)]
    flags += ["--max-model-len", str(served)]
    flags += ["--gpu-memory-utilization", f"{gmu:g}"]
    if kv_dtype.lower() != "auto":
        flags += ["--kv-cache-dtype", kv_dtype.lower()]
    if quant is not checkpoint and quant.vllm_flag:
        flags += ["--quantization", quant.vllm_flag]
    if not gpu.supports_bf16 or quant.needs_fp16_activations:
        flags += ["--dtype", "half"]
    if remote_code:
        flags.append("--trust-remote-code")
    return tuple(flags)


def caveats(
    shape: ModelShape,
    params: ParamBreakdown,
    quant: Quantization,
    gpu: GpuProfile,
    remote_note: str,
    extra: list[str],
) -> list[str]:
    notes = [*params.notes, *extra]
    if "float32" in shape.torch_dtype and not quant.whole_model:
        notes.append("fp32 checkpoint: vLLM --dtype auto loads it as bf16/fp16 (2 B per param)")
    if quant.needs_fp16_activations:
        notes.append(
            f"{quant.label} runs with fp16 activations only; AWQ needs compute capability ≥ 7.5"
        )
    if not gpu.supports_bf16:
        notes.append(f"{gpu.name} has no bf16 (compute capability < 8.0): run with --dtype half")
    if quant.method == "gguf":
        notes.append(
            "GGUF in vLLM is experimental: serve a single .gguf file and pass the base model's "
            "tokenizer with --tokenizer"
        )
    if shape.sliding_layers:
        notes.append(
            "sliding-window layers sized as vLLM's hybrid KV manager allocates them; with it "
            "disabled they need full-context KV"
        )
    if any(kind == "none" for kind in shape.layer_kinds):
        notes.append(
            "Mamba/linear-attention layers keep a constant state per sequence (not counted)"
        )
    if remote_note:
        notes.append(remote_note)
    return notes
