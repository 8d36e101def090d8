"""Read an HF ``config.json`` into the few numbers that decide memory: one normalised shape.

config.json spells the same thing many ways (``num_local_experts`` / ``num_experts`` /
``n_routed_experts``, nested ``text_config``, ``rope_scaling`` / ``rope_parameters``); doing the
normalisation once keeps the parameter count, the KV cache and the TP rules consistent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from modelarium.core.errors import ValidationError

# Model types whose attention has a bias on q/k/v although config.json does not say so.
_QKV_BIAS_TYPES = frozenset({"qwen2", "qwen2_moe", "qwen2_vl", "qwen2_5_vl", "qwen2_audio"})
# Model types with RMSNorm over q and k per head (2 × head_dim params per layer).
_QK_NORM_TYPES = frozenset({"qwen3", "qwen3_moe", "gemma3", "gemma3_text", "olmoe"})
# Gemma 2/3 put four RMSNorms in each layer (pre/post attention and pre/post MLP).
_FOUR_NORM_TYPES = frozenset({"gemma2", "gemma3", "gemma3_text"})
# Families whose MLP is up → act → down (two matrices) instead of gated SwiGLU/GeGLU (three).
_UNGATED_MLP_TYPES = frozenset(
    {"gpt2", "gpt_neox", "gpt_bigcode", "gptj", "falcon", "phi", "starcoder2", "bloom", "opt"}
)
# vLLM's `_get_and_verify_max_len` takes the smallest of these keys.
_MAX_LEN_KEYS = (
    "max_position_embeddings",
    "n_positions",
    "max_seq_len",
    "seq_length",
    "model_max_length",
    "max_target_positions",
    "max_sequence_length",
    "max_seq_length",
    "seq_len",
)
_DEFAULT_MAX_LEN = 2048  # vLLM's fallback when config.json names no length


@dataclass(frozen=True)
class VisionTower:
    """Rough shape of a multimodal wrapper's vision encoder (counted approximately)."""

    hidden_size: int
    intermediate_size: int
    num_layers: int
    patch_size: int


@dataclass(frozen=True)
class ModelShape:
    """Everything the estimator needs from config.json, with defaults already applied."""

    architecture: str | None
    model_type: str
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    vocab_size: int
    intermediate_size: int
    tie_word_embeddings: bool
    torch_dtype: str
    qkv_bias: bool = False
    o_bias: bool = False
    mlp_bias: bool = False
    qk_norm: bool = False
    norms_per_layer: int = 2
    gated_mlp: bool = True
    # Mixture of experts (num_experts == 0 means dense).
    num_experts: int = 0
    experts_per_token: int = 0
    moe_intermediate_size: int = 0
    shared_experts: int = 0
    shared_expert_intermediate_size: int = 0
    shared_expert_gate: bool = False
    router_bias: bool = False
    moe_layers: tuple[int, ...] = ()
    # Multi-head latent attention (DeepSeek-V2/V3); kv_lora_rank == 0 means plain attention.
    kv_lora_rank: int = 0
    q_lora_rank: int = 0
    qk_nope_head_dim: int = 0
    qk_rope_head_dim: int = 0
    v_head_dim: int = 0
    mtp_layers: int = 0
    # Attention pattern: per-layer kind, "full", "sliding" or "none" (Mamba / linear attention).
    layer_kinds: tuple[str, ...] = ()
    sliding_window: int | None = None
    max_model_len: int = _DEFAULT_MAX_LEN
    max_len_reason: str = ""
    quantization_config: Mapping[str, Any] | None = None
    has_auto_map: bool = False
    vision: VisionTower | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def is_moe(self) -> bool:
        return self.num_experts > 0

    @property
    def is_mla(self) -> bool:
        return self.kv_lora_rank > 0

    @property
    def dense_layers(self) -> int:
        return self.num_layers - len(self.moe_layers)

    @property
    def attention_layers(self) -> int:
        return sum(1 for kind in self.layer_kinds if kind != "none")

    @property
    def sliding_layers(self) -> int:
        return sum(1 for kind in self.layer_kinds if kind == "sliding")


def _first(cfg: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        value = cfg.get(key)
        if value is not None:
            return value
    return None


def _int(cfg: Mapping[str, Any], *keys: str, default: int | None = None) -> int:
    value = _first(cfg, *keys)
    if value is None:
        if default is None:
            raise ValidationError(f"config.json lacks {keys[0]}, needed to size the model")
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValidationError(f"config.json {keys[0]} is not a non-negative number: {value!r}")
    return int(value)


def text_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The decoder's config: multimodal wrappers nest it under ``text_config``.

    Top-level keys that describe the checkpoint as a whole (quantization, dtype, architectures)
    are kept when the nested dict lacks them.
    """
    if not isinstance(config, Mapping):
        raise ValidationError("config.json must be a JSON object")
    nested = config.get("text_config") or config.get("llm_config")
    if isinstance(nested, Mapping) and ("hidden_size" in nested or "num_hidden_layers" in nested):
        merged = dict(nested)
        for key in (
            "architectures",
            "quantization_config",
            "compression_config",
            "torch_dtype",
            "dtype",
            "auto_map",
            "tie_word_embeddings",
        ):
            if key not in merged and key in config:
                merged[key] = config[key]
        return merged
    return dict(config)


def _rope_scaling(cfg: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for key in ("rope_scaling", "rope_parameters"):
        value = cfg.get(key)
        if isinstance(value, Mapping) and value.get("factor") is not None:
            return value
    return None


def derive_max_model_len(cfg: Mapping[str, Any], model_type: str) -> tuple[int, str]:
    """vLLM's default ``--max-model-len`` for this config, and how it was reached.

    Smallest length key, times the RoPE factor except for llama3/longrope/su (already in the
    length) and Gemma 3; YaRN multiplies ``original_max_position_embeddings`` instead.
    """
    found = [
        (int(cfg[key]), key)
        for key in _MAX_LEN_KEYS
        if isinstance(cfg.get(key), int) and not isinstance(cfg.get(key), bool) and cfg[key] > 0
    ]
    if not found:
        return _DEFAULT_MAX_LEN, f"no length in config.json; vLLM falls back to {_DEFAULT_MAX_LEN}"
    length, key = min(found)
    reason = f"{key} = {length}"
    scaling = _rope_scaling(cfg)
    if scaling is None or model_type.startswith("gemma3"):
        return length, reason
    rope_type = str(scaling.get("rope_type") or scaling.get("type") or "").lower()
    if rope_type in ("su", "longrope", "llama3"):
        return length, f"{reason} ({rope_type} RoPE: not multiplied)"
    factor = float(scaling["factor"])
    if rope_type == "yarn" and scaling.get("original_max_position_embeddings"):
        original = int(scaling["original_max_position_embeddings"])
        return int(
            original * factor
        ), f"yarn: original_max_position_embeddings {original} × {factor:g}"
    return int(length * factor), f"{reason} × rope factor {factor:g}"


def _layer_kinds(cfg: Mapping[str, Any], model_type: str, num_layers: int) -> tuple[str, ...]:
    """Per-layer attention kind, following how vLLM allocates KV for each family."""
    window = cfg.get("sliding_window")
    layer_types = cfg.get("layer_types")
    if isinstance(layer_types, list) and len(layer_types) == num_layers:
        kinds = []
        for kind in layer_types:
            text = str(kind).lower()
            if "linear" in text or "mamba" in text or "conv" in text:
                kinds.append("none")
            elif "sliding" in text or "local" in text or "chunked" in text:
                kinds.append("sliding" if window else "full")
            else:
                kinds.append("full")
        return tuple(kinds)
    if not window:
        return ("full",) * num_layers
    if model_type == "gemma2":
        # Gemma 2 alternates: even layers local (sliding), odd layers global.
        return tuple("sliding" if i % 2 == 0 else "full" for i in range(num_layers))
    if model_type.startswith("gemma3"):
        pattern = int(cfg.get("sliding_window_pattern") or 6)
        return tuple("full" if (i + 1) % pattern == 0 else "sliding" for i in range(num_layers))
    if model_type in ("mistral", "mixtral"):
        return ("sliding",) * num_layers
    if model_type.startswith("qwen2") and cfg.get("use_sliding_window"):
        first = int(cfg.get("max_window_layers") or 0)
        return tuple("sliding" if i >= first else "full" for i in range(num_layers))
    # Other families (Phi-3's 2047, Qwen's unused 131072) are sized as full attention: safe side.
    return ("full",) * num_layers


def _moe_layers(cfg: Mapping[str, Any], num_layers: int, num_experts: int) -> tuple[int, ...]:
    if num_experts == 0:
        return ()
    if "first_k_dense_replace" in cfg or "moe_layer_freq" in cfg:  # DeepSeek
        first = int(cfg.get("first_k_dense_replace") or 0)
        freq = int(cfg.get("moe_layer_freq") or 1)
        return tuple(i for i in range(num_layers) if i >= first and i % freq == 0)
    step = int(cfg.get("decoder_sparse_step") or 1)  # Qwen2-MoE / Qwen3-MoE
    dense_only = set(cfg.get("mlp_only_layers") or [])
    return tuple(i for i in range(num_layers) if i not in dense_only and (i + 1) % step == 0)


def _vision(config: Mapping[str, Any]) -> VisionTower | None:
    vision = config.get("vision_config")
    if not isinstance(vision, Mapping):
        return None
    hidden = _first(vision, "hidden_size", "embed_dim", "width")
    layers = _first(vision, "num_hidden_layers", "depth", "num_layers")
    if not isinstance(hidden, int) or not isinstance(layers, int):
        return None
    intermediate = _first(vision, "intermediate_size", "mlp_dim")
    if not isinstance(intermediate, int):
        intermediate = 4 * hidden
    patch = vision.get("patch_size")
    return VisionTower(hidden, intermediate, layers, patch if isinstance(patch, int) else 14)


def read_model_config(config: Mapping[str, Any]) -> ModelShape:
    """Normalise config.json; raises ValidationError if it lacks what sizing needs."""
    cfg = text_config(config)
    archs = cfg.get("architectures") or config.get("architectures")
    architecture = archs[0] if isinstance(archs, list) and archs else None
    model_type = str(cfg.get("model_type") or config.get("model_type") or "").lower()
    notes: list[str] = []

    hidden = _int(cfg, "hidden_size", "n_embd", "d_model")
    layers = _int(cfg, "num_hidden_layers", "n_layer", "num_layers")
    heads = _int(cfg, "num_attention_heads", "n_head", "num_heads")
    if hidden == 0 or layers == 0 or heads == 0:
        raise ValidationError("config.json has zero hidden_size, layers or attention heads")
    kv_heads = _int(cfg, "num_key_value_heads", "n_head_kv", "num_kv_heads", default=heads)
    if cfg.get("multi_query") is True:
        kv_heads = 1
    head_dim = _int(cfg, "head_dim", default=hidden // heads)
    vocab = _int(cfg, "vocab_size", "padded_vocab_size")
    intermediate = _first(cfg, "intermediate_size", "n_inner", "ffn_dim", "ffn_hidden_size")
    if not isinstance(intermediate, int):
        intermediate = 4 * hidden
        notes.append(f"config.json names no intermediate_size; assumed 4 × hidden = {intermediate}")

    tie_default = model_type.startswith("gemma")
    tie = cfg.get("tie_word_embeddings")
    tie = bool(tie) if tie is not None else tie_default
    dtype = str(cfg.get("torch_dtype") or cfg.get("dtype") or "bfloat16").lower()

    attention_bias = bool(cfg.get("attention_bias") or cfg.get("bias"))
    qkv_bias = model_type in _QKV_BIAS_TYPES or attention_bias or bool(cfg.get("qkv_bias"))
    o_bias = attention_bias and model_type not in _QKV_BIAS_TYPES

    num_experts = _int(
        cfg, "num_local_experts", "num_experts", "n_routed_experts", "moe_num_experts", default=0
    )
    kv_lora = _int(cfg, "kv_lora_rank", default=0)
    moe_layers = _moe_layers(cfg, layers, num_experts)
    shared = _int(cfg, "n_shared_experts", "num_shared_experts", default=0)
    shared_size = _int(cfg, "shared_expert_intermediate_size", default=0)
    moe_intermediate = _int(cfg, "moe_intermediate_size", default=intermediate)
    if shared_size and not shared:
        shared = 1  # Qwen2-MoE: one shared expert of its own width
    elif shared and not shared_size:
        shared_size = moe_intermediate  # DeepSeek: shared experts as wide as routed ones

    max_len, reason = derive_max_model_len(cfg, model_type)
    quant = cfg.get("quantization_config") or cfg.get("compression_config")

    return ModelShape(
        architecture=architecture,
        model_type=model_type,
        hidden_size=hidden,
        num_layers=layers,
        num_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=head_dim,
        vocab_size=vocab,
        intermediate_size=intermediate,
        tie_word_embeddings=tie,
        torch_dtype=dtype,
        qkv_bias=qkv_bias,
        o_bias=o_bias,
        mlp_bias=bool(cfg.get("mlp_bias")),
        qk_norm=model_type in _QK_NORM_TYPES or bool(cfg.get("use_qk_norm") or cfg.get("qk_norm")),
        norms_per_layer=4 if model_type in _FOUR_NORM_TYPES else 2,
        gated_mlp=model_type not in _UNGATED_MLP_TYPES,
        num_experts=num_experts,
        experts_per_token=_int(cfg, "num_experts_per_tok", "moe_topk", default=0),
        moe_intermediate_size=moe_intermediate if num_experts else 0,
        shared_experts=shared if num_experts else 0,
        shared_expert_intermediate_size=shared_size if num_experts else 0,
        shared_expert_gate=bool(num_experts and shared_size and model_type == "qwen2_moe"),
        router_bias=cfg.get("topk_method") == "noaux_tc",
        moe_layers=moe_layers,
        kv_lora_rank=kv_lora,
        q_lora_rank=_int(cfg, "q_lora_rank", default=0) if kv_lora else 0,
        qk_nope_head_dim=_int(cfg, "qk_nope_head_dim", default=0) if kv_lora else 0,
        qk_rope_head_dim=_int(cfg, "qk_rope_head_dim", default=0) if kv_lora else 0,
        v_head_dim=_int(cfg, "v_head_dim", default=head_dim) if kv_lora else 0,
        mtp_layers=_int(cfg, "num_nextn_predict_layers", default=0),
        layer_kinds=_layer_kinds(cfg, model_type, layers),
        sliding_window=cfg.get("sliding_window") or None,
        max_model_len=max_len,
        max_len_reason=reason,
        quantization_config=quant if isinstance(quant, Mapping) else None,
        has_auto_map=isinstance(config.get("auto_map"), Mapping),
        vision=_vision(config),
        notes=tuple(notes),
    )
