"""Bytes the weights take on the GPUs, per storage format, tensor by tensor.

Quantized formats add per-group scales and zero points whose cost depends on each Linear's
shape (AWQ g128 ≈ 0.52 B/weight, not 0.5), and leave embeddings, LM head, norms and routers in
16-bit; a flat "bits / 8" would be off by several percent on small or wide-vocabulary models.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from modelarium.core.fit.params import ParamBreakdown, SafetensorsInfo, TensorGroup
from modelarium.core.fit.quantization import Quantization

_HALF = 2  # bytes of a bf16/fp16 element


@dataclass(frozen=True)
class WeightBytes:
    """Weight bytes, split into the part TP shards and the part every rank holds a copy of."""

    total: float
    replicated: float
    quantization: Quantization
    source: str  # "config.json" or "safetensors metadata"

    def per_gpu(self, tp: int) -> float:
        return (self.total - self.replicated) / tp + self.replicated

    @property
    def bytes_per_param_label(self) -> str:
        q = self.quantization
        if q.method == "gguf" or q.whole_model:
            return f"{q.bits / 8:.3g} B ({q.label})"
        if not q.is_quantized:
            return f"2 B ({q.label})"
        return f"mixed ({q.label} Linear weights, 16-bit embeddings/norms)"


def _linear_bytes(g: TensorGroup, q: Quantization) -> float:
    """Stored bytes of ``g.count`` quantized Linear matrices of ``in × out``."""
    n_in, n_out, elems = g.in_features, g.out_features, g.in_features * g.out_features
    if q.method in ("fp8", "int8", "compressed-tensors") and q.bits >= 8:
        if q.fp8_block:
            scales = math.ceil(n_in / q.fp8_block) * math.ceil(n_out / q.fp8_block) * 4
        else:
            scales = n_out * 4  # per-channel fp32 scales
        return (elems + scales) * g.count
    if q.method in ("awq", "gptq", "compressed-tensors"):
        group = q.group_size or n_in
        groups = math.ceil(n_in / group)
        packed = elems * q.bits / 8
        scales = groups * n_out * _HALF
        zeros = groups * n_out * q.bits / 8 if (q.zero_point or q.method == "gptq") else 0
        g_idx = n_in * 4 if q.g_idx else 0
        return (packed + scales + zeros + g_idx) * g.count
    if q.method == "bitsandbytes":
        if q.bits >= 8:
            return (elems + n_out * 4) * g.count
        absmax = elems / 64 * (1 + 4 / 256) if q.double_quant else elems / 64 * 4
        return (elems / 2 + absmax) * g.count
    if q.method == "nvfp4":
        return (elems / 2 + elems / 16) * g.count  # fp4 values + one fp8 scale per 16
    if q.method == "mxfp4":
        return (elems / 2 + elems / 32) * g.count  # fp4 values + one e8m0 scale per 32
    return elems * q.bits / 8 * g.count


def _is_quantized_group(g: TensorGroup, q: Quantization) -> bool:
    if g.kind != "linear" or g.part == "vision":
        return False
    if q.method == "mxfp4":
        return g.active_count is not None  # gpt-oss: only the routed experts are MXFP4
    return True


def weight_bytes(params: ParamBreakdown, quant: Quantization) -> WeightBytes:
    """Bytes of all loaded weights in ``quant`` (16-bit when not quantized)."""
    total = 0.0
    replicated = 0.0
    for g in params.groups:
        if quant.whole_model:
            size = g.params * quant.bits / 8
        elif quant.is_quantized and _is_quantized_group(g, quant):
            size = _linear_bytes(g, quant)
        else:
            size = g.params * _HALF
        total += size
        if g.replicated:
            replicated += size
    if params.total_override is not None and params.config_total:
        # Safetensors gave the real count: scale the config-shaped estimate to it.
        factor = params.total_override / params.config_total
        total *= factor
        replicated *= factor
    return WeightBytes(total, replicated, quant, params.source)


def checkpoint_weight_bytes(
    info: SafetensorsInfo, params: ParamBreakdown, quant: Quantization
) -> WeightBytes:
    """Exact stored bytes of a quantized checkpoint (rule: prefer file sizes when known).

    Only for quantized checkpoints loaded as stored; a 16-bit load of an fp32 file is not its
    file size. MTP layers in the file (DeepSeek) are taken out pro rata.
    """
    estimate = weight_bytes(params, quant)
    total = info.file_bytes
    if params.mtp_params and info.total > params.config_total:
        total *= params.config_total / info.total
    share = estimate.replicated / estimate.total if estimate.total else 0.0
    return WeightBytes(total, total * share, quant, "safetensors metadata")
