"""Storage formats: what a checkpoint is quantized with, and what an operator asks for.

The storage dtype comes from ``quantization_config``, never from ``torch_dtype`` (DeepSeek-V3 says
``bfloat16`` on an FP8 checkpoint). GGUF sizes use llama.cpp's own numbers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from modelarium.core.errors import UsageError

Method = Literal[
    "none",
    "fp8",
    "int8",
    "awq",
    "gptq",
    "compressed-tensors",
    "bitsandbytes",
    "nvfp4",
    "mxfp4",
    "gguf",
]

# Bits per weight of whole GGUF files. Mixed recipes (Q4_K_M ...) use llama-quantize's reference
# sizes for Llama-3-8B (GiB × 2^30 × 8 / 8,030,261,248 params); single types use ggml block sizes
# (Q4_0: 18 B per 32 weights = 4.5 bpw) or the bpw llama-quantize prints for i-quants.
_LLAMA3_8B = 8_030_261_248


def _gib_bpw(gib: float) -> float:
    return round(gib * 2**30 * 8 / _LLAMA3_8B, 3)


GGUF_BITS_PER_WEIGHT: dict[str, float] = {
    "F32": 32.0,
    "F16": 16.0,
    "BF16": 16.0,
    "Q8_0": _gib_bpw(7.96),
    "Q6_K": _gib_bpw(6.14),
    "Q5_K_M": _gib_bpw(5.33),
    "Q5_K_S": _gib_bpw(5.21),
    "Q5_1": _gib_bpw(5.65),
    "Q5_0": _gib_bpw(5.21),
    "Q4_K_M": _gib_bpw(4.58),
    "Q4_K_S": _gib_bpw(4.37),
    "Q4_1": _gib_bpw(4.78),
    "Q4_0": _gib_bpw(4.34),
    "Q3_K_L": _gib_bpw(4.03),
    "Q3_K_M": _gib_bpw(3.74),
    "Q3_K_S": _gib_bpw(3.41),
    "Q2_K": _gib_bpw(2.96),
    "Q2_K_S": _gib_bpw(2.96),
    "IQ4_NL": 4.5,
    "IQ4_XS": 4.25,
    "IQ3_M": 3.66,
    "IQ3_S": 3.44,
    "IQ3_XS": 3.3,
    "IQ3_XXS": 3.06,
    "IQ2_M": 2.7,
    "IQ2_S": 2.5,
    "IQ2_XS": 2.31,
    "IQ2_XXS": 2.06,
    "IQ1_M": 1.75,
    "IQ1_S": 1.56,
}
_GGUF_ALIASES = {"Q4_K": "Q4_K_M", "Q5_K": "Q5_K_M", "Q3_K": "Q3_K_M"}


@dataclass(frozen=True)
class Quantization:
    """How Linear weights are stored; non-Linear tensors stay 16-bit unless ``whole_model``."""

    method: Method
    bits: float
    group_size: int | None = None
    label: str = ""
    zero_point: bool = True
    g_idx: bool = False
    double_quant: bool = False  # bitsandbytes nested quantization of the absmax constants
    fp8_block: int | None = None  # FP8 block-scaled checkpoints (DeepSeek-V3: 128×128)
    whole_model: bool = False  # GGUF and explicit fp32/fp16: every tensor at `bits`
    from_checkpoint: bool = True
    vllm_flag: str | None = None  # value for --quantization when vLLM must quantize on load

    @property
    def is_quantized(self) -> bool:
        return self.method != "none"

    @property
    def needs_fp16_activations(self) -> bool:
        return self.method in ("awq", "gptq")


BF16 = Quantization("none", 16, label="bf16")


def _unquantized(dtype: str) -> Quantization:
    if dtype in ("float32", "fp32", "float"):
        # vLLM --dtype auto loads fp32 checkpoints as bf16/fp16, so they weigh 2 B per param.
        return Quantization("none", 16, label="fp32 checkpoint, loaded as 16-bit")
    if dtype in ("float16", "fp16", "half"):
        return Quantization("none", 16, label="fp16")
    return BF16


def _int_field(cfg: Mapping[str, Any], *keys: str) -> int | None:
    for key in keys:
        value = cfg.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _compressed_tensors(qc: Mapping[str, Any]) -> Quantization:
    groups = qc.get("config_groups") or {}
    weights: Mapping[str, Any] = {}
    for group in groups.values() if isinstance(groups, Mapping) else ():
        if isinstance(group, Mapping) and isinstance(group.get("weights"), Mapping):
            weights = group["weights"]
            break
    bits = _int_field(weights, "num_bits") or 8
    fmt = str(qc.get("format") or "")
    if bits == 4 and weights.get("type") == "float":
        return Quantization("nvfp4", 4, 16, "compressed-tensors NVFP4", zero_point=False)
    group = _int_field(weights, "group_size")
    if bits >= 8:
        label = (
            "compressed-tensors FP8"
            if weights.get("type") == "float"
            else "compressed-tensors INT8"
        )
        return Quantization("compressed-tensors", 8, group, label, zero_point=False)
    return Quantization(
        "compressed-tensors",
        bits,
        group or None,
        f"compressed-tensors W{bits}A16 ({fmt or 'pack-quantized'})",
        zero_point=not weights.get("symmetric", True),
    )


def detect_quantization(config: Mapping[str, Any], torch_dtype: str = "bfloat16") -> Quantization:
    """The checkpoint's storage format from ``quantization_config`` (or ``compression_config``)."""
    qc = config.get("quantization_config") or config.get("compression_config")
    if not isinstance(qc, Mapping):
        return _unquantized(torch_dtype)
    method = str(qc.get("quant_method") or qc.get("quant_algo") or "").lower()
    if method == "awq":
        bits = _int_field(qc, "bits", "w_bit") or 4
        group = _int_field(qc, "group_size", "q_group_size") or 128
        return Quantization(
            "awq",
            bits,
            group,
            f"AWQ {bits}-bit g{group}",
            zero_point=bool(qc.get("zero_point", True)),
        )
    if method in ("gptq", "gptq_marlin"):
        bits = _int_field(qc, "bits") or 4
        group = _int_field(qc, "group_size") or 128
        label = f"GPTQ {bits}-bit " + ("per-channel" if group == -1 else f"g{group}")
        return Quantization(
            "gptq",
            bits,
            None if group == -1 else group,
            label,
            g_idx=True,
            zero_point=not qc.get("sym", True),
        )
    if method in ("fp8", "fbgemm_fp8", "ptpc_fp8"):
        block = qc.get("weight_block_size")
        size = int(block[0]) if isinstance(block, list) and block else None
        label = f"FP8 block {size}×{size}" if size else "FP8"
        return Quantization("fp8", 8, label=label, fp8_block=size, zero_point=False)
    if method == "compressed-tensors":
        return _compressed_tensors(qc)
    if method == "bitsandbytes":
        if qc.get("load_in_8bit"):
            return Quantization("bitsandbytes", 8, label="bitsandbytes 8-bit", zero_point=False)
        double = bool(qc.get("bnb_4bit_use_double_quant"))
        kind = str(qc.get("bnb_4bit_quant_type") or "nf4")
        return Quantization(
            "bitsandbytes",
            4,
            64,
            f"bitsandbytes 4-bit {kind}",
            zero_point=False,
            double_quant=double,
        )
    if method in ("modelopt", "modelopt_fp4", "nvfp4") or "fp4" in method:
        nested = qc.get("quantization")
        algo = str(
            qc.get("quant_algo")
            or (nested.get("quant_algo") if isinstance(nested, Mapping) else "")
            or ""
        )
        if "FP8" in algo.upper():
            return Quantization("fp8", 8, label="ModelOpt FP8", zero_point=False)
        if method == "mxfp4":
            return Quantization("mxfp4", 4, 32, "MXFP4 (MoE experts)", zero_point=False)
        return Quantization("nvfp4", 4, 16, "NVFP4", zero_point=False)
    if method == "mxfp4":
        return Quantization("mxfp4", 4, 32, "MXFP4 (MoE experts)", zero_point=False)
    bits = _int_field(qc, "bits", "w_bit")
    if bits:
        group = _int_field(qc, "group_size")
        return Quantization(
            "gptq",
            bits,
            group if group and group > 0 else None,
            f"{method or 'unknown'} {bits}-bit (sized like GPTQ)",
        )
    return _unquantized(torch_dtype)


_SPELLINGS: dict[str, Quantization] = {
    "bf16": BF16,
    "bfloat16": BF16,
    "fp16": Quantization("none", 16, label="fp16"),
    "float16": Quantization("none", 16, label="fp16"),
    "half": Quantization("none", 16, label="fp16"),
    "fp32": Quantization("none", 32, label="fp32", whole_model=True),
    "float32": Quantization("none", 32, label="fp32", whole_model=True),
    "fp8": Quantization("fp8", 8, label="FP8", zero_point=False, vllm_flag="fp8"),
    "float8": Quantization("fp8", 8, label="FP8", zero_point=False, vllm_flag="fp8"),
    "int8": Quantization("int8", 8, label="INT8 W8A8", zero_point=False),
    "w8a8": Quantization("int8", 8, label="INT8 W8A8", zero_point=False),
    "awq": Quantization("awq", 4, 128, "AWQ 4-bit g128"),
    "gptq": Quantization("gptq", 4, 128, "GPTQ 4-bit g128", g_idx=True),
    "int4": Quantization("awq", 4, 128, "4-bit g128 (AWQ-style)"),
    "w4a16": Quantization("awq", 4, 128, "4-bit g128 (AWQ-style)"),
    "4bit": Quantization("awq", 4, 128, "4-bit g128 (AWQ-style)"),
    "bnb": Quantization("bitsandbytes", 4, 64, "bitsandbytes 4-bit nf4", vllm_flag="bitsandbytes"),
    "bitsandbytes": Quantization(
        "bitsandbytes", 4, 64, "bitsandbytes 4-bit nf4", vllm_flag="bitsandbytes"
    ),
    "nf4": Quantization("bitsandbytes", 4, 64, "bitsandbytes 4-bit nf4", vllm_flag="bitsandbytes"),
    "nvfp4": Quantization("nvfp4", 4, 16, "NVFP4", zero_point=False),
    "mxfp4": Quantization("mxfp4", 4, 32, "MXFP4", zero_point=False),
}
_METHOD_BITS_RE = re.compile(
    r"^(awq|gptq|int|bnb|bitsandbytes)(?:[-_]?(?:int)?(\d+)(?:bit)?)?(?:[-_]?g(\d+))?$"
)


def parse_quant(text: str) -> Quantization:
    """An operator's spelling: ``bf16``, ``fp8``, ``awq``, ``gptq-8bit``, ``awq-g64``, ``Q4_K_M``.

    Names that need a pre-quantized checkpoint (AWQ, GPTQ, GGUF) size that variant of the model.
    """
    raw = str(text).strip()
    key = raw.lower().replace(" ", "")
    if key.startswith("gguf"):
        key = key[4:].lstrip(":-_")
    if key in _SPELLINGS:
        return _SPELLINGS[key]
    gguf = _GGUF_ALIASES.get(key.upper(), key.upper())
    if gguf in GGUF_BITS_PER_WEIGHT:
        return Quantization(
            "gguf",
            GGUF_BITS_PER_WEIGHT[gguf],
            label=f"GGUF {gguf}",
            whole_model=True,
            zero_point=False,
        )
    match = _METHOD_BITS_RE.match(key.replace("-bit", "bit"))
    if match:
        method, group = match.group(1), int(match.group(3) or 128)
        bits = int(match.group(2) or (8 if method == "int" else 4))
        if bits not in (2, 3, 4, 8):
            raise UsageError(f"unsupported bit width in {raw!r} (4 or 8)")
        if method == "gptq":
            return Quantization("gptq", bits, group, f"GPTQ {bits}-bit g{group}", g_idx=True)
        if method in ("bnb", "bitsandbytes"):
            return Quantization(
                "bitsandbytes", bits, 64, f"bitsandbytes {bits}-bit", vllm_flag="bitsandbytes"
            )
        if method == "int" and bits == 8:
            return _SPELLINGS["int8"]
        return Quantization("awq", bits, group, f"AWQ {bits}-bit g{group}")
    known = "bf16, fp16, fp32, fp8, int8, awq, gptq, gptq-8bit, bnb, nvfp4, Q4_K_M, Q8_0, ..."
    raise UsageError(f"unknown quantization {raw!r} (known: {known})")
