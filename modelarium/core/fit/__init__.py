"""GPU fit estimation for vLLM: parameters, weight bytes, KV cache, TP size, flags, arithmetic.

Pure functions over config.json dicts and GPU profiles; no I/O. See
``/work/shared/reference/gpu-fit-formulas.md`` for the formulas and their sources.
"""

from modelarium.core.fit.estimator import FitResult, estimate
from modelarium.core.fit.gpus import (
    GPU_CATALOG,
    GpuProfile,
    find_gpu,
    get_gpu,
    gpu_from_gfd_labels,
)
from modelarium.core.fit.kv_cache import (
    BLOCK_SIZE,
    DEFAULT_MAX_NUM_BATCHED_TOKENS,
    KvCacheSpec,
    kv_cache_spec,
    kv_dtype_bytes,
)
from modelarium.core.fit.model_config import (
    ModelShape,
    derive_max_model_len,
    read_model_config,
    text_config,
)
from modelarium.core.fit.params import (
    ParamBreakdown,
    SafetensorsInfo,
    TensorGroup,
    count_params,
    read_safetensors,
    resolve_params,
)
from modelarium.core.fit.parsing import (
    format_gib,
    format_params,
    parse_context,
    parse_param_size,
)
from modelarium.core.fit.plan import (
    DEFAULT_MAX_NUM_SEQS,
    FRAMEWORK_OVERHEAD_BYTES,
    MIN_USEFUL_CONTEXT,
    VLLM_DEFAULT_GPU_MEMORY_UTILIZATION,
    MemoryPlan,
)
from modelarium.core.fit.quantization import (
    GGUF_BITS_PER_WEIGHT,
    Quantization,
    detect_quantization,
    parse_quant,
)
from modelarium.core.fit.tensor_parallel import tp_problems, valid_tp_sizes
from modelarium.core.fit.weights import WeightBytes, checkpoint_weight_bytes, weight_bytes

__all__ = [
    "BLOCK_SIZE",
    "DEFAULT_MAX_NUM_BATCHED_TOKENS",
    "DEFAULT_MAX_NUM_SEQS",
    "FRAMEWORK_OVERHEAD_BYTES",
    "GGUF_BITS_PER_WEIGHT",
    "GPU_CATALOG",
    "MIN_USEFUL_CONTEXT",
    "VLLM_DEFAULT_GPU_MEMORY_UTILIZATION",
    "FitResult",
    "GpuProfile",
    "KvCacheSpec",
    "MemoryPlan",
    "ModelShape",
    "ParamBreakdown",
    "Quantization",
    "SafetensorsInfo",
    "TensorGroup",
    "WeightBytes",
    "checkpoint_weight_bytes",
    "count_params",
    "derive_max_model_len",
    "detect_quantization",
    "estimate",
    "find_gpu",
    "format_gib",
    "format_params",
    "get_gpu",
    "gpu_from_gfd_labels",
    "kv_cache_spec",
    "kv_dtype_bytes",
    "parse_context",
    "parse_param_size",
    "parse_quant",
    "read_model_config",
    "read_safetensors",
    "resolve_params",
    "text_config",
    "tp_problems",
    "valid_tp_sizes",
    "weight_bytes",
]
