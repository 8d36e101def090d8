"""A local fake Kubernetes API server (and KServe controller) for tests.

Why: the fleet code must be exercised through the *real* ``kubernetes`` client (kubeconfig
loading, bearer auth, request building, model deserialisation, ``ApiException`` on errors, the
``watch`` module's chunked streams), so this fake serves the REST wire protocol over HTTP rather
than mocking ``CoreV1Api``.

Modelled, as the real API server does it:

- ``/version``; core v1 nodes, pods, namespaces and events (read-only over HTTP; tests and the
  KServe simulation create them) with list envelopes, ``fieldSelector``, ``labelSelector`` and
  ``limit``/``continue``; ``Status`` objects for errors;
- a generic store for custom resources (KServe ``InferenceService`` registered by default):
  create / get / list / replace / merge- and JSON-patch / delete, the ``status`` subresource;
- ``dryRun=All`` on every write: validated, admitted and answered, never stored;
- server-side apply (``PATCH`` with ``application/apply-patch+yaml``, ``fieldManager``,
  ``force``) with ``metadata.managedFields`` per manager and the API server's 409 wording for
  conflicts (see :mod:`tests.fakes.managed_fields`);
- watches (``?watch=1`` with ``resourceVersion``, ``timeoutSeconds``, selectors): chunked JSON
  lines ``ADDED``/``MODIFIED``/``DELETED`` (``BOOKMARK`` when asked, ``ERROR`` 410 for a
  compacted resourceVersion);
- validating admission webhooks (:meth:`FakeKubernetes.add_admission_webhook`) answering with
  the API server's "admission webhook ... denied the request" wording, and RBAC denials
  (:meth:`FakeKubernetes.deny`) worded like the authorizer's; every verb used is recorded
  (:meth:`FakeKubernetes.verbs_used`) so a test can compare it with a Role;
- the KServe controller, :attr:`FakeKubernetes.kserve` (:mod:`tests.fakes.kserve`), started on
  demand: revisions, pods, readiness after a delay, failures with their reasons and events, the
  ``serving.kserve.io/stop`` annotation.

Nodes carry the labels and resources NVIDIA GPU feature discovery and the device plugin set.
"""

from __future__ import annotations

import base64
import bisect
import copy
import itertools
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fakes import managed_fields
from tests.fakes.streaming import Request, Response, StreamingFakeServer, StreamResponse

__all__ = [
    "GPU_PRODUCTS",
    "KSERVE",
    "KSERVE_WEBHOOK",
    "CustomResource",
    "FakeKubernetes",
    "fake_k8s",
    "fake_kserve",
]

KSERVE_WEBHOOK = "inferenceservice.kserve-webhook-server.validator"
"""The name KServe registers its validating webhook under (the API server quotes it)."""


@dataclass(frozen=True)
class CustomResource:
    """A custom resource type the fake serves (what an installed CRD would provide)."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"

    @property
    def qualified(self) -> str:
        """``plural.group``, as the API server names the resource in error messages."""
        return f"{self.plural}.{self.group}"


KSERVE = CustomResource("serving.kserve.io", "v1beta1", "inferenceservices", "InferenceService")

#: product label → (gpu.memory MiB as GFD reports it, gpu.family)
GPU_PRODUCTS: dict[str, tuple[int, str]] = {
    "NVIDIA-A100-SXM4-80GB": (81920, "ampere"),
    "NVIDIA-A100-SXM4-40GB": (40960, "ampere"),
    "NVIDIA-A100-PCIE-40GB": (40960, "ampere"),
    "NVIDIA-A10G": (23028, "ampere"),
    "NVIDIA-H100-80GB-HBM3": (81559, "hopper"),
    "NVIDIA-H100-NVL": (95830, "hopper"),
    "NVIDIA-H200": (143771, "hopper"),
    "NVIDIA-L40S": (46068, "ada-lovelace"),
    "NVIDIA-L4": (23034, "ada-lovelace"),
    "NVIDIA-B200": (183359, "blackwell"),
    "Tesla-T4": (15360, "turing"),
    "Tesla-V100-SXM2-16GB": (16384, "volta"),
}
_COMPUTE_CAPABILITY = {
    "volta": (7, 0),
    "turing": (7, 5),
    "ampere": (8, 0),
    "ada-lovelace": (8, 9),
    "hopper": (9, 0),
    "blackwell": (10, 0),
}
_MIG_CAPABLE = ("A100", "A30", "H100", "H200", "B200")

# Fields each built-in resource accepts in fieldSelector (the API server rejects others).
_FIELDS = {
    "pods": {
        "metadata.name",
        "metadata.namespace",
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    },
    "nodes": {"metadata.name", "spec.unschedulable"},
    "namespaces": {"metadata.name", "status.phase"},
    "events": {
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
        "metadata.name",
        "metadata.namespace",
    },
}
_CR_FIELDS = {"metadata.name", "metadata.namespace"}

_CORE_KINDS = {"nodes": "Node", "pods": "Pod", "namespaces": "Namespace", "events": "Event"}


class _ApiError(Exception):
    """Raised by handlers to answer a ``Status`` failure."""

    def __init__(
        self, code: int, reason: str, message: str, details: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message
        self.details = dict(details) if details else None


def _status_body(
    code: int, reason: str, message: str, details: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure" if code >= 300 else "Success",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details is not None:
        body["details"] = dict(details)
    if code < 300:
        body.pop("message")
        body.pop("reason")
    return body


def _not_found(resource: str, name: str, group: str = "") -> _ApiError:
    qualified = f"{resource}.{group}" if group else resource
    details = {"name": name, "kind": resource, **({"group": group} if group else {})}
    return _ApiError(404, "NotFound", f'{qualified} "{name}" not found', details)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------------------------------
# Selectors and patches
# ---------------------------------------------------------------------------------------------
def _split_terms(selector: str) -> list[str]:
    """Split on commas outside parentheses (``a in (x,y),b=c``)."""
    terms, depth, cur = [], 0, ""
    for ch in selector:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            terms.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        terms.append(cur.strip())
    return terms


def _label_matcher(selector: str) -> Any:
    """A predicate over a labels dict for a Kubernetes label selector string."""
    checks = []
    for term in _split_terms(selector):
        m = re.fullmatch(r"(\S+)\s+(in|notin)\s+\((.*)\)", term)
        if m:
            key, op, values = m[1], m[2], {v.strip() for v in m[3].split(",") if v.strip()}
            if op == "in":
                checks.append(lambda lb, k=key, vs=values: lb.get(k) in vs)
            else:
                checks.append(lambda lb, k=key, vs=values: lb.get(k) not in vs)
            continue
        m = re.fullmatch(r"([^!=\s]+)\s*(!=|==|=)\s*(\S*)", term)
        if m:
            key, op, value = m[1], m[2], m[3]
            if op == "!=":
                checks.append(lambda lb, k=key, v=value: lb.get(k) != v)
            else:
                checks.append(lambda lb, k=key, v=value: lb.get(k) == v)
            continue
        m = re.fullmatch(r"(!?)([^!=\s()]+)", term)
        if m:
            neg, key = m[1] == "!", m[2]
            checks.append(lambda lb, k=key, n=neg: (k in lb) != n)
            continue
        raise _ApiError(400, "BadRequest", f"unable to parse requirement: {term!r}")
    return lambda labels: all(check(labels) for check in checks)


def _field_value(obj: Mapping[str, Any], path: str) -> str:
    cur: Any = obj
    for part in path.split("."):
        cur = cur.get(part) if isinstance(cur, Mapping) else None
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return "" if cur is None else str(cur)


def _field_matcher(selector: str, allowed: set[str]) -> Any:
    checks = []
    for term in _split_terms(selector):
        m = re.fullmatch(r"([^!=\s]+)\s*(!=|==|=)\s*(.*)", term)
        if not m:
            raise _ApiError(400, "BadRequest", f"invalid selector: '{selector}'")
        key, op, value = m[1], m[2], m[3].strip()
        if key not in allowed:
            raise _ApiError(400, "BadRequest", f'field label not supported: "{key}"')
        neg = op == "!="
        checks.append(lambda obj, k=key, v=value, n=neg: (_field_value(obj, k) == v) != n)
    return lambda obj: all(check(obj) for check in checks)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (``null`` deletes, objects merge, everything else replaces)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise ValueError(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def json_patch(doc: Any, ops: Any) -> Any:
    """RFC 6902 JSON patch; raises ``ValueError`` on a bad or failing operation."""
    if not isinstance(ops, list):
        raise ValueError("json patch must be a list of operations")
    doc = copy.deepcopy(doc)

    def walk(parts: list[str]) -> tuple[Any, str]:
        if not parts:
            raise ValueError("operation on the document root is not supported")
        parent = doc
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        return parent, parts[-1]

    def get(parts: list[str]) -> Any:
        cur = doc
        for part in parts:
            cur = cur[int(part)] if isinstance(cur, list) else cur[part]
        return cur

    def add(parts: list[str], value: Any) -> None:
        parent, key = walk(parts)
        if isinstance(parent, list):
            parent.insert(len(parent) if key == "-" else int(key), value)
        else:
            parent[key] = value

    def remove(parts: list[str]) -> Any:
        parent, key = walk(parts)
        return parent.pop(int(key) if isinstance(parent, list) else key)

    for op in ops:
        try:
            kind, path = op["op"], _pointer(op["path"])
            if kind == "add":
                add(path, copy.deepcopy(op["value"]))
            elif kind == "remove":
                remove(path)
            elif kind == "replace":
                get(path)  # must exist
                parent, key = walk(path)
                parent[int(key) if isinstance(parent, list) else key] = copy.deepcopy(op["value"])
            elif kind == "move":
                add(path, remove(_pointer(op["from"])))
            elif kind == "copy":
                add(path, copy.deepcopy(get(_pointer(op["from"]))))
            elif kind == "test":
                if get(path) != op["value"]:
                    raise ValueError(f"test operation failed at {op['path']}")
            else:
                raise ValueError(f"unknown op {kind!r}")
        except (KeyError, IndexError, TypeError) as exc:
            raise ValueError(f"cannot apply {op!r}: {exc!r}") from exc
    return doc


# ---------------------------------------------------------------------------------------------
# The fake
# ---------------------------------------------------------------------------------------------
@dataclass
class _Fault:
    status: int
    method: str | None
    path: str | None
    retry_after: int | None
    remaining: int


@dataclass(frozen=True)
class _Change:
    """One stored change, kept for watches (the fake's etcd history)."""

    rv: int
    resource: str  # "pods", "events", ... or a custom resource's "plural.group"
    namespace: str | None
    type: str  # ADDED / MODIFIED / DELETED
    obj: dict[str, Any]


@dataclass
class _Webhook:
    name: str
    check: Callable[[str, dict[str, Any], dict[str, Any] | None], str | None]
    code: int
    resources: frozenset[str]


_REASONS = {
    400: "BadRequest",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    410: "Expired",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}

_CR_ROUTE = re.compile(
    r"^/apis/(?P<group>[^/]+)/(?P<version>[^/]+)"
    r"(?:/namespaces/(?P<ns>[^/]+))?/(?P<plural>[^/]+)(?:/(?P<name>[^/]+)(?:/(?P<sub>status))?)?$"
)
_APPLY = "application/apply-patch+yaml"
_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")
WriteListener = Callable[[str, CustomResource, dict[str, Any], dict[str, Any] | None], None]


def _default_manager(request: Request) -> str:
    """What the API server calls a writer that names no fieldManager: its User-Agent's prefix."""
    agent = request.headers.get("user-agent", "")
    return agent.split("/")[0] or "unknown"


def _options_invalid(field: str, detail: str) -> _ApiError:
    return _ApiError(
        422,
        "Invalid",
        f'PatchOptions.meta.k8s.io "" is invalid: {field}: {detail}',
        {"group": "meta.k8s.io", "kind": "PatchOptions"},
    )


class FakeKubernetes(StreamingFakeServer):
    """Fake kube-apiserver; see the module docstring.

    ``token`` is the only accepted bearer token (``write_kubeconfig`` puts it in the kubeconfig);
    requests made with it act as ``username`` (what RBAC denials name). Custom resource types
    must be registered (KServe InferenceService is by default), like a CRD must be installed;
    unknown paths answer the API server's generic 404.
    """

    def __init__(
        self,
        *,
        token: str = "fake-k8s-token",
        git_version: str = "v1.31.4",
        custom_resources: Iterable[CustomResource] = (KSERVE,),
        host: str = "127.0.0.1",
        username: str = "system:serviceaccount:modelarium:modelarium",
        history_limit: int = 20_000,
    ) -> None:
        super().__init__(host=host)
        from tests.fakes.kserve import KServeController

        self.token = token
        self.username = username
        self.git_version = git_version
        self.history_limit = history_limit
        self.watch_timeout = 1800.0
        """Seconds a watch stays open when the client gives no ``timeoutSeconds``."""
        self._changed = threading.Condition(self._lock)
        self._crds: dict[tuple[str, str, str], CustomResource] = {}
        self._listeners: list[WriteListener] = []
        for cr in custom_resources:
            self.register_custom_resource(cr)
        self._init_state()
        self.kserve = KServeController(self)
        """The KServe controller simulation; idle until ``kserve.start()``."""

    def _init_state(self) -> None:
        self._rv = itertools.count(1000)
        self._last_rv = 1000
        self._ip = itertools.count(10)
        self._nodes: dict[str, dict[str, Any]] = {}
        self._pods: dict[tuple[str, str], dict[str, Any]] = {}
        self._namespaces: dict[str, dict[str, Any]] = {}
        self._events: dict[tuple[str, str], dict[str, Any]] = {}
        self._objects: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        self._faults: list[_Fault] = []
        self._history: list[_Change] = []
        self._history_rvs: list[int] = []
        self._compacted = 0
        self._webhooks: list[_Webhook] = []
        self._denied: set[tuple[str, str, str | None]] = set()
        self._verbs: set[tuple[str, str, str]] = set()
        for ns in ("default", "kube-system"):
            self.add_namespace(ns)

    def reset(self) -> None:
        """Drop every object, fault, webhook, denial and recorded request; keep token and CRDs."""
        self.kserve.reset()
        with self._lock:
            self._init_state()
            self.clear_requests()

    def stop(self) -> None:
        self.kserve.stop()
        super().stop()

    def _wake(self) -> None:
        with self._changed:
            self._changed.notify_all()

    # -- configuration ------------------------------------------------------------------------
    def register_custom_resource(self, cr: CustomResource) -> None:
        """Serve ``cr`` under ``/apis/{group}/{version}/...`` (like installing its CRD)."""
        with self._lock:
            self._crds[(cr.group, cr.version, cr.plural)] = cr

    def write_kubeconfig(
        self, path: str | Path, *, namespace: str = "default", context: str = "fake"
    ) -> Path:
        """Write a kubeconfig (token auth, plain-http server) for ``load_kube_config``."""
        path = Path(path)
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": context, "cluster": {"server": self.url}}],
            "users": [{"name": context, "user": {"token": self.token}}],
            "contexts": [
                {
                    "name": context,
                    "context": {"cluster": context, "user": context, "namespace": namespace},
                }
            ],
            "current-context": context,
            "preferences": {},
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(config, indent=2))  # JSON is valid YAML
        return path

    def fail_next(
        self,
        status: int = 500,
        *,
        method: str | None = None,
        path: str | None = None,
        count: int = 1,
        retry_after: int | None = None,
    ) -> None:
        """Answer the next ``count`` matching requests with a ``Status`` failure.

        ``method``/``path`` (a prefix of the request path) narrow the match; ``retry_after``
        adds the header client-go-style retries honour (429 / 5xx).
        """
        with self._lock:
            self._faults.append(_Fault(status, method, path, retry_after, count))

    def add_admission_webhook(
        self,
        check: Callable[[str, dict[str, Any], dict[str, Any] | None], str | None],
        *,
        name: str = KSERVE_WEBHOOK,
        code: int = 400,
        resources: Iterable[str] = (KSERVE.plural,),
    ) -> None:
        """A validating webhook: ``check(operation, object, old)`` returns a denial or None.

        ``operation`` is ``CREATE`` or ``UPDATE``; it also runs for dry runs (KServe's webhook
        declares ``sideEffects: None``). A denial answers ``code`` (the API server makes
        anything below 400 a 400) with ``admission webhook "<name>" denied the request: <msg>``.
        """
        with self._lock:
            self._webhooks.append(_Webhook(name, check, max(400, code), frozenset(resources)))

    def deny(self, verb: str, resource: str, namespace: str | None = None) -> None:
        """Make RBAC refuse ``verb`` (``*`` for all) on ``resource`` (e.g. ``inferenceservices``,
        ``pods``, ``events``; ``*`` for all), in ``namespace`` or everywhere."""
        with self._lock:
            self._denied.add((verb, resource, namespace))

    def verbs_used(self) -> set[tuple[str, str, str]]:
        """Every (API group, resource, verb) a client has asked for, as RBAC sees them."""
        with self._lock:
            return set(self._verbs)

    def on_custom_write(self, listener: WriteListener) -> None:
        """Call ``listener(type, cr, object, old)`` (under the fake's lock) after every stored
        change of a custom object: what a controller's informer would deliver."""
        with self._lock:
            self._listeners.append(listener)

    def compact(self) -> None:
        """Forget the change history, as etcd compaction does: older watches get 410 Gone."""
        with self._lock:
            self._compacted = self._last_rv
            self._history.clear()
            self._history_rvs.clear()

    # -- history --------------------------------------------------------------------------------
    def _next_rv(self) -> str:
        self._last_rv = next(self._rv)
        return str(self._last_rv)

    def _emit(self, resource: str, namespace: str | None, kind: str, obj: dict[str, Any]) -> None:
        rv = int(obj["metadata"]["resourceVersion"])
        self._history.append(_Change(rv, resource, namespace, kind, copy.deepcopy(obj)))
        self._history_rvs.append(rv)
        if len(self._history) > self.history_limit:
            drop = len(self._history) - self.history_limit
            self._compacted = self._history_rvs[drop - 1]
            del self._history[:drop]
            del self._history_rvs[:drop]
        self._changed.notify_all()

    def _meta(self, name: str, namespace: str | None, labels: Mapping[str, str] | None) -> dict:
        meta: dict[str, Any] = {
            "name": name,
            "uid": str(uuid.uuid4()),
            "resourceVersion": self._next_rv(),
            "creationTimestamp": _now(),
        }
        if namespace is not None:
            meta["namespace"] = namespace
        if labels:
            meta["labels"] = dict(labels)
        return meta

    # -- objects: built-in --------------------------------------------------------------------
    def add_namespace(self, name: str, labels: Mapping[str, str] | None = None) -> dict[str, Any]:
        with self._lock:
            ns = {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": self._meta(
                    name, None, {"kubernetes.io/metadata.name": name, **(labels or {})}
                ),
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"},
            }
            self._namespaces[name] = ns
            self._emit("namespaces", None, "ADDED", ns)
            return copy.deepcopy(ns)

    def add_node(
        self,
        name: str,
        *,
        labels: Mapping[str, str] | None = None,
        capacity: Mapping[str, str] | None = None,
        allocatable: Mapping[str, str] | None = None,
        cpu: str = "32",
        memory: str = "256Gi",
        ready: bool = True,
        unschedulable: bool = False,
        taints: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Add (or replace) a node; ``capacity``/``allocatable`` extend the cpu/memory defaults."""
        base_capacity = {
            "cpu": cpu,
            "memory": memory,
            "pods": "110",
            "ephemeral-storage": "1Ti",
            "hugepages-1Gi": "0",
            "hugepages-2Mi": "0",
        }
        cap = {**base_capacity, **(capacity or {})}
        alloc = {**cap, **(allocatable or {})}
        all_labels = {
            "beta.kubernetes.io/arch": "amd64",
            "beta.kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "kubernetes.io/hostname": name,
            "kubernetes.io/os": "linux",
            **(labels or {}),
        }
        spec: dict[str, Any] = {"podCIDR": "10.244.0.0/24", "providerID": f"fake://{name}"}
        if unschedulable:
            spec["unschedulable"] = True
        if taints:
            spec["taints"] = list(taints)
        now = _now()
        conditions = [
            {
                "type": kind,
                "status": "False",
                "reason": f"KubeletHasNo{kind}",
                "message": f"kubelet has no {kind}",
                "lastHeartbeatTime": now,
                "lastTransitionTime": now,
            }
            for kind in ("MemoryPressure", "DiskPressure", "PIDPressure")
        ]
        conditions.append(
            {
                "type": "Ready",
                "status": "True" if ready else "False",
                "reason": "KubeletReady" if ready else "KubeletNotReady",
                "message": "kubelet is posting ready status" if ready else "node is not ready",
                "lastHeartbeatTime": now,
                "lastTransitionTime": now,
            }
        )
        with self._lock:
            ip = f"10.0.0.{next(self._ip)}"
            node = {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {**self._meta(name, None, all_labels), "annotations": {}},
                "spec": spec,
                "status": {
                    "capacity": cap,
                    "allocatable": alloc,
                    "conditions": conditions,
                    "addresses": [
                        {"type": "InternalIP", "address": ip},
                        {"type": "Hostname", "address": name},
                    ],
                    "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                    "nodeInfo": {
                        "machineID": uuid.uuid4().hex,
                        "systemUUID": str(uuid.uuid4()),
                        "bootID": str(uuid.uuid4()),
                        "kernelVersion": "6.8.0-45-generic",
                        "osImage": "Ubuntu 22.04.4 LTS",
                        "containerRuntimeVersion": "containerd://1.7.22",
                        "kubeletVersion": self.git_version,
                        "kubeProxyVersion": self.git_version,
                        "operatingSystem": "linux",
                        "architecture": "amd64",
                    },
                },
            }
            kind = "MODIFIED" if name in self._nodes else "ADDED"
            self._nodes[name] = node
            self._emit("nodes", None, kind, node)
            return copy.deepcopy(node)

    def add_gpu_node(
        self,
        name: str,
        *,
        product: str = "NVIDIA-A100-SXM4-80GB",
        count: int = 8,
        memory_mib: int | None = None,
        family: str | None = None,
        allocatable_gpus: int | None = None,
        driver: str = "550.90.07",
        cuda: str = "12.4",
        labels: Mapping[str, str] | None = None,
        **node_kwargs: Any,
    ) -> dict[str, Any]:
        """Add a GPU node labelled as NVIDIA GPU feature discovery does.

        ``memory_mib``/``family`` default from :data:`GPU_PRODUCTS` (or a ``<n>GB`` suffix in the
        product name); ``allocatable_gpus`` below ``count`` models GPUs the device plugin marked
        unhealthy. Extra keyword arguments go to :meth:`add_node`.
        """
        known_mem, known_family = GPU_PRODUCTS.get(product, (None, None))
        if memory_mib is None:
            m = re.search(r"(\d+)GB", product)
            memory_mib = known_mem or (int(m[1]) * 1024 if m else None)
            if memory_mib is None:
                raise ValueError(f"unknown GPU product {product!r}: pass memory_mib")
        family = family or known_family or "ampere"
        major, minor = _COMPUTE_CAPABILITY.get(family, (8, 0))
        d_major, d_minor, d_rev = [*driver.split("."), "0", "0"][:3]
        c_major, c_minor = [*cuda.split("."), "0"][:2]
        gfd = {
            "feature.node.kubernetes.io/pci-10de.present": "true",
            "nvidia.com/gpu.present": "true",
            "nvidia.com/gpu.product": product,
            "nvidia.com/gpu.memory": str(memory_mib),
            "nvidia.com/gpu.count": str(count),
            "nvidia.com/gpu.family": family,
            "nvidia.com/gpu.machine": "Fake-Server",
            "nvidia.com/gpu.compute.major": str(major),
            "nvidia.com/gpu.compute.minor": str(minor),
            "nvidia.com/gpu.replicas": "1",
            "nvidia.com/gpu.sharing-strategy": "none",
            "nvidia.com/gpu.mode": "compute",
            "nvidia.com/cuda.driver.major": d_major,
            "nvidia.com/cuda.driver.minor": d_minor,
            "nvidia.com/cuda.driver.rev": d_rev,
            "nvidia.com/cuda.driver-version.full": driver,
            "nvidia.com/cuda.runtime.major": c_major,
            "nvidia.com/cuda.runtime.minor": c_minor,
            "nvidia.com/mig.capable": str(any(x in product for x in _MIG_CAPABLE)).lower(),
            **(labels or {}),
        }
        gpus = str(count)
        alloc = str(count if allocatable_gpus is None else allocatable_gpus)
        return self.add_node(
            name,
            labels=gfd,
            capacity={"nvidia.com/gpu": gpus, **node_kwargs.pop("capacity", {})},
            allocatable={"nvidia.com/gpu": alloc, **node_kwargs.pop("allocatable", {})},
            **node_kwargs,
        )

    def remove_node(self, name: str) -> None:
        with self._lock:
            node = self._nodes.pop(name, None)
            if node is not None:
                node["metadata"]["resourceVersion"] = self._next_rv()
                self._emit("nodes", None, "DELETED", node)

    def add_pod(
        self,
        name: str,
        namespace: str = "default",
        *,
        node: str | None = None,
        gpus: int = 0,
        phase: str | None = None,
        labels: Mapping[str, str] | None = None,
        image: str = "registry.example/modelarium/vllm:latest",
        cpu: str | None = None,
        memory: str | None = None,
        containers: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Add a pod; ``gpus`` sets ``nvidia.com/gpu`` requests = limits (extended resources).

        ``phase`` defaults to Running when scheduled on ``node``, else Pending (unschedulable).
        """
        phase = phase or ("Running" if node else "Pending")
        if containers is None:
            requests: dict[str, str] = {}
            limits: dict[str, str] = {}
            if cpu:
                requests["cpu"] = cpu
            if memory:
                requests["memory"] = limits["memory"] = memory
            if gpus:
                requests["nvidia.com/gpu"] = limits["nvidia.com/gpu"] = str(gpus)
            resources: dict[str, Any] = {}
            if requests:
                resources["requests"] = requests
            if limits:
                resources["limits"] = limits
            containers = [{"name": "main", "image": image, "resources": resources}]
        spec = self.pod_spec(containers, node=node, gpus=bool(gpus))
        with self._lock:
            pod = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": name, "namespace": namespace, "labels": dict(labels or {})},
                "spec": spec,
                "status": self.pod_status(spec, phase),
            }
            if not labels:
                pod["metadata"].pop("labels")
            return self.put_pod(pod)

    @staticmethod
    def pod_spec(
        containers: list[dict[str, Any]], *, node: str | None = None, gpus: bool = False
    ) -> dict[str, Any]:
        """A pod spec with the defaults the API server and admission plugins fill in."""
        spec: dict[str, Any] = {
            "containers": containers,
            "restartPolicy": "Always",
            "schedulerName": "default-scheduler",
            "serviceAccountName": "default",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "tolerations": [
                {
                    "key": "node.kubernetes.io/not-ready",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                }
            ],
        }
        if gpus:
            spec["tolerations"].append(
                {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
            )
        if node:
            spec["nodeName"] = node
        return spec

    def put_pod(self, pod: dict[str, Any]) -> dict[str, Any]:
        """Store a pod (create or replace) with fresh server metadata; emits a watch event."""
        with self._lock:
            meta = pod["metadata"]
            namespace, name = meta["namespace"], meta["name"]
            if namespace not in self._namespaces:
                self.add_namespace(namespace)
            old = self._pods.get((namespace, name))
            fresh = self._meta(name, namespace, None)
            if old is not None:
                fresh["uid"] = old["metadata"]["uid"]
                fresh["creationTimestamp"] = old["metadata"]["creationTimestamp"]
            elif meta.get("uid"):
                fresh["uid"] = meta["uid"]
            meta.update(fresh)
            self._pods[(namespace, name)] = pod
            self._emit("pods", namespace, "MODIFIED" if old else "ADDED", pod)
            return copy.deepcopy(pod)

    def pod_status(self, spec: dict[str, Any], phase: str) -> dict[str, Any]:
        now = _now()
        resources = [c.get("resources", {}) for c in spec["containers"]]
        if not any(r.get("requests") or r.get("limits") for r in resources):
            qos = "BestEffort"
        else:
            qos = "Burstable"
        status: dict[str, Any] = {"phase": phase, "qosClass": qos}
        node = spec.get("nodeName")
        if not node:
            status["conditions"] = [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": "0/0 nodes are available: insufficient nvidia.com/gpu.",
                    "lastTransitionTime": now,
                }
            ]
            return status
        running = phase == "Running"
        node_ip = next(
            (
                a["address"]
                for a in self._nodes.get(node, {}).get("status", {}).get("addresses", [])
                if a["type"] == "InternalIP"
            ),
            "10.0.0.1",
        )
        status.update(
            hostIP=node_ip,
            podIP=f"10.244.0.{next(self._ip)}",
            startTime=now,
            conditions=[
                {
                    "type": t,
                    "status": "True" if (running or t == "PodScheduled") else "False",
                    "lastTransitionTime": now,
                }
                for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
            ],
            containerStatuses=[
                {
                    "name": c["name"],
                    "image": c.get("image", ""),
                    "imageID": f"{c.get('image', '')}@sha256:{'0' * 64}",
                    "ready": running,
                    "restartCount": 0,
                    "started": running,
                    "state": (
                        {"running": {"startedAt": now}}
                        if running
                        else {"waiting": {"reason": "ContainerCreating"}}
                        if phase == "Pending"
                        else {
                            "terminated": {
                                "exitCode": 0 if phase == "Succeeded" else 1,
                                "reason": "Completed" if phase == "Succeeded" else "Error",
                                "startedAt": now,
                                "finishedAt": now,
                            }
                        }
                    ),
                }
                for c in spec["containers"]
            ],
        )
        return status

    def set_pod_phase(self, name: str, namespace: str, phase: str) -> None:
        """Move a pod to ``phase`` (e.g. Succeeded) and regenerate its status."""
        with self._lock:
            pod = self._pods[(namespace, name)]
            pod["status"] = self.pod_status(pod["spec"], phase)
            self.put_pod(pod)

    def remove_pod(self, name: str, namespace: str = "default") -> None:
        with self._lock:
            pod = self._pods.pop((namespace, name), None)
            if pod is not None:
                pod["metadata"]["resourceVersion"] = self._next_rv()
                self._emit("pods", namespace, "DELETED", pod)

    def pods(self, namespace: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._sorted_pods(namespace))

    def record_event(
        self,
        namespace: str,
        involved: Mapping[str, Any],
        reason: str,
        message: str,
        *,
        type: str = "Normal",
        component: str = "kubelet",
        host: str | None = None,
        field_path: str | None = None,
    ) -> dict[str, Any]:
        """Record a core v1 Event about ``involved`` (a kind/name/uid/apiVersion dict or a whole
        object); a repeat of the same reason and message counts up, as the event recorder does."""
        with self._lock:
            if "metadata" in involved:
                meta = involved["metadata"]
                ref = {
                    "kind": involved.get("kind"),
                    "namespace": meta.get("namespace", namespace),
                    "name": meta["name"],
                    "uid": meta.get("uid"),
                    "apiVersion": involved.get("apiVersion"),
                    "resourceVersion": meta.get("resourceVersion"),
                }
            else:
                ref = {"namespace": namespace, **dict(involved)}
            if field_path:
                ref["fieldPath"] = field_path
            ref = {k: v for k, v in ref.items() if v is not None}
            now = _now()
            for (ns, _), event in self._events.items():
                same = (
                    ns == namespace
                    and event["involvedObject"].get("uid") == ref.get("uid")
                    and event["involvedObject"].get("name") == ref.get("name")
                    and event["reason"] == reason
                    and event["message"] == message
                )
                if same:
                    event["count"] += 1
                    event["lastTimestamp"] = now
                    event["metadata"]["resourceVersion"] = self._next_rv()
                    self._emit("events", namespace, "MODIFIED", event)
                    return copy.deepcopy(event)
            name = f"{ref.get('name', 'object')}.{uuid.uuid4().hex[:16]}"
            source = {"component": component, **({"host": host} if host else {})}
            event = {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": self._meta(name, namespace, None),
                "involvedObject": ref,
                "reason": reason,
                "message": message,
                "source": source,
                "firstTimestamp": now,
                "lastTimestamp": now,
                "count": 1,
                "type": type,
                "eventTime": None,
                "reportingComponent": component,
                "reportingInstance": host or "",
            }
            self._events[(namespace, name)] = event
            self._emit("events", namespace, "ADDED", event)
            return copy.deepcopy(event)

    def events(self, namespace: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [
                copy.deepcopy(e)
                for (ns, _), e in sorted(self._events.items(), key=lambda kv: _rv_of(kv[1]))
                if namespace is None or ns == namespace
            ]

    # -- objects: custom resources ------------------------------------------------------------
    def _cr(self, group: str, version: str, plural: str) -> CustomResource:
        cr = self._crds.get((group, version, plural))
        if cr is None:
            raise _ApiError(404, "NotFound", "the server could not find the requested resource")
        return cr

    def custom_objects(
        self,
        group: str = KSERVE.group,
        version: str = KSERVE.version,
        plural: str = KSERVE.plural,
        namespace: str | None = None,
    ) -> list[dict[str, Any]]:
        """Stored custom objects of one type (all namespaces unless given), sorted like etcd."""
        with self._lock:
            return [
                copy.deepcopy(obj)
                for (g, p, ns, _), obj in sorted(self._objects.items())
                if g == group and p == plural and (namespace is None or ns == namespace)
            ]

    def custom_object(
        self, namespace: str, name: str, *, cr: CustomResource = KSERVE
    ) -> dict[str, Any] | None:
        with self._lock:
            obj = self._objects.get((cr.group, cr.plural, namespace, name))
            return copy.deepcopy(obj) if obj else None

    def put_custom_object(
        self, namespace: str, obj: Mapping[str, Any], *, cr: CustomResource = KSERVE
    ) -> dict[str, Any]:
        """Store ``obj`` as-is (status included), bypassing API validation: test setup."""
        with self._lock:
            stored = copy.deepcopy(dict(obj))
            stored.setdefault("apiVersion", cr.api_version)
            stored.setdefault("kind", cr.kind)
            meta = stored.setdefault("metadata", {})
            fresh = self._meta(meta["name"], namespace, None)
            for key, value in fresh.items():
                if key == "resourceVersion":
                    meta[key] = value
                else:
                    meta.setdefault(key, value)
            meta.setdefault("generation", 1)
            key = (cr.group, cr.plural, namespace, meta["name"])
            old = self._objects.get(key)
            self._store_custom(cr, key, stored, old)
            return copy.deepcopy(stored)

    def _store_custom(
        self,
        cr: CustomResource,
        key: tuple[str, str, str, str],
        obj: dict[str, Any],
        old: dict[str, Any] | None,
    ) -> None:
        self._objects[key] = obj
        kind = "MODIFIED" if old is not None else "ADDED"
        self._emit(cr.qualified, key[2], kind, obj)
        for listener in self._listeners:
            listener(kind, cr, copy.deepcopy(obj), copy.deepcopy(old) if old else None)

    def _delete_custom(self, cr: CustomResource, key: tuple[str, str, str, str]) -> None:
        obj = self._objects.pop(key)
        obj["metadata"]["resourceVersion"] = self._next_rv()
        self._emit(cr.qualified, key[2], "DELETED", obj)
        for listener in self._listeners:
            listener("DELETED", cr, copy.deepcopy(obj), None)

    def set_custom_object_status(
        self,
        namespace: str,
        name: str,
        status: Mapping[str, Any],
        *,
        cr: CustomResource = KSERVE,
        manager: str | None = None,
    ) -> dict[str, Any]:
        """Replace an object's status as its controller would (bumps resourceVersion only);
        ``manager`` records the write in managedFields as a status-subresource update."""
        with self._lock:
            key = (cr.group, cr.plural, namespace, name)
            obj = self._objects.get(key)
            if obj is None:
                raise KeyError(f"{cr.qualified} {namespace}/{name}")
            old = copy.deepcopy(obj)
            obj["status"] = copy.deepcopy(dict(status))
            if manager:
                managed_fields.record_update(old, obj, manager, subresource="status", now=_now())
            obj["metadata"]["resourceVersion"] = self._next_rv()
            self._store_custom(cr, key, obj, old)
            return copy.deepcopy(obj)

    def set_inference_service_ready(
        self,
        namespace: str,
        name: str,
        *,
        ready: bool = True,
        url: str | None = None,
        reason: str | None = None,
        message: str | None = None,
    ) -> dict[str, Any]:
        """Give an InferenceService the status shape the KServe controller writes."""
        with self._lock:
            obj = self._objects.get((KSERVE.group, KSERVE.plural, namespace, name))
            if obj is None:
                raise KeyError(f"{KSERVE.qualified} {namespace}/{name}")
            url = url or f"http://{name}.{namespace}.example.com"
            now = _now()
            state = "True" if ready else "False"
            conditions = []
            for kind in ("IngressReady", "PredictorReady", "Ready"):
                cond = {"type": kind, "status": state, "lastTransitionTime": now}
                if not ready and reason:
                    cond["reason"] = reason
                if not ready and message:
                    cond["message"] = message
                conditions.append(cond)
            status: dict[str, Any] = {
                "conditions": conditions,
                "observedGeneration": obj["metadata"].get("generation", 1),
                "modelStatus": {
                    "states": {
                        "activeModelState": "Loaded" if ready else "Pending",
                        "targetModelState": "Loaded",
                    },
                    "transitionStatus": "UpToDate" if ready else "InProgress",
                },
            }
            if ready:
                status["url"] = url
                status["address"] = {"url": f"http://{name}-predictor.{namespace}.svc.local"}
                status["components"] = {
                    "predictor": {"latestReadyRevision": f"{name}-predictor-00001", "url": url}
                }
        return self.set_custom_object_status(namespace, name, status)

    # -- HTTP ---------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        with self._lock:
            fault = self._take_fault(request)
            if fault is not None:
                headers = {}
                if fault.retry_after is not None:
                    headers["Retry-After"] = str(fault.retry_after)
                reason = _REASONS.get(fault.status, "InternalError")
                body = _status_body(fault.status, reason, f"injected failure ({reason})")
                return Response.json(body, status=fault.status, headers=headers)
            try:
                self._authenticate(request)
                result = self._route(request)
            except _ApiError as err:
                body = _status_body(err.code, err.reason, err.message, err.details)
                return Response.json(body, status=err.code)
            if isinstance(result, Response):
                return result
            status, body = result
            return Response.json(body, status=status)

    def _take_fault(self, request: Request) -> _Fault | None:
        for fault in self._faults:
            if fault.method is not None and fault.method.upper() != request.method:
                continue
            if fault.path is not None and not request.route.startswith(fault.path):
                continue
            fault.remaining -= 1
            if fault.remaining <= 0:
                self._faults.remove(fault)
            return fault
        return None

    def _authenticate(self, request: Request) -> None:
        auth = request.headers.get("authorization")
        if auth is None and request.route == "/version":
            return  # system:public-info-viewer lets anonymous clients read the version
        if auth != f"Bearer {self.token}":
            raise _ApiError(401, "Unauthorized", "Unauthorized")

    def _authorize(
        self,
        request: Request,
        group: str,
        resource: str,
        namespace: str | None,
        name: str | None,
        sub: str | None = None,
        verb: str | None = None,
    ) -> None:
        """Record the RBAC verb of this request and refuse it if a test denied it."""
        query = request.query
        if verb is None:
            verb = {
                "POST": "create",
                "PUT": "update",
                "PATCH": "patch",
                "DELETE": "delete",
            }.get(request.method, "get")
            if request.method == "GET" and not name:
                verb = "watch" if query.get("watch", [""])[-1] in ("true", "1") else "list"
        full = f"{resource}/{sub}" if sub else resource
        self._verbs.add((group, full, verb))
        for d_verb, d_resource, d_ns in self._denied:
            if (
                d_verb in (verb, "*")
                and d_resource in (full, resource, "*")
                and d_ns in (None, namespace)
            ):
                break
        else:
            return
        qualified = f"{resource}.{group}" if group else resource
        subject = f'{qualified} "{name}"' if name else qualified
        where = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
        details: dict[str, Any] = {"group": group, "kind": resource}
        if name:
            details["name"] = name
        raise _ApiError(
            403,
            "Forbidden",
            f'{subject} is forbidden: User "{self.username}" cannot {verb} resource "{full}" '
            f'in API group "{group}"{where}',
            details,
        )

    def _route(self, request: Request) -> tuple[int, Any] | Response:
        route, method = request.route.rstrip("/") or "/", request.method
        if route == "/version":
            self._only(method, "GET")
            return 200, self._version()
        parts = route.strip("/").split("/")
        if parts[:2] == ["api", "v1"]:
            return self._core(method, parts[2:], request)
        m = _CR_ROUTE.match(route)
        if m and not (m["ns"] is None and m["name"]):
            return self._custom(method, m, request)
        raise _ApiError(404, "NotFound", "the server could not find the requested resource")

    @staticmethod
    def _only(method: str, *allowed: str) -> None:
        if method not in allowed:
            raise _ApiError(405, "MethodNotAllowed", "the server does not allow this method")

    def _version(self) -> dict[str, str]:
        major, minor = self.git_version.lstrip("v").split(".")[:2]
        return {
            "major": major,
            "minor": minor,
            "gitVersion": self.git_version,
            "gitCommit": "0" * 40,
            "gitTreeState": "clean",
            "buildDate": "2024-12-10T00:00:00Z",
            "goVersion": "go1.22.9",
            "compiler": "gc",
            "platform": "linux/amd64",
        }

    def _core(self, method: str, parts: list[str], request: Request) -> tuple[int, Any] | Response:
        self._only(method, "GET")
        collections: dict[str, Callable[[str | None], list[dict[str, Any]]]] = {
            "nodes": lambda _ns: list(self._nodes.values()),
            "pods": self._sorted_pods,
            "namespaces": lambda _ns: list(self._namespaces.values()),
            "events": self._sorted_events,
        }
        if len(parts) == 1 and parts[0] in collections:
            self._authorize(request, "", parts[0], None, None)
            return self._list_or_watch(parts[0], None, collections[parts[0]](None), request)
        if len(parts) == 2 and parts[0] == "nodes":
            self._authorize(request, "", "nodes", None, parts[1])
            return 200, self._get_core("nodes", self._nodes.get(parts[1]), parts[1])
        if len(parts) >= 2 and parts[0] == "namespaces":
            ns = parts[1]
            if len(parts) == 2:
                self._authorize(request, "", "namespaces", None, ns)
                return 200, self._get_core("namespaces", self._namespaces.get(ns), ns)
            resource = parts[2]
            if resource in ("pods", "events"):
                store = self._pods if resource == "pods" else self._events
                if len(parts) == 3:
                    self._authorize(request, "", resource, ns, None)
                    items = collections[resource](ns)
                    return self._list_or_watch(resource, ns, items, request)
                if len(parts) == 4:
                    self._authorize(request, "", resource, ns, parts[3])
                    return 200, self._get_core(resource, store.get((ns, parts[3])), parts[3])
        raise _ApiError(404, "NotFound", "the server could not find the requested resource")

    def _sorted_pods(self, namespace: str | None) -> list[dict[str, Any]]:
        return [
            pod
            for (ns, _), pod in sorted(self._pods.items())
            if namespace is None or ns == namespace
        ]

    def _sorted_events(self, namespace: str | None) -> list[dict[str, Any]]:
        return [
            event
            for (ns, _), event in sorted(self._events.items(), key=lambda kv: _rv_of(kv[1]))
            if namespace is None or ns == namespace
        ]

    @staticmethod
    def _get_core(resource: str, obj: dict[str, Any] | None, name: str) -> dict[str, Any]:
        if obj is None:
            raise _not_found(resource, name)
        return copy.deepcopy(obj)

    def _list_or_watch(
        self,
        resource: str,
        namespace: str | None,
        items: list[dict[str, Any]],
        request: Request,
        cr: CustomResource | None = None,
    ) -> tuple[int, Any] | Response:
        query = {k: v[-1] for k, v in request.query.items()}
        if query.get("watch") in ("true", "1"):
            return self._watch(resource, namespace, items, query, cr)
        return 200, self._list(resource, items, query, cr)

    def _matcher(self, resource: str, query: Mapping[str, str]) -> Callable[[dict], bool]:
        label = _label_matcher(query["labelSelector"]) if query.get("labelSelector") else None
        fields = (
            _field_matcher(query["fieldSelector"], _FIELDS.get(resource, _CR_FIELDS))
            if query.get("fieldSelector")
            else None
        )

        def match(obj: dict[str, Any]) -> bool:
            if label is not None and not label(obj["metadata"].get("labels") or {}):
                return False
            return fields is None or fields(obj)

        return match

    def _list(
        self,
        resource: str,
        items: list[dict[str, Any]],
        query: Mapping[str, str],
        cr: CustomResource | None = None,
    ) -> dict[str, Any]:
        match = self._matcher(resource, query)
        items = [i for i in items if match(i)]
        start = 0
        if query.get("continue"):
            try:
                start = int(base64.urlsafe_b64decode(query["continue"].encode()).decode())
            except ValueError:
                raise _ApiError(400, "BadRequest", "invalid continue token") from None
        meta: dict[str, Any] = {"resourceVersion": str(self._last_rv)}
        limit = int(query.get("limit") or 0)
        end = start + limit if limit > 0 else len(items)
        if end < len(items):
            meta["continue"] = base64.urlsafe_b64encode(str(end).encode()).decode()
            meta["remainingItemCount"] = len(items) - end
        page = copy.deepcopy(items[start:end])
        if cr is None:
            for item in page:  # typed lists omit kind/apiVersion on items
                item.pop("kind", None)
                item.pop("apiVersion", None)
            return {
                "kind": f"{_CORE_KINDS[resource]}List",
                "apiVersion": "v1",
                "metadata": meta,
                "items": page,
            }
        return {
            "apiVersion": cr.api_version,
            "kind": f"{cr.kind}List",
            "metadata": meta,
            "items": page,
        }

    # watches -----------------------------------------------------------------------------------
    def _watch(
        self,
        resource: str,
        namespace: str | None,
        items: list[dict[str, Any]],
        query: Mapping[str, str],
        cr: CustomResource | None,
    ) -> Response:
        """A chunked stream of watch events, as ``GET ...?watch=1`` answers."""
        history_key = cr.qualified if cr else resource
        match = self._matcher(resource, query)
        try:
            timeout = float(query.get("timeoutSeconds") or self.watch_timeout)
        except ValueError:
            raise _ApiError(400, "BadRequest", "invalid timeoutSeconds") from None
        deadline = time.monotonic() + timeout
        bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
        initial: list[dict[str, Any]] = []
        rv_param = query.get("resourceVersion", "")
        gone = False
        if rv_param in ("", "0"):
            initial = [{"type": "ADDED", "object": copy.deepcopy(o)} for o in items if match(o)]
            cursor = self._last_rv
        else:
            try:
                cursor = int(rv_param)
            except ValueError:
                raise _ApiError(
                    400, "BadRequest", f'invalid resource version: "{rv_param}"'
                ) from None
            if cursor < self._compacted:
                gone = True
                message = f"too old resource version: {cursor} ({self._compacted})"
                initial = [{"type": "ERROR", "object": _status_body(410, "Expired", message)}]

        def stream() -> Iterator[bytes]:
            nonlocal cursor
            for event in initial:
                yield (json.dumps(event) + "\n").encode()
            if gone:
                return
            while True:
                with self._changed:
                    start = bisect.bisect_right(self._history_rvs, cursor)
                    changes = self._history[start:]
                    if changes:
                        cursor = changes[-1].rv
                    events = [
                        {"type": c.type, "object": c.obj}
                        for c in changes
                        if c.resource == history_key
                        and (namespace is None or c.namespace == namespace)
                        and match(c.obj)
                    ]
                    if not events:
                        remaining = deadline - time.monotonic()
                        if remaining <= 0 or self.stopping.is_set():
                            break
                        self._changed.wait(min(remaining, 1.0))
                        continue
                    payload = b"".join((json.dumps(e) + "\n").encode() for e in events)
                yield payload
            if bookmarks:
                bookmark = {
                    "kind": cr.kind if cr else _CORE_KINDS.get(resource, ""),
                    "apiVersion": cr.api_version if cr else "v1",
                    "metadata": {"resourceVersion": str(cursor)},
                }
                yield (json.dumps({"type": "BOOKMARK", "object": bookmark}) + "\n").encode()

        return StreamResponse(
            status=200,
            body=stream(),
            headers={"Content-Type": "application/json", "Cache-Control": "no-cache, private"},
        )

    # custom resources ----------------------------------------------------------------------
    def _custom(
        self, method: str, m: re.Match[str], request: Request
    ) -> tuple[int, Any] | Response:
        cr = self._cr(m["group"], m["version"], m["plural"])
        ns, name, sub = m["ns"], m["name"], m["sub"]
        self._authorize(request, cr.group, cr.plural, ns, name, sub)
        if ns is None:
            self._only(method, "GET")
            items = [
                o
                for (g, p, _, _), o in sorted(self._objects.items())
                if g == cr.group and p == cr.plural
            ]
            return self._list_or_watch(cr.plural, None, items, request, cr)
        if name is None:
            self._only(method, "GET", "POST")
            if method == "GET":
                items = [
                    o
                    for (g, p, n, _), o in sorted(self._objects.items())
                    if g == cr.group and p == cr.plural and n == ns
                ]
                return self._list_or_watch(cr.plural, ns, items, request, cr)
            return self._create(cr, ns, request)
        self._only(method, "GET", "PUT", "PATCH", "DELETE")
        if sub and method == "DELETE":
            self._only(method, "GET", "PUT", "PATCH")
        key = (cr.group, cr.plural, ns, name)
        current = self._objects.get(key)
        query = {k: v[-1] for k, v in request.query.items()}
        dry = self._dry_run(query, method)
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if method == "PATCH" and ctype == _APPLY and not sub:
            return self._apply(cr, ns, name, current, request, query, dry)
        if current is None:
            raise _not_found(cr.plural, name, cr.group)
        if method == "GET":
            return 200, copy.deepcopy(current)
        if method == "DELETE":
            details = {
                "name": name,
                "group": cr.group,
                "kind": cr.plural,
                "uid": current["metadata"]["uid"],
            }
            if not dry:
                self._delete_custom(cr, key)
            return 200, _status_body(200, "", "", details)
        if query.get("force") is not None:
            raise _options_invalid("force", "Forbidden: may not be specified for non-apply patch")
        manager = self._manager(query, request)
        if method == "PUT":
            new = self._body(request)
            if not isinstance(new, dict):
                raise _ApiError(400, "BadRequest", "the body must be a JSON object")
            rv = (new.get("metadata") or {}).get("resourceVersion")
            if not rv:
                raise _ApiError(
                    422,
                    "Invalid",
                    f'{cr.kind}.{cr.group} "{name}" is invalid: metadata.resourceVersion: '
                    "Invalid value: 0x0: must be specified for an update",
                    {"name": name, "group": cr.group, "kind": cr.kind},
                )
        else:
            new = self._patched(current, request, ctype)
            rv = (new.get("metadata") or {}).get("resourceVersion")
        if rv and rv != current["metadata"]["resourceVersion"]:
            raise self._stale(cr, name)
        meta = new.get("metadata") or {}
        if meta.get("name", name) != name or meta.get("namespace", ns) != ns:
            raise _ApiError(
                400,
                "BadRequest",
                f"the name of the object ({meta.get('name')}) "
                f"does not match the name on the URL ({name})",
            )
        updated = copy.deepcopy(current)
        if sub == "status":
            updated["status"] = copy.deepcopy(new.get("status"))
            if updated["status"] is None:
                updated.pop("status")
        else:
            # metadata a client may change; the server owns the rest
            for field in ("labels", "annotations", "finalizers", "ownerReferences"):
                if field in meta:
                    updated["metadata"][field] = copy.deepcopy(meta[field])
                else:
                    updated["metadata"].pop(field, None)
            for field, value in new.items():
                if field not in ("metadata", "status", "apiVersion", "kind"):
                    updated[field] = copy.deepcopy(value)
            for field in list(updated):
                if field not in new and field not in ("metadata", "status", "apiVersion", "kind"):
                    del updated[field]
            if updated.get("spec") != current.get("spec"):
                updated["metadata"]["generation"] = current["metadata"].get("generation", 1) + 1
            self._admit(cr, "UPDATE", updated, current)
        managed_fields.record_update(current, updated, manager, subresource=sub or "", now=_now())
        if dry:
            return 200, updated
        updated["metadata"]["resourceVersion"] = self._next_rv()
        self._store_custom(cr, key, updated, current)
        return 200, copy.deepcopy(updated)

    @staticmethod
    def _stale(cr: CustomResource, name: str) -> _ApiError:
        return _ApiError(
            409,
            "Conflict",
            f'Operation cannot be fulfilled on {cr.qualified} "{name}": the object has been '
            "modified; please apply your changes to the latest version and try again",
            {"name": name, "group": cr.group, "kind": cr.plural},
        )

    @staticmethod
    def _dry_run(query: Mapping[str, str], method: str) -> bool:
        value = query.get("dryRun")
        if value is None or method == "GET":
            return False
        if value != "All":
            raise _ApiError(
                400, "BadRequest", f'dryRun: Unsupported value: "{value}": supported values: "All"'
            )
        return True

    @staticmethod
    def _manager(query: Mapping[str, str], request: Request) -> str:
        manager = query.get("fieldManager") or _default_manager(request)
        if len(manager) > 128:
            raise _options_invalid(
                "fieldManager", "Invalid value: must be less than or equal to 128 characters"
            )
        return manager

    def _admit(
        self,
        cr: CustomResource,
        operation: str,
        obj: dict[str, Any],
        old: dict[str, Any] | None,
    ) -> None:
        """Run the validating webhooks that match, in registration order."""
        for hook in self._webhooks:
            if cr.plural not in hook.resources:
                continue
            denial = hook.check(operation, copy.deepcopy(obj), copy.deepcopy(old) if old else None)
            if denial is None:
                continue
            prefix = f'admission webhook "{hook.name}" denied the request'
            message = f"{prefix}: {denial}" if denial else f"{prefix} without explanation"
            raise _ApiError(hook.code, _REASONS.get(hook.code, ""), message)

    @staticmethod
    def _body(request: Request) -> Any:
        try:
            return request.json()
        except ValueError:
            raise _ApiError(
                400, "BadRequest", "the body of the request is not valid JSON"
            ) from None

    def _patched(self, current: dict[str, Any], request: Request, ctype: str) -> dict[str, Any]:
        patch = self._body(request)
        if ctype == "application/merge-patch+json":
            result = merge_patch(current, patch)
        elif ctype == "application/json-patch+json":
            try:
                result = json_patch(current, patch)
            except ValueError as exc:
                raise _ApiError(422, "Invalid", str(exc)) from None
        else:
            raise _ApiError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format - accepted media types "
                f"include: application/json-patch+json, application/merge-patch+json, "
                f"{_APPLY} (got {ctype or 'none'})",
            )
        if not isinstance(result, dict):
            raise _ApiError(422, "Invalid", "patch result is not an object")
        return result

    @staticmethod
    def _check_type(cr: CustomResource, obj: Mapping[str, Any]) -> None:
        if obj.get("apiVersion") != cr.api_version or obj.get("kind") != cr.kind:
            raise _ApiError(
                400,
                "BadRequest",
                f"the API version in the data ({obj.get('apiVersion')}) does not match the "
                f"expected API version ({cr.api_version}) or kind {obj.get('kind')!r} is not "
                f"{cr.kind!r}",
            )

    @staticmethod
    def _check_name(cr: CustomResource, name: str) -> None:
        if not _NAME.fullmatch(name) or len(name) > 253:
            raise _ApiError(
                422,
                "Invalid",
                f'{cr.kind}.{cr.group} "{name}" is invalid: metadata.name: Invalid value: '
                f'"{name}": a lowercase RFC 1123 subdomain must consist of lower case '
                "alphanumeric characters, '-' or '.'",
                {"name": name, "group": cr.group, "kind": cr.kind},
            )

    def _apply(
        self,
        cr: CustomResource,
        ns: str,
        name: str,
        current: dict[str, Any] | None,
        request: Request,
        query: Mapping[str, str],
        dry: bool,
    ) -> tuple[int, Any]:
        """Server-side apply: create or merge, with field ownership and conflicts."""
        if not query.get("fieldManager"):
            raise _options_invalid("fieldManager", "Required value: is required for apply patch")
        manager = self._manager(query, request)
        force = query.get("force") in ("true", "1")
        try:
            config = yaml.safe_load(request.body.decode() or "null")
        except (yaml.YAMLError, UnicodeDecodeError):
            raise _ApiError(
                400, "BadRequest", "the body of the request is not valid YAML"
            ) from None
        if not isinstance(config, dict):
            raise _ApiError(400, "BadRequest", "the apply configuration must be an object")
        self._check_type(cr, config)
        meta = config.get("metadata") or {}
        if meta.get("name") != name or meta.get("namespace", ns) != ns:
            raise _ApiError(
                400,
                "BadRequest",
                f"the name of the object ({meta.get('name')}) "
                f"does not match the name on the URL ({name})",
            )
        if current is not None:
            rv = meta.get("resourceVersion")
            if rv and rv != current["metadata"]["resourceVersion"]:
                raise self._stale(cr, name)
        else:
            self._check_name(cr, name)
            # an apply that creates is authorized as a create too (api-concepts, "Patch and Apply")
            self._authorize(request, cr.group, cr.plural, ns, name, verb="create")
        try:
            result = managed_fields.apply(current, config, manager, force=force, now=_now())
        except managed_fields.ApplyConflict as exc:
            raise _ApiError(
                409,
                "Conflict",
                str(exc),
                {"causes": managed_fields.conflict_causes(exc.conflicts)},
            ) from None
        key = (cr.group, cr.plural, ns, name)
        server_meta = ("uid", "creationTimestamp", "generation", "resourceVersion")
        if current is None:
            fresh = (
                self._meta(name, ns, None)
                if not dry
                else {
                    "name": name,
                    "namespace": ns,
                    "uid": str(uuid.uuid4()),
                    "creationTimestamp": _now(),
                }
            )
            result["metadata"].update(fresh)
            result["metadata"]["generation"] = 1
            result.pop("status", None)
        else:
            for field in server_meta:
                result["metadata"][field] = current["metadata"][field]
            if result.get("spec") != current.get("spec"):
                result["metadata"]["generation"] = current["metadata"].get("generation", 1) + 1
        result["metadata"]["name"], result["metadata"]["namespace"] = name, ns
        self._admit(cr, "UPDATE" if current else "CREATE", result, current)
        if dry:
            return (200 if current else 201), result
        result["metadata"]["resourceVersion"] = (
            self._next_rv() if current is not None else result["metadata"]["resourceVersion"]
        )
        self._store_custom(cr, key, result, current)
        return (200 if current else 201), copy.deepcopy(result)

    def _create(self, cr: CustomResource, ns: str, request: Request) -> tuple[int, Any]:
        obj = self._body(request)
        query = {k: v[-1] for k, v in request.query.items()}
        dry = self._dry_run(query, "POST")
        manager = self._manager(query, request)
        if not isinstance(obj, dict):
            raise _ApiError(400, "BadRequest", "the body must be a JSON object")
        self._check_type(cr, obj)
        meta = dict(obj.get("metadata") or {})
        if meta.get("namespace", ns) != ns:
            raise _ApiError(
                400,
                "BadRequest",
                "the namespace of the provided object does not match the namespace sent on "
                "the request",
            )
        name = meta.get("name")
        if not name and meta.get("generateName"):
            name = f"{meta['generateName']}{uuid.uuid4().hex[:5]}"
        if not name:
            raise _ApiError(
                422,
                "Invalid",
                f'{cr.kind}.{cr.group} "" is invalid: metadata.name: Required value: name or '
                "generateName is required",
                {"group": cr.group, "kind": cr.kind},
            )
        self._check_name(cr, name)
        key = (cr.group, cr.plural, ns, name)
        if key in self._objects:
            raise _ApiError(
                409,
                "AlreadyExists",
                f'{cr.qualified} "{name}" already exists',
                {"name": name, "group": cr.group, "kind": cr.plural},
            )
        stored = copy.deepcopy(obj)
        stored.pop("status", None)  # the status subresource is the controller's
        fresh = (
            self._meta(name, ns, None)
            if not dry
            else {
                "name": name,
                "namespace": ns,
                "uid": str(uuid.uuid4()),
                "creationTimestamp": _now(),
            }
        )
        stored["metadata"] = {
            **{
                k: v
                for k, v in meta.items()
                if k not in ("resourceVersion", "uid", "managedFields")
            },
            **fresh,
            **({"labels": meta["labels"]} if meta.get("labels") else {}),
            "generation": 1,
        }
        self._admit(cr, "CREATE", stored, None)
        managed_fields.record_update(None, stored, manager, now=_now())
        if dry:
            return 201, stored
        self._store_custom(cr, key, stored, None)
        return 201, copy.deepcopy(stored)


def _rv_of(obj: Mapping[str, Any]) -> int:
    return int(obj["metadata"]["resourceVersion"])


@pytest.fixture
def fake_k8s() -> Iterator[FakeKubernetes]:
    """A running :class:`FakeKubernetes`; fails the test if the fake itself crashed."""
    with FakeKubernetes() as fake:
        yield fake
        if fake.errors:
            raise AssertionError(f"FakeKubernetes handler crashed: {fake.errors!r}")


@pytest.fixture
def fake_kserve(fake_k8s: FakeKubernetes) -> FakeKubernetes:
    """:func:`fake_k8s` with the KServe controller running (readiness after 50 ms)."""
    fake_k8s.kserve.ready_after = 0.05
    fake_k8s.kserve.start()
    return fake_k8s
