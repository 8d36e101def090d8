"""Does a model fit on given GPUs under vLLM, with which flags, and why (arithmetic shown).

Per GPU, vLLM needs ``weights/TP + overhead + activations + KV(max_model_len) ≤ memory × gmu``
(gpu-fit-formulas.md §3.4, rules 5–8). Every number that goes into the answer is also written
out as a line of arithmetic so an operator can check it before buying or freeing GPUs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from modelarium.core.errors import UsageError
from modelarium.core.fit.gpus import GpuProfile, get_gpu
from modelarium.core.fit.kv_cache import (
    DEFAULT_MAX_NUM_BATCHED_TOKENS,
    KvCacheSpec,
    kv_cache_spec,
    kv_dtype_bytes,
)
from modelarium.core.fit.model_config import ModelShape, read_model_config, text_config
from modelarium.core.fit.params import ParamBreakdown, read_safetensors, resolve_params
from modelarium.core.fit.parsing import format_gib, format_params, parse_context
from modelarium.core.fit.quantization import Quantization, detect_quantization, parse_quant
from modelarium.core.fit.tensor_parallel import tp_problems, valid_tp_sizes
from modelarium.core.fit.weights import WeightBytes, checkpoint_weight_bytes, weight_bytes

# vLLM's default for most of its history (0.92 in the newest CacheConfig; pass it explicitly).
VLLM_DEFAULT_GPU_MEMORY_UTILIZATION = 0.9
# CUDA graphs (1–3 GiB), NCCL buffers and the CUDA context: GPUStack's and our rule of thumb.
FRAMEWORK_OVERHEAD_BYTES = 2 * 2**30
DEFAULT_MAX_NUM_SEQS = 256  # sampler logits in the profile run: max_num_seqs × vocab × fp32
# Below this a deployment is not useful for chat, so "fits with reduced context" stops here.
MIN_USEFUL_CONTEXT = 4096
_MAX_TP_SEARCH = 64  # how far "use N GPUs" advice looks


@dataclass(frozen=True)
class MemoryPlan:
    """Per-GPU memory at one tensor-parallel size."""

    tp: int
    gpu_memory: int
    budget: float
    weights: float
    overhead: float
    activations: float
    kv: KvCacheSpec
    max_len: int  # largest max_model_len whose KV fits, capped at the model's maximum

    @property
    def kv_available(self) -> float:
        return self.budget - self.weights - self.overhead - self.activations

    def fits(self, tokens: int) -> bool:
        return self.kv_available > 0 and self.kv.bytes_for(tokens) <= self.kv_available


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

    @property
    def gpus_used(self) -> int:
        return self.tensor_parallel_size or 0

    def command(self, model_id: str) -> str:
        """``vllm serve <model> <flags>`` ready to paste, or '' when nothing fits."""
        if not self.fits:
            return ""
        return " ".join(["vllm", "serve", model_id, *self.flags])

    def summary(self) -> str:
        """One line for chat."""
        if not self.fits:
            return (
                f"does not fit on {self.gpu.describe()} at {self.context:,} tokens"
                f" ({self.quantization.label})"
            )
        gpus = f"{self.tensor_parallel_size}× {self.gpu.name}"
        return (
            f"fits on {gpus} with --max-model-len {self.recommended_max_model_len:,}"
            f" ({self.quantization.label}, KV {self.kv_cache_dtype})"
        )


def _round_len(tokens: int, cap: int) -> int:
    """Round a fitting length down to something an operator would type (1024s, else 16s)."""
    if tokens >= cap:
        return cap
    if tokens >= 1024:
        return tokens // 1024 * 1024
    return tokens // 16 * 16


def _activation_bytes(shape: ModelShape, tp: int, batched: int) -> tuple[float, str]:
    """Profile-run peak: hidden states + the MLP's widest intermediate, plus sampler logits."""
    h = shape.hidden_size
    if shape.is_moe:
        width = shape.experts_per_token * shape.moe_intermediate_size
        width += shape.shared_experts * shape.shared_expert_intermediate_size
        width = max(width, shape.intermediate_size if shape.dense_layers else 0)
    else:
        width = shape.intermediate_size
    hidden_part = batched * (4 * h + 2 * width / tp) * 2
    logits = DEFAULT_MAX_NUM_SEQS * shape.vocab_size * 4
    text = (
        f"{batched} batched tokens × (4×{h} + 2×{width}/{tp}) × 2 B + "
        f"{DEFAULT_MAX_NUM_SEQS} seqs × {shape.vocab_size:,} vocab × 4 B"
    )
    return hidden_part + logits, text


def _plan(
    shape: ModelShape,
    weights: WeightBytes,
    gpu: GpuProfile,
    tp: int,
    kv_dtype: str,
    gmu: float,
    cap: int,
) -> MemoryPlan:
    kv = kv_cache_spec(shape, kv_dtype, tp)
    activations, _ = _activation_bytes(shape, tp, DEFAULT_MAX_NUM_BATCHED_TOKENS)
    budget = gpu.memory_bytes * gmu
    partial = MemoryPlan(
        tp,
        gpu.memory_bytes,
        budget,
        weights.per_gpu(tp),
        FRAMEWORK_OVERHEAD_BYTES,
        activations,
        kv,
        0,
    )
    max_len = kv.max_tokens(partial.kv_available, cap)
    return replace(partial, max_len=max_len)


@dataclass(frozen=True)
class _Search:
    plans: tuple[MemoryPlan, ...]
    chosen: MemoryPlan | None
    fits: bool


def _search(
    shape: ModelShape,
    weights: WeightBytes,
    gpu: GpuProfile,
    max_gpus: int,
    kv_dtype: str,
    gmu: float,
    quant: Quantization,
    target: int | None,
) -> _Search:
    """Smallest valid TP that serves ``target`` tokens (None: the model's full context)."""
    cap = shape.max_model_len
    plans = tuple(
        _plan(shape, weights, gpu, tp, kv_dtype, gmu, cap)
        for tp in valid_tp_sizes(shape, max_gpus, quant)
    )
    if not plans:
        return _Search(plans, None, False)
    best = max(plans, key=lambda p: (p.max_len, p.kv_available))
    if target is not None:
        if target > cap:
            return _Search(plans, best, False)
        ok = [p for p in plans if p.fits(target)]
        return _Search(plans, ok[0] if ok else best, bool(ok))
    ok = [p for p in plans if p.max_len >= cap]
    if ok:
        return _Search(plans, ok[0], True)
    useful = [p for p in plans if p.max_len >= min(MIN_USEFUL_CONTEXT, cap)]
    if useful:
        chosen = max(useful, key=lambda p: (p.max_len, -p.tp))
        return _Search(plans, chosen, True)
    return _Search(plans, best, False)


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


def _arithmetic(
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
            f"weights per GPU = {format_gib(sharded)} / TP {plan.tp}{replicated} = "
            f"{format_gib(plan.weights)}"
        )
    lines.append(
        f"budget per GPU = {format_gib(gpu.memory_bytes)} ({gpu.name}: "
        f"{gpu.memory_mib:,.0f} MiB) × {gmu:g} = {format_gib(plan.budget)}"
    )
    lines.append(
        f"overhead per GPU = {format_gib(plan.overhead)} (CUDA graphs, NCCL, CUDA context; "
        "rule of thumb)"
    )
    _, act_text = _activation_bytes(shape, plan.tp, DEFAULT_MAX_NUM_BATCHED_TOKENS)
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
            f"{_round_len(plan.max_len, shape.max_model_len):,} (rounded down)"
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


def _flags(
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


class _Advisor:
    """Tries the alternatives an operator could take and phrases the ones that help."""

    def __init__(
        self,
        shape: ModelShape,
        params: ParamBreakdown,
        gpu: GpuProfile,
        available: int,
        kv_dtype: str,
        gmu: float,
        quant: Quantization,
        checkpoint: Quantization,
        weights: WeightBytes,
        target: int | None,
    ) -> None:
        self.shape, self.params, self.gpu, self.available = shape, params, gpu, available
        self.kv_dtype, self.gmu, self.quant, self.checkpoint = kv_dtype, gmu, quant, checkpoint
        self.weights, self.target = weights, target

    def _try(
        self,
        *,
        kv_dtype: str | None = None,
        gmu: float | None = None,
        quant: Quantization | None = None,
        max_gpus: int | None = None,
    ) -> _Search:
        q = quant or self.quant
        weights = self.weights if quant is None else weight_bytes(self.params, q)
        return _search(
            self.shape,
            weights,
            self.gpu,
            max_gpus or self.available,
            kv_dtype or self.kv_dtype,
            gmu or self.gmu,
            q,
            self.target,
        )

    def _want(self) -> int:
        return self.target if self.target is not None else self.shape.max_model_len

    def advice(self, result: _Search) -> list[str]:
        out: list[str] = []
        want = self._want()
        cap = self.shape.max_model_len
        chosen = result.chosen
        if want > cap:
            out.append(
                f"The model supports at most {cap:,} tokens ({self.shape.max_len_reason}); "
                f"ask for at most that: `--max-model-len {cap}`"
            )
        limited = chosen is not None and chosen.max_len < min(want, cap)
        if limited and chosen is not None and chosen.max_len >= min(1024, cap):
            length = _round_len(chosen.max_len, cap)
            tp = f" --tensor-parallel-size {chosen.tp}" if chosen.tp > 1 else ""
            verb = "Serving with" if result.fits else "Reduce context to"
            out.append(
                f"{verb} {length:,} tokens (full {min(want, cap):,} does not fit): "
                f"`--max-model-len {length}{tp}`"
            )
        if (
            (limited or not result.fits)
            and self.kv_dtype.lower() == "auto"
            and self.gpu.supports_fp8
        ):
            out += self._kv_fp8(chosen)
        if limited or not result.fits:
            out += self._more_gpus()
        if not result.fits and not self.quant.is_quantized:
            out += self._quantize()
        if not result.fits and self.gmu < 0.95:
            alt = self._try(gmu=0.95)
            if alt.fits and alt.chosen is not None:
                out.append(
                    "Raising `--gpu-memory-utilization 0.95` would fit (only if nothing else "
                    "uses these GPUs)"
                )
        return out

    def _kv_fp8(self, chosen: MemoryPlan | None) -> list[str]:
        alt = self._try(kv_dtype="fp8")
        if alt.chosen is None:
            return []
        want = min(self._want(), self.shape.max_model_len)
        if alt.chosen.fits(want):
            tp = f" --tensor-parallel-size {alt.chosen.tp}" if alt.chosen.tp > 1 else ""
            return [
                f"`--kv-cache-dtype fp8` halves the KV cache: {want:,} tokens fit"
                f"{f' at TP {alt.chosen.tp}' if alt.chosen.tp > 1 else ''}: "
                f"`--kv-cache-dtype fp8 --max-model-len {want}{tp}`"
            ]
        before = chosen.max_len if chosen else 0
        if alt.chosen.max_len > before:
            length = _round_len(alt.chosen.max_len, self.shape.max_model_len)
            return [f"`--kv-cache-dtype fp8` halves the KV cache: up to {length:,} tokens fit"]
        return []

    def _more_gpus(self) -> list[str]:
        alt = self._try(max_gpus=_MAX_TP_SEARCH)
        want = min(self._want(), self.shape.max_model_len)
        for plan in alt.plans:
            if plan.tp > self.available and plan.fits(want):
                where = ""
                if plan.tp > max(self.gpu.count, 8):
                    where = (
                        " (more than one 8-GPU node: combine TP with `--pipeline-parallel-size`)"
                    )
                return [
                    f"Use {plan.tp} GPUs for {want:,} tokens: "
                    f"`--tensor-parallel-size {plan.tp}`{where}"
                ]
        return []

    def _quantize(self) -> list[str]:
        """The first weight format that fits the target, else the one that gets closest."""
        options = [parse_quant("fp8")] if self.gpu.supports_fp8 else []
        options.append(parse_quant("awq"))
        cap = self.shape.max_model_len
        closest: tuple[Quantization, MemoryPlan] | None = None
        for option in options:
            alt = self._try(quant=option)
            if alt.chosen is None:
                continue
            if alt.fits:
                return [self._quantize_line(option, alt.chosen, "fits")]
            if alt.chosen.max_len >= 1024 and (
                closest is None or alt.chosen.max_len > closest[1].max_len
            ):
                closest = (option, alt.chosen)
        if closest is not None:
            option, plan = closest
            return [
                self._quantize_line(
                    option, plan, f"up to {_round_len(plan.max_len, cap):,} tokens fit"
                )
            ]
        four_bit = weight_bytes(self.params, parse_quant("awq")).total
        return [
            f"Even 4-bit weights ({format_gib(four_bit)}) leave no room for the KV cache on "
            f"{self.available}× {self.gpu.name}; more or larger GPUs are needed"
        ]

    def _quantize_line(self, option: Quantization, plan: MemoryPlan, outcome: str) -> str:
        how = (
            f"`--quantization {option.vllm_flag}`"
            if option.vllm_flag
            else "use a pre-quantized AWQ or GPTQ checkpoint of this model"
        )
        size = weight_bytes(self.params, option).total
        tp = f" at TP {plan.tp}" if plan.tp > 1 else ""
        if outcome == "fits":
            want = min(self._want(), self.shape.max_model_len)
            outcome = f"{want:,} tokens fit"
        return f"Quantize to {option.label}: {how} (weights {format_gib(size)}) → {outcome}{tp}"


def _notes(
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
) -> FitResult:
    """Will ``config`` serve on ``gpus`` × ``gpu`` under vLLM; smallest TP, max context, flags.

    ``gpus`` is how many GPUs may be used (default: the profile's per-node count); ``context`` is
    the wanted ``--max-model-len`` (default: the model's maximum, reduced if only less fits);
    ``quant`` sizes a different storage format than the checkpoint's (``fp8``, ``awq``,
    ``Q4_K_M``...); ``safetensors`` is the Hub's dtype → count summary, preferred when given.
    """
    profile = get_gpu(gpu) if isinstance(gpu, str) else gpu
    available = profile.count if gpus is None else gpus
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
    params = resolve_params(shape, safetensors)
    weights = _weights(params, chosen_quant, checkpoint, safetensors)
    remote_code, remote_note = _needs_trust_remote_code(config, shape)

    search = _search(
        shape,
        weights,
        profile,
        available,
        kv_cache_dtype,
        gpu_memory_utilization,
        chosen_quant,
        target,
    )
    plan = search.chosen
    want = target if target is not None else shape.max_model_len
    cap = shape.max_model_len
    max_len = _round_len(plan.max_len, cap) if plan else 0
    served = 0
    if search.fits and plan is not None:
        served = want if target is not None else max_len
    concurrency = plan.kv_available / plan.kv.bytes_for(served) if plan and served else 0.0

    advisor = _Advisor(
        shape,
        params,
        profile,
        available,
        kv_cache_dtype,
        gpu_memory_utilization,
        chosen_quant,
        checkpoint,
        weights,
        target,
    )
    advice = advisor.advice(search)
    invalid = [
        f"TP {tp}: {'; '.join(problems)}"
        for tp in (2, 4, 8)
        if tp <= available and (problems := tp_problems(shape, tp, chosen_quant))
    ]
    arithmetic = (
        _arithmetic(
            shape, params, weights, profile, gpu_memory_utilization, plan, want, search.fits, served
        )
        if plan
        else []
    )
    flags: tuple[str, ...] = ()
    if search.fits and plan is not None:
        flags = _flags(
            plan,
            served,
            chosen_quant,
            checkpoint,
            kv_cache_dtype,
            gpu_memory_utilization,
            profile,
            remote_code,
        )
    notes = _notes(shape, params, chosen_quant, profile, remote_note, [*quant_notes, *invalid])
    return FitResult(
        fits=search.fits,
        architecture=shape.architecture,
        gpu=profile,
        gpus_available=available,
        tensor_parallel_size=plan.tp if plan and search.fits else None,
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
