"""Per-GPU memory at one tensor-parallel size, and the search for the smallest TP that serves.

Per GPU, vLLM needs ``weights/TP + overhead + activations + KV(max_model_len) ≤ memory × gmu``
(gpu-fit-formulas.md §3.4, rules 5–8); this module is that inequality and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from modelarium.core.fit.gpus import GpuProfile
from modelarium.core.fit.kv_cache import DEFAULT_MAX_NUM_BATCHED_TOKENS, KvCacheSpec, kv_cache_spec
from modelarium.core.fit.model_config import ModelShape
from modelarium.core.fit.quantization import Quantization
from modelarium.core.fit.tensor_parallel import tp_problems, valid_tp_sizes
from modelarium.core.fit.weights import WeightBytes

VLLM_DEFAULT_GPU_MEMORY_UTILIZATION = 0.9
# CUDA graphs (1–3 GiB), NCCL buffers and the CUDA context: GPUStack's and our rule of thumb.
FRAMEWORK_OVERHEAD_BYTES = 2 * 2**30
DEFAULT_MAX_NUM_SEQS = 256  # sampler logits in the profile run: max_num_seqs × vocab × fp32
# Below this a deployment is not useful for chat, so "fits with reduced context" stops here.
MIN_USEFUL_CONTEXT = 4096
MAX_TP_SEARCH = 64  # how far "use N GPUs" advice looks


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
    pp: int = 1
    """Pipeline-parallel stages: tensor parallel stays inside a node (NVLink), and a model too
    big for one node is split by layers across nodes (gpu-fit-formulas §5.7)."""

    @property
    def gpus(self) -> int:
        return self.tp * self.pp

    @property
    def parallel_flags(self) -> str:
        """`` --tensor-parallel-size 8 --pipeline-parallel-size 2`` ('' on one GPU)."""
        tp = f" --tensor-parallel-size {self.tp}" if self.tp > 1 else ""
        return tp + (f" --pipeline-parallel-size {self.pp}" if self.pp > 1 else "")

    def nodes(self, per_node: int) -> int:
        """Nodes of ``per_node`` GPUs this layout spans."""
        return -(-self.gpus // max(per_node, 1))

    def layout(self, per_node: int) -> str:
        """``TP 8`` or ``TP 8 × PP 2 (2 nodes)`` for advice lines."""
        if self.pp == 1:
            return f"TP {self.tp}"
        nodes = self.nodes(per_node)
        return f"TP {self.tp} × PP {self.pp} ({nodes} node{'s' if nodes > 1 else ''})"

    @property
    def kv_available(self) -> float:
        return self.budget - self.weights - self.overhead - self.activations

    def fits(self, tokens: int) -> bool:
        return self.kv_available > 0 and self.kv.bytes_for(tokens) <= self.kv_available


def round_len(tokens: int, cap: int) -> int:
    """Round a fitting length down to something an operator would type (1024s, else 16s)."""
    if tokens >= cap:
        return cap
    if tokens >= 1024:
        return tokens // 1024 * 1024
    return tokens // 16 * 16


def activation_bytes(shape: ModelShape, tp: int, batched: int) -> tuple[float, str]:
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


def plan_for(
    shape: ModelShape,
    weights: WeightBytes,
    gpu: GpuProfile,
    tp: int,
    kv_dtype: str,
    gmu: float,
    cap: int,
    pp: int = 1,
) -> MemoryPlan:
    """Per-GPU budget at ``tp`` (× ``pp`` stages) and the longest context (≤ ``cap``) its KV
    room allows. A pipeline stage holds about 1/``pp`` of the layers, their weights and KV."""
    kv = kv_cache_spec(shape, kv_dtype, tp)
    if pp > 1:
        kv = replace(
            kv,
            full_layers=-(-kv.full_layers // pp),
            sliding_layers=-(-kv.sliding_layers // pp),
        )
    activations, _ = activation_bytes(shape, tp, DEFAULT_MAX_NUM_BATCHED_TOKENS)
    budget = gpu.memory_bytes * gmu
    partial = MemoryPlan(
        tp,
        gpu.memory_bytes,
        budget,
        weights.per_gpu(tp) / pp,
        FRAMEWORK_OVERHEAD_BYTES,
        activations,
        kv,
        0,
        pp,
    )
    max_len = kv.max_tokens(partial.kv_available, cap)
    return replace(partial, max_len=max_len)


@dataclass(frozen=True)
class Search:
    """Every valid TP's plan, the one picked (or the closest miss), and whether it serves."""

    plans: tuple[MemoryPlan, ...]
    chosen: MemoryPlan | None
    fits: bool


def search(
    shape: ModelShape,
    weights: WeightBytes,
    gpu: GpuProfile,
    max_gpus: int,
    kv_dtype: str,
    gmu: float,
    quant: Quantization,
    target: int | None,
    tensor_parallel: int | None = None,
) -> Search:
    """Fewest GPUs that serve ``target`` tokens (None: the model's full context): one node's
    valid TP sizes first (at most ``gpu.count``, the GPUs per node), then the widest of them
    × PP stages, across nodes. ``tensor_parallel`` considers that TP only (a
    deployment told how many GPUs to use)."""
    cap = shape.max_model_len
    if tensor_parallel is not None:
        sizes = [tensor_parallel] if not tp_problems(shape, tensor_parallel, quant) else []
        layouts = [(tp, 1) for tp in sizes]
    else:
        per_node = valid_tp_sizes(shape, min(max_gpus, gpu.count), quant)
        layouts = [(tp, 1) for tp in per_node]
        if per_node:
            widest = per_node[-1]  # stages as wide as a node allows
            top = min(max_gpus // widest, shape.num_layers)
            layouts += [(widest, pp) for pp in range(2, top + 1)]
    plans = tuple(plan_for(shape, weights, gpu, tp, kv_dtype, gmu, cap, pp) for tp, pp in layouts)
    if not plans:
        return Search(plans, None, False)
    best = max(plans, key=lambda p: (p.max_len, p.kv_available))
    if target is not None:
        if target > cap:
            return Search(plans, best, False)
        ok = [p for p in plans if p.fits(target)]
        return Search(plans, ok[0] if ok else best, bool(ok))
    ok = [p for p in plans if p.max_len >= cap]
    if ok:
        return Search(plans, ok[0], True)
    useful = [p for p in plans if p.max_len >= min(MIN_USEFUL_CONTEXT, cap)]
    if useful:
        chosen = max(useful, key=lambda p: (p.max_len, -p.gpus))
        return Search(plans, chosen, True)
    return Search(plans, best, False)
