"""The KServe ``InferenceService`` Modelarium applies: vLLM through KServe's Hugging Face runtime.

Pure functions: the source of the weights, the engine arguments and the GPUs go in, a dict in
the shape of ``serving.kserve.io/v1beta1`` comes out. The object carries who manages it
(``app.kubernetes.io/managed-by: modelarium``) and annotations naming the model, its commit and
the change that applied it, which is how the fleet's state can be read back from the cluster.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from modelarium.core.deployments.policy import NamespacePolicy
from modelarium.core.errors import UsageError

API_VERSION = "serving.kserve.io/v1beta1"
KIND = "InferenceService"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "modelarium"
MANAGED_SELECTOR = f"{MANAGED_BY_LABEL}={MANAGED_BY}"
ANNOTATION_PREFIX = "modelarium.io/"
ANN_MODEL = "modelarium.io/model"
ANN_REVISION = "modelarium.io/revision"
ANN_COMMIT = "modelarium.io/commit"
ANN_LOCATION = "modelarium.io/location"
ANN_CHANGE = "modelarium.io/change"
STOP_ANNOTATION = "serving.kserve.io/stop"
GPU_RESOURCE = "nvidia.com/gpu"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
MODEL_FORMAT = "huggingface"

FIT_KEYS = (
    "tensor-parallel-size",
    "max-model-len",
    "gpu-memory-utilization",
    "quantization",
    "kv-cache-dtype",
)
"""Engine arguments the fit estimate decides; ``--set`` values for them are sized, not pasted."""
_KEY = re.compile(r"[a-z0-9][a-z0-9-]*")


@dataclass(frozen=True)
class ModelSource:
    """Where the pod gets the weights: an installed, verified snapshot on a PVC, or the Hub."""

    repo: str
    revision: str
    commit: str
    storage_uri: str
    verified: bool
    location: str | None = None
    snapshot: str | None = None  # local path of the installed snapshot, when installed
    service_account: str | None = None
    """The storage location's (a bucket's credentials): the predictor runs as it."""

    def to_json(self) -> dict[str, Any]:
        return {
            "repo": self.repo,
            "revision": self.revision,
            "commit": self.commit,
            "storage_uri": self.storage_uri,
            "verified": self.verified,
            "location": self.location,
        }


def hf_cache_folder(repo: str) -> str:
    """A repo's folder in the Hugging Face cache layout the weights are installed in."""
    return "models--" + repo.replace("/", "--")


def pvc_uri(claim: str, path_in_claim: str, folder: str, commit: str) -> str:
    """``pvc://<claim>/<path>/models--org--name/snapshots/<commit>``.

    KServe mounts the whole claim and links the snapshot's files into the model directory, so
    the snapshot's relative links into ``blobs/`` resolve inside the pod as they do on disk.
    """
    parts = [p for p in path_in_claim.strip("/").split("/") if p]
    return "pvc://" + "/".join([claim, *parts, folder, "snapshots", commit])


def hub_uri(repo: str, commit: str) -> str:
    """KServe's storage initializer form: ``hf://org/name:<revision>``."""
    return f"hf://{repo}:{commit}"


@dataclass(frozen=True)
class Replicas:
    min: int = 1
    max: int = 1

    def __str__(self) -> str:
        return str(self.min) if self.min == self.max else f"{self.min}..{self.max}"


def parse_replicas(text: str | None) -> Replicas:
    """``2`` (exactly two) or ``1..3`` (autoscale between); ``0..N`` scales to zero."""
    if text is None or not str(text).strip():
        return Replicas()
    match = re.fullmatch(r"\s*(\d+)\s*(?:\.\.\s*(\d+)\s*)?", str(text))
    if not match:
        raise UsageError(f"--replicas expects MIN or MIN..MAX, e.g. 1 or 1..3, not {text!r}")
    low = int(match[1])
    high = int(match[2]) if match[2] is not None else low
    if high < 1 or low > high:
        raise UsageError(f"--replicas {text}: need 0 <= MIN <= MAX and MAX >= 1")
    return Replicas(low, high)


def _normalise_key(key: str) -> str:
    key = key.strip().removeprefix("--").replace("_", "-").lower()
    if not _KEY.fullmatch(key):
        raise UsageError(f"--set expects an engine argument name like max-num-seqs, not {key!r}")
    return key


def parse_sets(values: Iterable[str]) -> dict[str, str | None]:
    """``--set KEY=VALUE`` (and ``--set KEY`` for a flag) as engine arguments, in order."""
    out: dict[str, str | None] = {}
    for item in values:
        key, sep, value = str(item).partition("=")
        if not key.strip():
            raise UsageError(f"--set expects KEY=VALUE, not {item!r}")
        out[_normalise_key(key)] = value.strip() if sep else None
    return out


def flags_to_args(flags: Sequence[str]) -> dict[str, str | None]:
    """``["--max-model-len", "8192", "--trust-remote-code"]`` -> ordered name -> value."""
    out: dict[str, str | None] = {}
    i = 0
    while i < len(flags):
        key = flags[i].removeprefix("--")
        if i + 1 < len(flags) and not flags[i + 1].startswith("--"):
            out[key] = flags[i + 1]
            i += 2
        else:
            out[key] = None
            i += 1
    return out


def engine_args(
    fit_flags: Sequence[str],
    arch_args: Mapping[str, Any] | None,
    sets: Mapping[str, str | None],
) -> list[str]:
    """The container args: the fit's flags, the architecture's required engine args, then the
    ``--set`` extras (which win over both), as ``--key=value`` / ``--key``."""
    merged = flags_to_args(fit_flags)
    for key, value in (arch_args or {}).items():
        name = key.replace("_", "-")
        if value is True:
            merged.setdefault(name, None)
        elif isinstance(value, Mapping | list):
            merged.setdefault(name, json.dumps(value, separators=(",", ":")))
        elif value is not False and value is not None:
            merged.setdefault(name, str(value))
    for key, value in sets.items():
        if key in FIT_KEYS:
            continue  # sized by the fit: already in ``fit_flags`` with the asked-for value
        if value is not None and value.lower() == "false":
            merged.pop(key, None)
        elif value is None or value.lower() == "true":
            merged[key] = None
        else:
            merged[key] = value
    return [f"--{k}" if v is None else f"--{k}={v}" for k, v in merged.items()]


def render(
    *,
    name: str,
    namespace: str,
    source: ModelSource,
    args: Sequence[str],
    gpus: int,
    product: str | None,
    replicas: Replicas,
    policy: NamespacePolicy,
    change_id: int | None = None,
) -> dict[str, Any]:
    """The InferenceService for one deployment."""
    labels = {**policy.labels, MANAGED_BY_LABEL: MANAGED_BY}
    annotations = {
        ANN_MODEL: source.repo,
        ANN_REVISION: source.revision,
        ANN_COMMIT: source.commit,
    }
    if source.location:
        annotations[ANN_LOCATION] = source.location
    if change_id is not None:
        annotations[ANN_CHANGE] = str(change_id)
    model: dict[str, Any] = {"modelFormat": {"name": MODEL_FORMAT}}
    if policy.runtime:
        model["runtime"] = policy.runtime
    model["storageUri"] = source.storage_uri
    model["args"] = list(args)
    model["resources"] = {
        "limits": {GPU_RESOURCE: str(gpus)},
        "requests": {GPU_RESOURCE: str(gpus)},
    }
    predictor: dict[str, Any] = {"minReplicas": replicas.min, "maxReplicas": replicas.max}
    account = source.service_account or policy.service_account
    if account:
        predictor["serviceAccountName"] = account
    if product:
        predictor["nodeSelector"] = {GPU_PRODUCT_LABEL: product}
    predictor["model"] = model
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "annotations": annotations,
        },
        "spec": {"predictor": predictor},
    }


TAG_ROUTING = "serving.kserve.io/enable-tag-routing"


def with_canary(
    manifest: Mapping[str, Any], percent: int | None, logger_url: str | None
) -> dict[str, Any]:
    """The same object as a grouped revision: ``canaryTrafficPercent`` (None: none, the new
    revision takes all the traffic) and KServe's inference logger (mode ``all``) posting to
    ``logger_url``, so every revision of a group names its own member."""
    out = json.loads(json.dumps(manifest))
    # each revision gets its own URL (latest-…, prev-…): what `group pick` hands out
    out.setdefault("metadata", {}).setdefault("annotations", {})[TAG_ROUTING] = "true"
    predictor = out.setdefault("spec", {}).setdefault("predictor", {})
    if percent is None:
        predictor.pop("canaryTrafficPercent", None)
    else:
        predictor["canaryTrafficPercent"] = int(percent)
    if logger_url:
        predictor["logger"] = {"mode": "all", "url": logger_url}
    return out


def without_logger(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The same object without KServe's inference logger (its group is being deleted); the
    traffic split stays as it is."""
    out = json.loads(json.dumps(manifest))
    ((out.get("spec") or {}).get("predictor") or {}).pop("logger", None)
    return out


def with_change(manifest: Mapping[str, Any], change_id: int) -> dict[str, Any]:
    """The same object, annotated with the change that applies it."""
    out = json.loads(json.dumps(manifest))
    out["metadata"].setdefault("annotations", {})[ANN_CHANGE] = str(change_id)
    return out


def to_yaml(obj: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(obj), sort_keys=False, default_flow_style=False, width=100)


def is_managed(obj: Mapping[str, Any]) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return labels.get(MANAGED_BY_LABEL) == MANAGED_BY
