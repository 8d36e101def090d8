"""`/model search`: what is asked of the Hub, what is filtered here, and the per-row verdicts.

The Hub filters what it can (text, task, license tag, parameter ceiling, GGUF library tag, a
``model_type`` tag) and sorts; the rest needs config.json facts the listing carries (vLLM
architecture, quantization method, a fit check), so it is applied here to the top results. The
Hub-side half is the cache key: paging and local filters are answered from one cached listing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from modelarium.core.errors import ModelariumError, UsageError
from modelarium.core.fit import (
    FRAMEWORK_OVERHEAD_BYTES,
    VLLM_DEFAULT_GPU_MEMORY_UTILIZATION,
    GpuProfile,
    estimate,
    format_params,
    parse_param_size,
)
from modelarium.core.fit.params import SAFETENSORS_DTYPE_BYTES
from modelarium.core.hub.models import QUANT_METHODS, ModelSummary
from modelarium.core.vllm import ArchitectureCatalog

SORTS = {"downloads": "downloads", "likes": "likes", "recent": "last_modified"}
SEARCH_LIMIT = 100
"""Results asked of the Hub per search; local filters and pages work within them."""
MAX_TEXT = 100
MAX_WORD = 50
MAX_KEY = 512  # cache_entries.key
EXPAND = [
    "downloads",
    "likes",
    "tags",
    "pipeline_tag",
    "library_name",
    "lastModified",
    "gated",
    "safetensors",
    "gguf",
    "config",
    "cardData",
]


@dataclass(frozen=True)
class SearchQuery:
    text: str | None = None
    arch: str | None = None
    task: str | None = None
    license: str | None = None
    max_params: int | None = None
    quant: str | None = None
    fits: str | None = None
    sort: str = "downloads"

    def __post_init__(self) -> None:
        if self.text is not None and len(self.text) > MAX_TEXT:
            raise UsageError(f"search text is too long ({len(self.text)} > {MAX_TEXT} characters)")
        if self.sort not in SORTS:
            raise UsageError(f"--sort must be one of {', '.join(SORTS)}")
        if self.quant is not None and self.quant not in QUANT_METHODS:
            raise UsageError(f"--quant must be one of {', '.join(QUANT_METHODS)}")
        for name in ("arch", "task", "license"):
            value = getattr(self, name)
            if value is not None and (not value.strip() or len(value) > MAX_WORD or " " in value):
                raise UsageError(f"--{name} takes one word, e.g. --{name} {_EXAMPLES[name]}")

    @classmethod
    def build(cls, max_params: str | None = None, **values: Any) -> SearchQuery:
        size = parse_param_size(max_params) if max_params else None
        return cls(max_params=size, **values)

    @property
    def arch_is_class(self) -> bool:
        """``LlamaForCausalLM`` (a class: matched locally) vs ``llama`` (a Hub model_type tag)."""
        return bool(self.arch) and any(c.isupper() for c in self.arch or "")

    def hub_params(self) -> dict[str, Any]:
        """The arguments of ``HfApi.list_models`` this query needs (also the cache key)."""
        filters: list[str] = []
        if self.license:
            filters.append(f"license:{self.license.lower()}")
        if self.arch and not self.arch_is_class:
            filters.append(self.arch.lower())
        if self.quant == "gguf":
            filters.append("gguf")
        params: dict[str, Any] = {
            "search": self.text or None,
            "pipeline_tag": self.task or None,
            "filter": filters or None,
            "num_parameters": f"max:{_hub_size(self.max_params)}" if self.max_params else None,
            "sort": SORTS[self.sort],
            "limit": SEARCH_LIMIT,
        }
        return {k: v for k, v in params.items() if v is not None}

    def cache_key(self) -> str:
        key = json.dumps(
            self.hub_params(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        if len(key) > MAX_KEY:
            raise UsageError("search is too long: shorten the text or the filters")
        return key

    def describe(self) -> str:
        parts = [f'"{self.text}"' if self.text else "all models"]
        for name in ("arch", "task", "license", "quant", "fits"):
            value = getattr(self, name)
            if value:
                parts.append(f"{name} {value}")
        if self.max_params:
            parts.append(f"≤ {format_params(self.max_params)} params")
        parts.append(f"by {self.sort}")
        return ", ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "arch": self.arch,
            "task": self.task,
            "license": self.license,
            "max_params": self.max_params,
            "quant": self.quant,
            "fits": self.fits,
            "sort": self.sort,
        }


def _hub_size(count: int) -> str:
    """The Hub's spelling of a parameter count: ``8B``, ``500M``, else the plain number."""
    for unit, scale in (("T", 10**12), ("B", 10**9), ("M", 10**6), ("K", 10**3)):
        if count % scale == 0:
            return f"{count // scale}{unit}"
    return str(count)


_EXAMPLES = {"arch": "LlamaForCausalLM", "task": "text-generation", "license": "apache-2.0"}


@dataclass(frozen=True)
class FitMark:
    """A search row's fit verdict: ``yes``/``no``, ``approx`` when only weights were checked."""

    verdict: str  # "yes", "no" or "?"
    approx: bool = False
    detail: str = ""

    @property
    def label(self) -> str:
        return f"~{self.verdict}" if self.approx and self.verdict != "?" else self.verdict


@dataclass(frozen=True)
class SearchRow:
    model: ModelSummary
    vllm: str  # "yes", "no" or "?"
    architecture: str | None
    fit: FitMark | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.model.id,
            "params": self.model.params,
            "license": self.model.license,
            "downloads": self.model.downloads,
            "likes": self.model.likes,
            "pipeline_tag": self.model.pipeline_tag,
            "last_modified": self.model.last_modified,
            "quant": self.model.quant,
            "architecture": self.architecture,
            "vllm": self.vllm,
            "fits": self.fit.label if self.fit else None,
        }


@dataclass(frozen=True)
class SearchAnswer:
    query: SearchQuery
    rows: list[SearchRow]
    fetched: int  # results the Hub returned before local filters
    fetched_at: Any
    stale: bool = False
    note: str | None = None
    cached: bool = True
    gpu: GpuProfile | None = None
    warnings: list[str] = field(default_factory=list)


def vllm_support(model: ModelSummary, catalog: ArchitectureCatalog) -> tuple[str, str | None]:
    """("yes"|"no"|"?", architecture class) from the listing's config."""
    if not model.architectures:
        return "?", None
    arch = model.architectures[0]
    return ("yes" if catalog.is_supported(arch) else "no"), arch


def _runtime_bytes(safetensors: Mapping[str, Any]) -> float:
    """Bytes vLLM holds for these tensors: fp32 checkpoints load as 16-bit."""
    params = safetensors.get("parameters") or {}
    return float(
        sum(
            n * (2 if dt.upper() == "F32" else SAFETENSORS_DTYPE_BYTES.get(dt.upper(), 2))
            for dt, n in params.items()
        )
    )


def quick_fit(model: ModelSummary, gpu: GpuProfile) -> FitMark:
    """Does the model fit ``gpu`` (up to its per-node count)?

    With a complete config.json in the listing this is the real estimator at its default
    context; the Hub often lists only part of the config, and then the check is weights +
    framework overhead against the memory budget, marked approximate.
    """
    if model.config:
        try:
            result = estimate(model.config, gpu, safetensors=model.safetensors)
            return FitMark("yes" if result.fits else "no", detail=result.summary())
        except ModelariumError:
            pass
        except (KeyError, TypeError, ValueError, ZeroDivisionError):
            pass  # partial listing configs: fall back to the weights-only check
    if not model.safetensors:
        return FitMark("?", detail="no parameter count on the Hub")
    weights = _runtime_bytes(model.safetensors)
    budget = gpu.memory_bytes * VLLM_DEFAULT_GPU_MEMORY_UTILIZATION
    per_gpu = weights / gpu.count + FRAMEWORK_OVERHEAD_BYTES
    fits = per_gpu < budget
    detail = (
        f"weights {weights / 2**30:.1f} GiB / {gpu.count} + 2 GiB overhead vs "
        f"{budget / 2**30:.1f} GiB budget per GPU (no KV cache checked)"
    )
    return FitMark("yes" if fits else "no", approx=True, detail=detail)


def filter_rows(
    query: SearchQuery,
    models: list[ModelSummary],
    catalog: ArchitectureCatalog,
    gpu: GpuProfile | None,
) -> list[SearchRow]:
    rows: list[SearchRow] = []
    for model in models:
        wanted = query.arch.lower() if query.arch and query.arch_is_class else None
        if wanted and wanted not in {a.lower() for a in model.architectures}:
            continue
        if query.quant and model.quant != query.quant:
            continue
        if query.max_params and (model.params is None or model.params > query.max_params):
            continue
        vllm, arch = vllm_support(model, catalog)
        mark = quick_fit(model, gpu) if gpu is not None else None
        if mark is not None and mark.verdict == "no":
            continue
        rows.append(SearchRow(model, vllm, arch, mark))
    return rows
