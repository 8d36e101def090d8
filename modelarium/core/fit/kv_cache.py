"""KV-cache bytes per token and per GPU, following vLLM's ``kv_cache_interface`` page sizes.

Per layer and token vLLM stores K and V for the KV heads this rank owns:
``2 × max(1, K // TP) × head_dim × dtype`` (heads are replicated once TP > K). MLA stores one
compressed latent of ``kv_lora_rank + qk_rope_head_dim`` with no ×2 and no TP split.
Sliding-window layers hold ``window − 1 + max_num_batched_tokens`` tokens plus one block.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelarium.core.errors import UsageError
from modelarium.core.fit.model_config import ModelShape

BLOCK_SIZE = 16  # vLLM DEFAULT_BLOCK_SIZE
# Conservative max_num_batched_tokens: vLLM's offline default (the API server often uses 2048).
DEFAULT_MAX_NUM_BATCHED_TOKENS = 8192

_KV_DTYPE_BYTES = {
    "auto": 2,
    "bfloat16": 2,
    "bf16": 2,
    "float16": 2,
    "fp16": 2,
    "half": 2,
    "fp8": 1,
    "fp8_e4m3": 1,
    "fp8_e5m2": 1,
}


def kv_dtype_bytes(kv_cache_dtype: str) -> int:
    """Bytes per cached element for a ``--kv-cache-dtype`` value (``auto`` = model's 16-bit)."""
    key = str(kv_cache_dtype).strip().lower()
    if key not in _KV_DTYPE_BYTES:
        raise UsageError(
            f"unknown KV-cache dtype {kv_cache_dtype!r} (auto, bfloat16, fp16, fp8, fp8_e5m2)"
        )
    return _KV_DTYPE_BYTES[key]


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class KvCacheSpec:
    """KV layout of one GPU's share of the model."""

    full_layers: int
    sliding_layers: int
    kv_heads_per_gpu: int
    head_size: int  # bytes-relevant width per head (MLA: kv_lora_rank + rope dim)
    dtype_bytes: int
    mla: bool
    sliding_window: int | None
    max_num_batched_tokens: int = DEFAULT_MAX_NUM_BATCHED_TOKENS

    @property
    def bytes_per_token_per_layer(self) -> int:
        factor = 1 if self.mla else 2
        return factor * self.kv_heads_per_gpu * self.head_size * self.dtype_bytes

    @property
    def bytes_per_token(self) -> int:
        """Per token across every attention layer, as if all were full attention."""
        return (self.full_layers + self.sliding_layers) * self.bytes_per_token_per_layer

    def sliding_tokens(self, tokens: int) -> int:
        """Tokens a sliding-window layer keeps for one sequence of ``tokens``, in whole blocks."""
        if not self.sliding_window:
            return _cdiv(tokens, BLOCK_SIZE) * BLOCK_SIZE
        kept = min(self.sliding_window - 1 + self.max_num_batched_tokens, tokens)
        return (_cdiv(kept, BLOCK_SIZE) + 1) * BLOCK_SIZE

    def bytes_for(self, tokens: int) -> int:
        """KV bytes one sequence of ``tokens`` needs on this GPU (whole 16-token blocks)."""
        if tokens <= 0:
            return 0
        per_layer = self.bytes_per_token_per_layer
        full = self.full_layers * _cdiv(tokens, BLOCK_SIZE) * BLOCK_SIZE * per_layer
        return full + self.sliding_layers * self.sliding_tokens(tokens) * per_layer

    def max_tokens(self, budget: float, cap: int) -> int:
        """Largest sequence length ≤ ``cap`` whose KV fits in ``budget`` (vLLM's binary search)."""
        if budget <= 0 or self.bytes_for(1) > budget:
            return 0
        low, high = 1, cap
        while low < high:
            mid = (low + high + 1) // 2
            if self.bytes_for(mid) <= budget:
                low = mid
            else:
                high = mid - 1
        return low

    def formula(self) -> str:
        """``2 × 32 layers × 8 KV heads × 128 head_dim × 2 B = 128.0 KiB`` for the arithmetic."""
        layers = self.full_layers + self.sliding_layers
        dtype = f"{self.dtype_bytes} B"
        if self.mla:
            text = f"{layers} layers × {self.head_size} latent (kv_lora_rank + rope) × {dtype}"
        else:
            text = (
                f"2 × {layers} layers × {self.kv_heads_per_gpu} KV heads × "
                f"{self.head_size} head_dim × {dtype}"
            )
        return f"{text} = {self.bytes_per_token / 1024:.1f} KiB"


def kv_cache_spec(
    shape: ModelShape,
    kv_cache_dtype: str = "auto",
    tp: int = 1,
    max_num_batched_tokens: int = DEFAULT_MAX_NUM_BATCHED_TOKENS,
) -> KvCacheSpec:
    """The per-GPU KV layout for ``shape`` at tensor-parallel size ``tp``."""
    dtype_bytes = kv_dtype_bytes(kv_cache_dtype)
    kinds = shape.layer_kinds or ("full",) * shape.num_layers
    full = sum(1 for k in kinds if k == "full")
    sliding = sum(1 for k in kinds if k == "sliding")
    if shape.is_mla:
        heads, head_size = 1, shape.kv_lora_rank + shape.qk_rope_head_dim
    else:
        heads, head_size = max(1, shape.num_kv_heads // tp), shape.head_dim
    return KvCacheSpec(
        full_layers=full,
        sliding_layers=sliding,
        kv_heads_per_gpu=heads,
        head_size=head_size,
        dtype_bytes=dtype_bytes,
        mla=shape.is_mla,
        sliding_window=shape.sliding_window if sliding else None,
        max_num_batched_tokens=max_num_batched_tokens,
    )
