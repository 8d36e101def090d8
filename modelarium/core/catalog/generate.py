"""Drafting an entry from what Modelarium already knows about a model.

Hub metadata (licence, commit, parameters), config.json (architecture, context length), the vLLM
architecture table and the fit on each GPU type all come from one ``core.hub.describe`` report;
``storage_uri`` from the weights a storage location holds for the pinned commit.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from modelarium.config.settings import StorageLocation
from modelarium.core.catalog.entry import CatalogEntry, GpuFit, check_id, default_id
from modelarium.core.errors import NotFoundError, ValidationError

if TYPE_CHECKING:
    from modelarium.core.hub.service import ModelReport

_SHA = re.compile(r"^[0-9a-f]{40}$")


# -- storage URIs --------------------------------------------------------------------------------
def hf_cache_path(repo: str, commit: str) -> str:
    """The snapshot folder of a commit inside a Hugging Face cache root (a storage location)."""
    return f"models--{repo.replace('/', '--')}/snapshots/{commit}"


def storage_uri_for(location: StorageLocation, repo: str, commit: str) -> str:
    """``pvc://<claim>/[<pvc_path>/]models--org--name/snapshots/<commit>``: KServe's storageUri
    (the same one a deployment of these weights uses)."""
    claim = location.pvc or location.name
    return f"pvc://{claim}/{in_claim(location, hf_cache_path(repo, commit))}"


def in_claim(location: StorageLocation, path: str) -> str:
    """``path`` (relative to the location) as a path inside its claim."""
    prefix = location.pvc_path.strip("/")
    return f"{prefix}/{path}" if prefix else path


@dataclass(frozen=True)
class StorageRef:
    scheme: str  # "pvc" or "s3"
    volume: str  # claim or bucket
    path: str

    @property
    def commit(self) -> str | None:
        if "/snapshots/" not in self.path:
            return None
        return self.path.split("/snapshots/", 1)[1].split("/", 1)[0]


def parse_storage_uri(uri: str) -> StorageRef:
    scheme, sep, rest = uri.partition("://")
    volume, _, path = rest.partition("/")
    if not sep or scheme not in ("pvc", "s3") or not volume or not path:
        raise ValidationError(
            f"not a storage URI: {uri!r} (pvc://<claim>/<path>, s3://<bucket>/...)"
        )
    return StorageRef(scheme, volume, path)


# -- the generator -------------------------------------------------------------------------------
def draft_from_report(
    report: ModelReport,
    *,
    entry_id: str | None = None,
    owners: Sequence[str] = (),
    storage_uri: str | None = None,
    tags: Sequence[str] = (),
    notes: str = "",
) -> CatalogEntry:
    """A ``draft`` entry for the report's model at its commit (raises when it cannot be sized
    or names no architecture: the catalog holds models vLLM can serve)."""
    model = report.model
    commit = model.sha or ""
    if not _SHA.match(commit):
        raise NotFoundError(f"{model.id}: the Hub gave no commit to pin")
    if report.architecture is None:
        raise NotFoundError(
            f"{model.id}: config.json names no architecture, so vLLM cannot serve it"
        )
    if report.fit is None:
        raise NotFoundError(report.fit_error or f"cannot size {model.id}")
    sized = report.fit.sized
    explained = report.fit.explained
    result = explained.result if explained is not None else None
    if result is None:
        raise NotFoundError(report.fit_error or f"cannot size {model.id}")
    compat = {}
    for gpu in sized:
        if gpu.result is None:
            compat[gpu.choice.name] = GpuFit(False, summary=gpu.error or "could not be sized")
            continue
        r = gpu.result
        compat[gpu.choice.name] = GpuFit(
            fits=r.fits,
            gpus=r.gpus_used if r.fits else None,
            max_model_len=r.recommended_max_model_len if r.fits else r.max_model_len,
            summary=r.summary(),
        )
    recommended = report.fit.recommended
    serving_gpu = recommended.choice.name if recommended is not None else None
    serving_args: tuple[str, ...] = ()
    if recommended is not None and recommended.result is not None:
        serving_args = tuple(recommended.result.flags)
    total = result.params.total or model.params or 0
    active = result.params.active or total
    return CatalogEntry(
        id=check_id(entry_id) if entry_id else default_id(model.id),
        display_name=model.id.rsplit("/", 1)[-1],
        repo=model.id,
        commit=commit,
        license=model.license or "unknown",
        params_total=int(total),
        params_active=int(min(active, total)),
        architecture=report.architecture,
        context_length=int(result.model_max_len),
        quantization=_quant_label(result.quantization.label, model.quant),
        serving_gpu=serving_gpu,
        serving_args=serving_args,
        gpu_compatibility=compat,
        storage_uri=storage_uri,
        status="draft",
        owners=tuple(dict.fromkeys(owners)),
        tags=tuple(dict.fromkeys(t.lower() for t in tags)),
        notes=notes,
    )


def _quant_label(label: str, hub_quant: str | None) -> str:
    """A short storage format: bf16/fp16/fp32 for unquantized checkpoints, else the method."""
    lowered = label.lower()
    for plain in ("bf16", "fp16", "fp32", "float16", "bfloat16"):
        if lowered.startswith(plain):
            return {"float16": "fp16", "bfloat16": "bf16"}.get(plain, plain)
    if hub_quant:
        return hub_quant
    return lowered.split()[0] if lowered else "unknown"
