"""A catalog entry: one model, one JSON file ``<id>.json`` in the catalog repository.

The JSON Schema (``schema.json`` beside this module, printed by ``modelarium catalog schema``) is
the contract; :class:`CatalogEntry` is the typed view code works with. Files are written in one
canonical form (schema field order, two-space indent, final newline) so that the same entry
always has the same bytes, hence the same git blob id, and a pull request diff shows only what
changed.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from modelarium.core.errors import UsageError

SCHEMA_VERSION = 1
STATUSES = ("draft", "validated", "approved", "deprecated", "retired")
ID_RE = re.compile(r"^(?!.*\.\.)[a-z0-9][a-z0-9._-]{0,99}$")
ID_RULE = "lowercase letters, digits, '.', '_' and '-', at most 100; no '/', '..' or spaces"


def check_id(text: str) -> str:
    """The id, or UsageError naming what is wrong with it (ids become file and branch names)."""
    value = text.strip()
    if not value:
        raise UsageError("a catalog id is needed")
    problems = []
    if "/" in value or "\\" in value:
        problems.append("contains '/'")
    if ".." in value:
        problems.append("contains '..'")
    if any(c.isspace() for c in value):
        problems.append("contains spaces")
    if problems or not ID_RE.match(value):
        why = ", ".join(problems) or ID_RULE
        raise UsageError(f"not a catalog id: {text!r} ({why}; use {ID_RULE})")
    return value


def default_id(repo: str) -> str:
    """An id from a Hub repo name: ``meta-llama/Llama-3.1-8B`` -> ``llama-3.1-8b``."""
    name = repo.rsplit("/", 1)[-1].lower()
    name = re.sub(r"[^a-z0-9._-]+", "-", name)
    name = re.sub(r"\.{2,}", ".", name).strip("._-")
    return name[:100] or "model"


@dataclass(frozen=True)
class GpuFit:
    fits: bool
    gpus: int | None = None
    max_model_len: int | None = None
    summary: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"fits": self.fits, "gpus": self.gpus}
        out["max_model_len"] = self.max_model_len
        if self.summary:
            out["summary"] = self.summary
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GpuFit:
        return cls(
            bool(data["fits"]), data.get("gpus"), data.get("max_model_len"), data.get("summary", "")
        )


@dataclass(frozen=True)
class CatalogEntry:
    id: str
    display_name: str
    repo: str
    commit: str
    license: str
    params_total: int
    params_active: int
    architecture: str
    context_length: int
    quantization: str
    serving_gpu: str | None = None
    serving_args: tuple[str, ...] = ()
    gpu_compatibility: Mapping[str, GpuFit] = field(default_factory=dict)
    storage_uri: str | None = None
    status: str = "draft"
    status_reason: str | None = None
    owners: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    notes: str = ""

    @property
    def path_name(self) -> str:
        return f"{self.id}.json"

    @property
    def fitting_gpus(self) -> list[str]:
        return [name for name, fit in self.gpu_compatibility.items() if fit.fits]

    def with_changes(self, **values: Any) -> CatalogEntry:
        return replace(self, **values)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "id": self.id,
            "display_name": self.display_name,
            "huggingface": {"repo": self.repo, "commit": self.commit},
            "license": self.license,
            "parameters": {"total": self.params_total, "active": self.params_active},
            "architecture": self.architecture,
            "context_length": self.context_length,
            "quantization": self.quantization,
            "serving_defaults": {
                "engine": "vllm",
                "gpu": self.serving_gpu,
                "args": list(self.serving_args),
            },
            "gpu_compatibility": {k: v.to_json() for k, v in self.gpu_compatibility.items()},
            "storage_uri": self.storage_uri,
            "status": self.status,
        }
        if self.status_reason:
            data["status_reason"] = self.status_reason
        data.update({"owners": list(self.owners), "tags": list(self.tags), "notes": self.notes})
        return data

    def dumps(self) -> str:
        """The canonical file content."""
        return dumps(self.to_json())

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CatalogEntry:
        """From a document that passed the schema (see :func:`validate.schema_issues`)."""
        hf = data["huggingface"]
        params = data["parameters"]
        serving = data["serving_defaults"]
        return cls(
            id=data["id"],
            display_name=data["display_name"],
            repo=hf["repo"],
            commit=hf["commit"],
            license=data["license"],
            params_total=int(params["total"]),
            params_active=int(params["active"]),
            architecture=data["architecture"],
            context_length=int(data["context_length"]),
            quantization=data["quantization"],
            serving_gpu=serving.get("gpu"),
            serving_args=tuple(serving.get("args") or ()),
            gpu_compatibility={
                k: GpuFit.from_json(v) for k, v in (data.get("gpu_compatibility") or {}).items()
            },
            storage_uri=data.get("storage_uri"),
            status=data["status"],
            status_reason=data.get("status_reason"),
            owners=tuple(data.get("owners") or ()),
            tags=tuple(data.get("tags") or ()),
            notes=data.get("notes") or "",
        )


def dumps(data: Mapping[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def diff_lines(before: CatalogEntry | None, after: CatalogEntry) -> tuple[str, ...]:
    """A unified diff of the canonical files (one line of context), without file headers."""
    old = before.dumps().splitlines() if before else []
    return tuple(
        line
        for line in difflib.unified_diff(old, after.dumps().splitlines(), lineterm="", n=1)
        if not line.startswith(("---", "+++"))
    )
