"""Parameter count from config.json, kept as tensor groups so quantized sizes can be exact.

Counting per tensor shape (not just a total) matters because AWQ/GPTQ overhead depends on each
Linear's input and output width, and because some tensors are never quantized (embeddings, norms,
routers) or are replicated on every tensor-parallel rank.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from modelarium.core.errors import ValidationError
from modelarium.core.fit.model_config import ModelShape, read_model_config

TensorKind = Literal["linear", "embedding", "lm_head", "norm", "bias", "router"]
Part = Literal["embeddings", "attention", "mlp", "experts", "norms", "lm_head", "vision"]


@dataclass(frozen=True)
class TensorGroup:
    """``count`` tensors of shape ``in_features × out_features`` (a vector when in_features=1)."""

    name: str
    part: Part
    kind: TensorKind
    in_features: int
    out_features: int
    count: int
    replicated: bool = (
        False  # the same copy on every TP rank (norms, routers, MLA down-projections)
    )
    active_count: int | None = None  # for routed experts: how many are used per token

    @property
    def params(self) -> int:
        return self.in_features * self.out_features * self.count

    @property
    def active_params(self) -> int:
        used = self.count if self.active_count is None else self.active_count
        return self.in_features * self.out_features * used


@dataclass(frozen=True)
class ParamBreakdown:
    """Parameters by part. ``total`` is what vLLM loads; ``active`` is what one token uses."""

    groups: tuple[TensorGroup, ...]
    source: str = "config.json"
    total_override: int | None = None  # from safetensors metadata, when that was preferred
    mtp_params: int = 0  # DeepSeek multi-token-prediction layers: in the checkpoint, not loaded
    notes: tuple[str, ...] = ()

    def part(self, name: Part) -> int:
        return sum(g.params for g in self.groups if g.part == name)

    @property
    def embeddings(self) -> int:
        return self.part("embeddings")

    @property
    def attention(self) -> int:
        return self.part("attention")

    @property
    def mlp(self) -> int:
        return self.part("mlp")

    @property
    def experts(self) -> int:
        return self.part("experts")

    @property
    def norms(self) -> int:
        return self.part("norms")

    @property
    def lm_head(self) -> int:
        return self.part("lm_head")

    @property
    def vision(self) -> int:
        return self.part("vision")

    @property
    def config_total(self) -> int:
        return sum(g.params for g in self.groups)

    @property
    def total(self) -> int:
        return self.total_override if self.total_override is not None else self.config_total

    @property
    def active(self) -> int:
        """Parameters touched per token (equals ``total`` for dense models)."""
        active = sum(g.active_params for g in self.groups)
        if self.total_override is not None and self.config_total:
            active = round(active * self.total_override / self.config_total)
        return active

    @property
    def is_moe(self) -> bool:
        return any(g.active_count is not None for g in self.groups)


def _linear(name: str, part: Part, n_in: int, n_out: int, count: int, **kw: Any) -> TensorGroup:
    return TensorGroup(name, part, "linear", n_in, n_out, count, **kw)


def _vector(name: str, part: Part, kind: TensorKind, size: int, count: int) -> TensorGroup:
    return TensorGroup(name, part, kind, 1, size, count, replicated=kind in ("norm", "router"))


def _attention_groups(s: ModelShape, n: int) -> list[TensorGroup]:
    h, heads, kv, d = s.hidden_size, s.num_heads, s.num_kv_heads, s.head_dim
    if s.is_mla:
        qk = s.qk_nope_head_dim + s.qk_rope_head_dim
        groups: list[TensorGroup] = []
        if s.q_lora_rank:
            groups += [
                _linear("q_a_proj", "attention", h, s.q_lora_rank, n, replicated=True),
                _vector("q_a_layernorm", "norms", "norm", s.q_lora_rank, n),
                _linear("q_b_proj", "attention", s.q_lora_rank, heads * qk, n),
            ]
        else:
            groups.append(_linear("q_proj", "attention", h, heads * qk, n))
        return [
            *groups,
            _linear(
                "kv_a_proj_with_mqa",
                "attention",
                h,
                s.kv_lora_rank + s.qk_rope_head_dim,
                n,
                replicated=True,
            ),
            _vector("kv_a_layernorm", "norms", "norm", s.kv_lora_rank, n),
            _linear(
                "kv_b_proj",
                "attention",
                s.kv_lora_rank,
                heads * (s.qk_nope_head_dim + s.v_head_dim),
                n,
            ),
            _linear("o_proj", "attention", heads * s.v_head_dim, h, n),
        ]
    groups = [
        _linear("q_proj", "attention", h, heads * d, n),
        _linear("k_proj", "attention", h, kv * d, n),
        _linear("v_proj", "attention", h, kv * d, n),
        _linear("o_proj", "attention", heads * d, h, n),
    ]
    if s.qkv_bias:
        groups.append(_vector("qkv_bias", "attention", "bias", (heads + 2 * kv) * d, n))
    if s.o_bias:
        groups.append(_vector("o_bias", "attention", "bias", h, n))
    if s.qk_norm:
        groups.append(_vector("q_norm+k_norm", "norms", "norm", 2 * d, n))
    return groups


def _mlp_groups(
    name: str, part: Part, h: int, width: int, count: int, s: ModelShape, **kw: Any
) -> list[TensorGroup]:
    """Gated (gate/up/down) or plain (up/down) MLP; ``mlp_bias`` biases on dense MLPs only."""
    if s.gated_mlp:
        groups = [
            _linear(f"{name}.gate_proj", part, h, width, count, **kw),
            _linear(f"{name}.up_proj", part, h, width, count, **kw),
            _linear(f"{name}.down_proj", part, width, h, count, **kw),
        ]
    else:
        groups = [
            _linear(f"{name}.up_proj", part, h, width, count, **kw),
            _linear(f"{name}.down_proj", part, width, h, count, **kw),
        ]
    if s.mlp_bias and count and "active_count" not in kw:
        groups.append(_vector(f"{name}.bias", part, "bias", (len(groups) - 1) * width + h, count))
    return groups


def _vision_groups(s: ModelShape) -> list[TensorGroup]:
    """Approximate ViT: per layer 4·h² attention + 2·h·I MLP, patch embedding, 2-layer projector."""
    v = s.vision
    if v is None:
        return []
    h = v.hidden_size
    return [
        _linear("vision.attention", "vision", h, 4 * h, v.num_layers),
        _linear("vision.mlp", "vision", h, 2 * v.intermediate_size, v.num_layers),
        _linear("vision.patch_embed", "vision", 3 * v.patch_size * v.patch_size, h, 1),
        _linear("vision.projector", "vision", h + s.hidden_size, s.hidden_size, 1),
    ]


def count_params(config: Mapping[str, Any] | ModelShape) -> ParamBreakdown:
    """Parameter breakdown from config.json (dense, GQA, MoE, MLA, tied/untied, text_config)."""
    s = config if isinstance(config, ModelShape) else read_model_config(config)
    h, n_layers = s.hidden_size, s.num_layers
    n_moe = len(s.moe_layers)
    n_dense = n_layers - n_moe
    groups: list[TensorGroup] = [
        TensorGroup("embed_tokens", "embeddings", "embedding", s.vocab_size, h, 1)
    ]
    groups += _attention_groups(s, n_layers)
    groups.append(_vector("layer norms", "norms", "norm", s.norms_per_layer * h, n_layers))
    if n_dense:
        groups += _mlp_groups("mlp", "mlp", h, s.intermediate_size, n_dense, s)
    if n_moe:
        e, k, m = s.num_experts, s.experts_per_token or s.num_experts, s.moe_intermediate_size
        groups += _mlp_groups("experts", "experts", h, m, n_moe * e, s, active_count=n_moe * k)
        groups.append(TensorGroup("router", "experts", "router", h, e, n_moe, replicated=True))
        if s.router_bias:
            groups.append(_vector("router.e_score_correction_bias", "experts", "router", e, n_moe))
        if s.shared_experts:
            width = s.shared_expert_intermediate_size * s.shared_experts
            groups += _mlp_groups("shared_experts", "experts", h, width, n_moe, s)
        if s.shared_expert_gate:
            groups.append(_vector("shared_expert_gate", "experts", "router", h, n_moe))
    groups.append(_vector("final norm", "norms", "norm", h, 1))
    if not s.tie_word_embeddings:
        groups.append(TensorGroup("lm_head", "lm_head", "lm_head", h, s.vocab_size, 1))
    groups += _vision_groups(s)

    notes = list(s.notes)
    if s.tie_word_embeddings:
        notes.append("embeddings are tied: the LM head shares embed_tokens (counted once)")
    if s.vision is not None:
        notes.append("vision tower counted approximately from vision_config")
    mtp = 0
    if s.mtp_layers and n_moe:
        # One MTP block = a MoE decoder layer + enorm/hnorm + eh_proj (2h × h); vLLM loads it
        # only for MTP speculative decoding, so it is reported but not counted.
        per_moe_layer = sum(g.params for g in groups if g.part == "experts") // n_moe
        attn_per_layer = sum(g.params for g in groups if g.part == "attention") // n_layers
        per_layer = attn_per_layer + per_moe_layer + 2 * h * h + 4 * h
        mtp = s.mtp_layers * per_layer
        notes.append(
            f"checkpoint also holds {s.mtp_layers} MTP layer(s) (~{mtp / 1e9:.1f}B params) that "
            "vLLM loads only for MTP speculative decoding; not counted"
        )
    return ParamBreakdown(tuple(groups), mtp_params=mtp, notes=tuple(notes))


# Bytes per element of the safetensors dtypes the Hub reports.
SAFETENSORS_DTYPE_BYTES: dict[str, float] = {
    "F64": 8,
    "I64": 8,
    "U64": 8,
    "F32": 4,
    "I32": 4,
    "U32": 4,
    "F16": 2,
    "BF16": 2,
    "I16": 2,
    "U16": 2,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "F8_E8M0": 1,
    "I8": 1,
    "U8": 1,
    "BOOL": 1,
    "F4": 0.5,
}


@dataclass(frozen=True)
class SafetensorsInfo:
    """The Hub's ``safetensors`` summary: element counts per dtype."""

    parameters: Mapping[str, int]
    total: int

    @property
    def file_bytes(self) -> float:
        """Exact bytes of the stored tensors (what the download and the raw load weigh)."""
        return sum(
            n * SAFETENSORS_DTYPE_BYTES.get(dt.upper(), 2) for dt, n in self.parameters.items()
        )

    @property
    def packed_int(self) -> bool:
        """AWQ/GPTQ pack 8 weights in one int32, so element counts undercount parameters."""
        return any(dt.upper() in ("I32", "U32") for dt in self.parameters)


def read_safetensors(meta: Mapping[str, Any]) -> SafetensorsInfo:
    """Validate ``{"parameters": {"BF16": n, ...}, "total": n}`` (or a wrapper holding it)."""
    if isinstance(meta.get("safetensors"), Mapping):
        meta = meta["safetensors"]
    params = meta.get("parameters")
    if not isinstance(params, Mapping) or not params:
        raise ValidationError("safetensors metadata lacks a 'parameters' dtype → count map")
    clean: dict[str, int] = {}
    for dtype, count in params.items():
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValidationError(f"safetensors parameter count for {dtype} is not a count")
        clean[str(dtype)] = count
    total = meta.get("total")
    if not isinstance(total, int) or isinstance(total, bool):
        total = sum(clean.values())
    return SafetensorsInfo(clean, total)


def resolve_params(
    config: Mapping[str, Any] | ModelShape, safetensors: Mapping[str, Any] | None = None
) -> ParamBreakdown:
    """The count to use: safetensors metadata when present and meaningful, else config.json.

    Packed-int (AWQ/GPTQ) checkpoints report packed elements, so their config count is kept; a
    checkpoint holding MTP layers is reduced by the MTP estimate, since vLLM does not load them.
    """
    breakdown = count_params(config)
    if safetensors is None:
        return breakdown
    info = read_safetensors(safetensors)
    if info.packed_int:
        note = (
            f"safetensors reports {info.total:,} elements, but packed int32 AWQ/GPTQ weights hide "
            "8 weights each; using the config.json count"
        )
        return ParamBreakdown(
            breakdown.groups, "config.json", None, breakdown.mtp_params, (*breakdown.notes, note)
        )
    total = info.total
    note = f"parameter count from safetensors metadata ({info.total:,}), preferred over config.json"
    if breakdown.mtp_params and total > breakdown.config_total:
        total = max(total - breakdown.mtp_params, breakdown.config_total)
        note += f"; minus ~{breakdown.mtp_params:,} MTP params vLLM does not load"
    return ParamBreakdown(
        breakdown.groups,
        "safetensors metadata",
        total,
        breakdown.mtp_params,
        (*breakdown.notes, note),
    )
