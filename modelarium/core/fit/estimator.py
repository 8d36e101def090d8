"""Does a model fit on given GPUs under vLLM, with which flags, and why (arithmetic shown).

The entry point :func:`estimate` reads config.json, sizes the weights in the checkpoint's (or
the asked-for) format, finds the smallest tensor-parallel size that serves the wanted context,
and returns flags, advice and every line of arithmetic behind them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from modelarium.core.errors import UsageError
from modelarium.core.fit.advice import Advisor
from modelarium.core.fit.gpus import GpuProfile, get_gpu
from modelarium.core.fit.kv_cache import kv_dtype_bytes
from modelarium.core.fit.model_config import ModelShape, read_model_config, text_config
from modelarium.core.fit.params import ParamBreakdown, read_safetensors, resolve_params
from modelarium.core.fit.parsing import parse_context
from modelarium.core.fit.plan import (
    FRAMEWORK_OVERHEAD_BYTES,
    VLLM_DEFAULT_GPU_MEMORY_UTILIZATION,
    MemoryPlan,
    round_len,
    search,
)
from modelarium.core.fit.quantization import Quantization, detect_quantization, parse_quant
from modelarium.core.fit.report import arithmetic_lines, caveats, serve_flags
from modelarium.core.fit.tensor_parallel import tp_problems
from modelarium.core.fit.weights import WeightBytes, checkpoint_weight_bytes, weight_bytes


@dataclass(frozen=True)
class FitResult:
    """The estimator's answer. ``flags`` is an argv fragment for ``vllm serve`` when it fits."""

    fits: bool
    architecture: str | None
    gpu: GpuProfile
    gpus_available: int
    tensor_parallel_size: int | None
    context: int  # what was aimed for: the requested context, else the model's maximum
    context_requested: bool
    max_model_len: int  # largest context that fits at the chosen TP (rounded down)
    recommended_max_model_len: int  # the --max-model-len in ``flags`` (0 when it does not fit)
    model_max_len: int
    quantization: Quantization
    kv_cache_dtype: str
    gpu_memory_utilization: float
    params: ParamBreakdown
    weights: WeightBytes
    memory: MemoryPlan | None
    max_concurrency: float
    flags: tuple[str, ...] = ()
    advice: tuple[str, ...] = ()
    arithmetic: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())
    pipeline_parallel_size: int = 1
    """Nodes the model is split across (one pipeline stage each); 1 on a single node."""
    checkpoint_needed: Quantization | None = None
    """The sized format needs a pre-quantized checkpoint of the model (AWQ, GPTQ...): this
    repository cannot be served as sized, so there is no command for it."""

    @property
    def gpus_used(self) -> int:
        return (self.tensor_parallel_size or 0) * self.pipeline_parallel_size

    def command(self, model_id: str) -> str:
        """``vllm serve <model> <flags>`` ready to paste, or '' when nothing fits (or it fits
        only as another, pre-quantized, checkpoint)."""
        if not self.fits or self.checkpoint_needed is not None:
            return ""
        return " ".join(["vllm", "serve", model_id, *self.flags])

    def figures(self) -> dict[str, Any]:
        """Every number the card and its arithmetic lines show, for ``--json`` and the API:
        a script must never have to parse the text for one."""
        params = self.params
        out: dict[str, Any] = {
            "params": {
                "total": params.total,
                "active": params.active,
                "source": params.source,
                "moe": params.is_moe,
                "parts": {
                    name: getattr(params, name)
                    for name in (
                        "embeddings",
                        "attention",
                        "mlp",
                        "experts",
                        "norms",
                        "lm_head",
                        "vision",
                    )
                    if getattr(params, name)
                },
            },
            "weights": {
                "bytes": round(self.weights.total),
                "replicated_bytes": round(self.weights.replicated),
                "quantization": self.quantization.label,
                "source": self.weights.source,
            },
            "context": {
                "wanted": self.context,
                "requested": self.context_requested,
                "served": self.recommended_max_model_len,
                "largest_that_fits": self.max_model_len,
                "model_max": self.model_max_len,
            },
            "gpu": {
                "name": self.gpu.name,
                "memory_bytes": self.gpu.memory_bytes,
                "per_node": self.gpu.count,
                "available": self.gpus_available,
            },
            "tensor_parallel_size": self.tensor_parallel_size,
            "pipeline_parallel_size": self.pipeline_parallel_size,
            "gpus_used": self.gpus_used,
            "checkpoint_needed": self.checkpoint_needed.label if self.checkpoint_needed else None,
            "kv_cache_dtype": self.kv_cache_dtype,
            "gpu_memory_utilization": self.gpu_memory_utilization,
            "max_concurrency": round(self.max_concurrency, 2),
            "memory_per_gpu": None,
        }
        plan = self.memory
        if plan is not None:
            out["memory_per_gpu"] = {
                "tensor_parallel_size": plan.tp,
                "pipeline_parallel_size": plan.pp,
                "budget_bytes": round(plan.budget),
                "weights_bytes": round(plan.weights),
                "overhead_bytes": round(plan.overhead),
                "activations_bytes": round(plan.activations),
                "kv_available_bytes": round(plan.kv_available),
                "kv_bytes_per_token": plan.kv.bytes_per_token,
                "kv_bytes_for_context": plan.kv.bytes_for(self.context),
                "cross_check_bytes": round(1.2 * plan.weights + FRAMEWORK_OVERHEAD_BYTES),
            }
        return out

    def summary(self) -> str:
        """One line for chat."""
        if not self.fits:
            return (
                f"does not fit on {self.gpu.describe()} at {self.context:,} tokens"
                f" ({self.quantization.label})"
            )
        gpus = f"{self.gpus_used}× {self.gpu.name}"
        if self.pipeline_parallel_size > 1:
            nodes = -(-self.gpus_used // self.gpu.count)
            where = f" on {nodes} nodes" if nodes > 1 else ""
            gpus += f"{where} (TP {self.tensor_parallel_size} × PP {self.pipeline_parallel_size})"
        checkpoint = (
            f" as a pre-quantized {self.checkpoint_needed.method.upper()} checkpoint"
            if self.checkpoint_needed is not None
            else ""
        )
        return (
            f"fits on {gpus}{checkpoint} with --max-model-len {self.recommended_max_model_len:,}"
            f" ({self.quantization.label}, KV {self.kv_cache_dtype})"
        )


def _needs_trust_remote_code(config: Mapping[str, Any], shape: ModelShape) -> tuple[bool, str]:
    from modelarium.core.vllm import lookup  # local: vllm data is optional for pure counting

    if shape.architecture:
        arch = lookup(shape.architecture)
        if arch is not None:
            return arch.needs_trust_remote_code, ""
        if shape.has_auto_map:
            return True, (
                f"{shape.architecture} is not in vLLM's registry; it ships custom code "
                "(auto_map), so it could only run through the Transformers backend"
            )
        return False, f"{shape.architecture} is not in vLLM's architecture registry"
    return shape.has_auto_map, ""


def _resolve_quant(
    config: Mapping[str, Any], shape: ModelShape, quant: str | Quantization | None
) -> tuple[Quantization, Quantization, list[str]]:
    """(checkpoint format, format to size, notes)."""
    checkpoint = detect_quantization(text_config(config), shape.torch_dtype)
    if quant is None or (isinstance(quant, str) and quant.strip().lower() in ("", "auto")):
        return checkpoint, checkpoint, []
    chosen = quant if isinstance(quant, Quantization) else parse_quant(quant)
    notes: list[str] = []
    if chosen.method == checkpoint.method and chosen.bits == checkpoint.bits:
        return checkpoint, checkpoint, notes
    if checkpoint.is_quantized:
        notes.append(
            f"checkpoint is {checkpoint.label}; sizing a {chosen.label} variant of the model "
            "instead (vLLM cannot re-quantize a quantized checkpoint)"
        )
        return checkpoint, replace(chosen, vllm_flag=None), notes
    if chosen.is_quantized and chosen.vllm_flag is None:
        notes.append(
            f"{chosen.label} needs a pre-quantized checkpoint of this model; vLLM reads the "
            "format from its config.json, so no --quantization flag is given"
        )
    return checkpoint, chosen, notes


def _weights(
    params: ParamBreakdown,
    quant: Quantization,
    checkpoint: Quantization,
    safetensors: Mapping[str, Any] | None,
) -> WeightBytes:
    if safetensors is not None and quant is checkpoint and checkpoint.is_quantized:
        return checkpoint_weight_bytes(read_safetensors(safetensors), params, checkpoint)
    return weight_bytes(params, quant)


def estimate(
    config: Mapping[str, Any],
    gpu: GpuProfile | str,
    gpus: int | None = None,
    context: int | str | None = None,
    quant: str | Quantization | None = None,
    kv_cache_dtype: str = "auto",
    gpu_memory_utilization: float = VLLM_DEFAULT_GPU_MEMORY_UTILIZATION,
    *,
    safetensors: Mapping[str, Any] | None = None,
    tensor_parallel: int | None = None,
) -> FitResult:
    """Will ``config`` serve on ``gpus`` × ``gpu`` under vLLM; smallest TP, max context, flags.

    ``gpus`` is how many GPUs may be used (default: the profile's per-node count); tensor
    parallel stays within the profile's per-node count, and more GPUs than a node holds are used
    as pipeline-parallel stages, one per node; ``context`` is
    the wanted ``--max-model-len`` (default: the model's maximum, reduced if only less fits);
    ``quant`` sizes a different storage format than the checkpoint's (``fp8``, ``awq``,
    ``Q4_K_M``...); ``safetensors`` is the Hub's dtype → count summary, preferred when given;
    ``tensor_parallel`` sizes exactly that many GPUs instead of searching for the fewest.
    """
    profile = get_gpu(gpu) if isinstance(gpu, str) else gpu
    available = profile.count if gpus is None else gpus
    if isinstance(gpu, str) and isinstance(available, int) and available > profile.count:
        # a card named by string has no node: the GPUs asked for are taken as one node's. A
        # profile (the cluster's, the inventory's) says how many a node really holds.
        profile = profile.with_count(available)
    if isinstance(available, bool) or not isinstance(available, int) or available < 1:
        raise UsageError(f"number of GPUs must be a positive integer, not {gpus!r}")
    if not 0 < gpu_memory_utilization <= 1:
        raise UsageError(
            f"gpu_memory_utilization must be in (0, 1], not {gpu_memory_utilization!r}"
        )
    kv_dtype_bytes(kv_cache_dtype)  # validates the spelling
    target = parse_context(context) if context is not None else None

    shape = read_model_config(config)
    checkpoint, chosen_quant, quant_notes = _resolve_quant(config, shape, quant)
    if tensor_parallel is not None:
        if tensor_parallel > available:
            raise UsageError(f"{tensor_parallel} GPUs asked for, but only {available} available")
        problems = tp_problems(shape, tensor_parallel, chosen_quant)
        if problems:
            raise UsageError(
                f"vLLM cannot split this model over {tensor_parallel} GPUs: {problems[0]}"
            )
    params = resolve_params(shape, safetensors)
    weights = _weights(params, chosen_quant, checkpoint, safetensors)
    remote_code, remote_note = _needs_trust_remote_code(config, shape)

    found = search(
        shape,
        weights,
        profile,
        available,
        kv_cache_dtype,
        gpu_memory_utilization,
        chosen_quant,
        target,
        tensor_parallel,
    )
    plan = found.chosen
    want = target if target is not None else shape.max_model_len
    cap = shape.max_model_len
    max_len = round_len(plan.max_len, cap) if plan else 0
    served = 0
    if found.fits and plan is not None:
        served = want if target is not None else max_len
    concurrency = plan.kv_available / plan.kv.bytes_for(served) if plan and served else 0.0

    advisor = Advisor(
        shape,
        params,
        profile,
        available,
        kv_cache_dtype,
        gpu_memory_utilization,
        chosen_quant,
        weights,
        target,
    )
    advice = advisor.advice(found)
    invalid = [
        f"TP {tp}: {'; '.join(problems)}"
        for tp in (2, 4, 8)
        if tp <= available and (problems := tp_problems(shape, tp, chosen_quant))
    ]
    arithmetic = (
        arithmetic_lines(
            shape, params, weights, profile, gpu_memory_utilization, plan, want, found.fits, served
        )
        if plan
        else []
    )
    flags: tuple[str, ...] = ()
    if found.fits and plan is not None:
        flags = serve_flags(
            plan,
            served,
            chosen_quant,
            checkpoint,
            kv_cache_dtype,
            gpu_memory_utilization,
            profile,
            remote_code,
        )
    notes = caveats(shape, params, chosen_quant, profile, remote_note, [*quant_notes, *invalid])
    return FitResult(
        fits=found.fits,
        architecture=shape.architecture,
        gpu=profile,
        gpus_available=available,
        tensor_parallel_size=plan.tp if plan and found.fits else None,
        pipeline_parallel_size=plan.pp if plan and found.fits else 1,
        checkpoint_needed=(
            chosen_quant
            if chosen_quant.is_quantized
            and chosen_quant is not checkpoint
            and chosen_quant.vllm_flag is None
            else None
        ),
        context=want,
        context_requested=target is not None,
        max_model_len=max_len,
        recommended_max_model_len=served,
        model_max_len=cap,
        quantization=chosen_quant,
        kv_cache_dtype=kv_cache_dtype.lower(),
        gpu_memory_utilization=gpu_memory_utilization,
        params=params,
        weights=weights,
        memory=plan,
        max_concurrency=concurrency,
        flags=flags,
        advice=tuple(advice),
        arithmetic=tuple(arithmetic),
        notes=tuple(notes),
    )
