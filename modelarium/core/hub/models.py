"""What Modelarium keeps of the Hub's answers: plain, JSON-serialisable records.

The cache stores these dicts (not huggingface_hub objects), so every replica and every version of
the client library reads the same shape, and a search row carries exactly what the result list,
its filters and a quick fit check need.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from modelarium.core.errors import UsageError
from modelarium.core.fit import detect_quantization, text_config

REPO_RE = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9._-]{0,95}/)?[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
REVISION_RE = re.compile(r"^[A-Za-z0-9._/-]{1,255}$")
QUANT_METHODS = ("awq", "gptq", "fp8", "gguf")
_QUANT_WORD = re.compile(r"(?:^|[-_.])(awq|gptq|fp8|gguf)(?:$|[-_.])", re.IGNORECASE)


def parse_repo_ref(text: str) -> tuple[str, str | None]:
    """``org/name`` or ``org/name@revision`` (a branch, tag or commit)."""
    repo, sep, revision = text.strip().partition("@")
    if not REPO_RE.match(repo) or ".." in repo:
        raise UsageError(f"not a Hugging Face model id: {text!r} (expected org/name[@revision])")
    if sep and not (revision and REVISION_RE.match(revision) and ".." not in revision):
        raise UsageError(f"not a revision: {revision!r} (a branch, tag or commit sha)")
    return repo, (revision or None)


def license_of(tags: list[str], card: Mapping[str, Any] | None) -> str | None:
    for tag in tags:
        if tag.startswith("license:"):
            return tag.removeprefix("license:")
    value = (card or {}).get("license")
    if isinstance(value, list):
        value = ", ".join(str(v) for v in value)
    return str(value) if value else None


def quant_of(
    repo_id: str,
    config: Mapping[str, Any] | None,
    tags: list[str],
    library: str | None,
    has_gguf: bool,
) -> str | None:
    """Storage format of a repo's weights: awq/gptq/fp8/gguf/... or None for 16-bit.

    config.json's ``quantization_config`` decides when present; otherwise the Hub's tags and,
    last, the naming convention (``-AWQ``, ``-GPTQ-Int4``, ``-FP8``, ``-GGUF``).
    """
    if config:
        try:
            quant = detect_quantization(text_config(config))
        except Exception:  # a malformed quantization_config must not break a listing
            quant = None
        if quant is not None and quant.is_quantized:
            if quant.method == "compressed-tensors" and "FP8" in quant.label:
                return "fp8"
            return str(quant.method)
    lowered = {t.lower() for t in tags}
    if has_gguf or library == "gguf" or "gguf" in lowered:
        return "gguf"
    for method in ("awq", "gptq", "fp8"):
        if method in lowered:
            return method
    match = _QUANT_WORD.search(repo_id.rsplit("/", 1)[-1])
    return match.group(1).lower() if match else None


def _params(safetensors: Mapping[str, Any] | None, gguf: Mapping[str, Any] | None) -> int | None:
    for source in (safetensors, gguf):
        if source and isinstance(source.get("total"), int) and source["total"] > 0:
            return int(source["total"])
    return None


def _architectures(config: Mapping[str, Any] | None) -> list[str]:
    archs = (config or {}).get("architectures")
    return [a for a in archs if isinstance(a, str)] if isinstance(archs, list) else []


@dataclass(frozen=True)
class ModelSummary:
    """One search result."""

    id: str
    downloads: int = 0
    likes: int = 0
    params: int | None = None
    license: str | None = None
    pipeline_tag: str | None = None
    library_name: str | None = None
    tags: list[str] = field(default_factory=list)
    last_modified: str | None = None
    gated: str | bool = False
    architectures: list[str] = field(default_factory=list)
    model_type: str | None = None
    quant: str | None = None
    safetensors: dict[str, Any] | None = None
    config: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ModelSummary:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class HubModel:
    """``model_info`` of one revision."""

    id: str
    sha: str | None
    revision: str
    last_modified: str | None = None
    created_at: str | None = None
    gated: str | bool = False
    private: bool = False
    disabled: bool = False
    downloads: int = 0
    likes: int = 0
    tags: list[str] = field(default_factory=list)
    pipeline_tag: str | None = None
    library_name: str | None = None
    license: str | None = None
    safetensors: dict[str, Any] | None = None
    gguf: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    files: list[str] = field(default_factory=list)
    used_storage: int | None = None

    @property
    def params(self) -> int | None:
        return _params(self.safetensors, self.gguf)

    @property
    def architectures(self) -> list[str]:
        return _architectures(self.config)

    @property
    def has_config_file(self) -> bool:
        return "config.json" in self.files

    @property
    def quant(self) -> str | None:
        has_gguf = bool(self.gguf) or any(f.lower().endswith(".gguf") for f in self.files)
        return quant_of(self.id, self.config, self.tags, self.library_name, has_gguf)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> HubModel:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in names})


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None and hasattr(value, "isoformat") else None


def _safetensors(info: Any) -> dict[str, Any] | None:
    st = getattr(info, "safetensors", None)
    if st is None:
        return None
    return {"parameters": dict(st.parameters), "total": int(st.total)}


def _dict(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, Mapping):
        return dict(value)
    to_dict = getattr(value, "to_dict", None)
    return dict(to_dict()) if callable(to_dict) else None


def summary_from_info(info: Any) -> ModelSummary:
    """A search row from huggingface_hub's ``ModelInfo`` (as ``list_models`` yields it)."""
    tags = list(info.tags or [])
    config = _dict(info.config)
    safetensors = _safetensors(info)
    gguf = _dict(getattr(info, "gguf", None))
    return ModelSummary(
        id=info.id,
        downloads=int(info.downloads or 0),
        likes=int(info.likes or 0),
        params=_params(safetensors, gguf),
        license=license_of(tags, _dict(info.card_data)),
        pipeline_tag=info.pipeline_tag,
        library_name=info.library_name,
        tags=tags,
        last_modified=_iso(info.last_modified),
        gated=info.gated if info.gated is not None else False,
        architectures=_architectures(config),
        model_type=(config or {}).get("model_type"),
        quant=quant_of(info.id, config, tags, info.library_name, bool(gguf)),
        safetensors=safetensors,
        config=config,
    )


def model_from_info(info: Any, revision: str) -> HubModel:
    """A :class:`HubModel` from huggingface_hub's ``model_info``."""
    tags = list(info.tags or [])
    return HubModel(
        id=info.id,
        sha=info.sha,
        revision=revision,
        last_modified=_iso(info.last_modified),
        created_at=_iso(getattr(info, "created_at", None)),
        gated=info.gated if info.gated is not None else False,
        private=bool(info.private),
        disabled=bool(info.disabled),
        downloads=int(info.downloads or 0),
        likes=int(info.likes or 0),
        tags=tags,
        pipeline_tag=info.pipeline_tag,
        library_name=info.library_name,
        license=license_of(tags, _dict(info.card_data)),
        safetensors=_safetensors(info),
        gguf=_dict(getattr(info, "gguf", None)),
        config=_dict(info.config),
        files=[s.rfilename for s in (info.siblings or [])][:2000],
        used_storage=getattr(info, "used_storage", None),
    )
