"""The KServe controller, simulated inside :class:`tests.fakes.kubernetes.FakeKubernetes`.

Modelled on KServe in Serverless mode (Knative revisions), as far as a client of the API sees it:

- every InferenceService whose spec changes (a new ``metadata.generation``) gets a new revision
  ``<name>-predictor-0000N`` with pods labelled ``serving.kserve.io/inferenceservice=<name>``
  (container ``kserve-container``, the model's args, resources, node selector and service
  account); pods are placed on a node whose labels match the node selector and whose
  allocatable ``nvidia.com/gpu`` minus what its pods request covers the request, or stay
  Pending with the scheduler's FailedScheduling event. With no nodes registered at all, pods
  run on ``fake-node`` unchecked;
- while a revision rolls out its conditions are ``Unknown`` (as Knative reports them); after
  :attr:`KServeController.ready_after` seconds it is Ready: conditions ``True``, ``status.url``,
  ``components.predictor.{latestCreatedRevision, latestReadyRevision, traffic}``, the previous
  revision's pods removed, an ``InferenceServiceReady`` event;
- a failure (:meth:`KServeController.inject_failure`, or no node that fits) leaves
  ``PredictorReady``/``Ready`` ``False`` with reason ``RevisionFailed`` and the pods in the
  state the kubelet would show (``ImagePullBackOff``; ``Unschedulable``; ``CrashLoopBackOff``
  after ``OOMKilled`` or an error exit) with the matching Warning events, while traffic stays on
  the revision that was serving;
- ``serving.kserve.io/stop: "true"`` removes the pods and reports ``Stopped`` (``Ready`` False,
  reason ``Stopped``); removing it rolls out a new revision;
- ``spec.predictor.canaryTrafficPercent`` P on a spec that makes a new revision: once Ready, the
  new revision takes P% and the rolled-out one keeps the rest (both keep their pods);
  ``components.predictor.traffic`` lists both, tagged ``latest`` and ``prev``, and
  ``latestRolledoutRevision`` stays the previous one. Changing only ``canaryTrafficPercent``
  makes no revision, it moves the traffic: 0 sends everything back to the previous revision,
  removing it (or 100) promotes the canary (the previous revision's pods go). With the
  annotation ``serving.kserve.io/enable-tag-routing: "true"`` each tagged entry has its own
  ``url`` (``latest-<name>-predictor…``, ``prev-<name>-predictor…``). :attr:`KServeController.
  tag_urls` stands in for the cluster's ingress: a tag mapped there reports that address (a
  local fake model server) instead of a host name nothing resolves.
"""

from __future__ import annotations

import copy
import hashlib
import heapq
import itertools
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.fakes.kubernetes import CustomResource, FakeKubernetes

STOP_ANNOTATION = "serving.kserve.io/stop"
TAG_ROUTING = "serving.kserve.io/enable-tag-routing"
ISVC_LABEL = "serving.kserve.io/inferenceservice"
CONTAINER = "kserve-container"
MANAGER = "manager"  # the KServe controller's field manager name
FAILURES = ("image-pull", "insufficient-gpus", "oom", "crash-loop")
_CONDITIONS = (
    "IngressReady",
    "LatestDeploymentReady",
    "PredictorConfigurationReady",
    "PredictorReady",
    "PredictorRouteReady",
    "Ready",
    "RoutesReady",
)


@dataclass
class _Failure:
    kind: str
    message: str | None = None


@dataclass
class _Service:
    namespace: str
    name: str
    uid: str = ""
    revisions: int = 0
    generation: int = 0
    serving: str | None = None  # revision taking the traffic
    previous: str | None = None  # revision that served before it
    latest: str | None = None  # latest created revision
    pending: str | None = None  # revision rolling out
    failure: _Failure | None = None  # what the pending revision will hit
    unschedulable: str | None = None  # scheduler message for the pending revision
    stopped: bool = False
    ready: bool = False
    failed: dict[str, Any] = field(default_factory=dict)  # condition + failure info
    template: str | None = None  # digest of the predictor spec without canaryTrafficPercent
    percent: int | None = None  # canaryTrafficPercent of the spec
    canary: str | None = None  # the new revision taking ``percent`` beside ``serving``


def _template(obj: Mapping[str, Any]) -> str:
    predictor = dict((obj.get("spec") or {}).get("predictor") or {})
    predictor.pop("canaryTrafficPercent", None)
    return hashlib.sha256(repr(sorted(predictor.items())).encode()).hexdigest()


def _percent(obj: Mapping[str, Any]) -> int | None:
    value = ((obj.get("spec") or {}).get("predictor") or {}).get("canaryTrafficPercent")
    return None if value is None else _int(value)


def _now() -> str:
    from tests.fakes.kubernetes import _now as now

    return now()


def _int(value: Any) -> int:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return 0


def _gpus(container: Mapping[str, Any]) -> int:
    resources = container.get("resources") or {}
    for part in ("requests", "limits"):
        value = (resources.get(part) or {}).get("nvidia.com/gpu")
        if value is not None:
            return _int(value)
    return 0


class KServeController:
    """Reconciles InferenceServices of one :class:`FakeKubernetes`; see the module docstring."""

    def __init__(self, api: FakeKubernetes) -> None:
        self.api = api
        self.ready_after = 0.05
        """Seconds from a revision's creation to its outcome (Ready or failed)."""
        self.runtime_image = "kserve/huggingfaceserver:v0.15.2"
        self.domain = "example.com"
        self.tag_urls: dict[str, str] = {}
        """Tag (``latest``/``prev``) -> the URL its traffic entry reports (tag routing only)."""
        self.paused = False
        """While True, rollouts stay in progress (a test of a readiness deadline)."""
        self.namespaces: set[str] | None = None
        """When set, only these namespaces are reconciled (a benchmark's static objects elsewhere
        stay exactly as put)."""
        self._services: dict[tuple[str, str], _Service] = {}
        self._failures: dict[tuple[str, str], list[_Failure]] = {}
        self._due: list[tuple[float, int, tuple[str, str], str]] = []
        self._seq = itertools.count()
        self._running = False
        self._stop = threading.Event()
        self._wakeup = threading.Event()
        self._thread: threading.Thread | None = None
        api.on_custom_write(self._on_write)

    # -- control ----------------------------------------------------------------------------
    def start(self) -> None:
        """Run the controller; existing InferenceServices are reconciled at once."""
        from tests.fakes.kubernetes import KSERVE

        with self.api._lock:
            if self._running:
                return
            self._running = True
            self._stop.clear()
            for group, plural, ns, name in sorted(self.api._objects):
                if self.namespaces is not None and ns not in self.namespaces:
                    continue
                if (group, plural) == (KSERVE.group, KSERVE.plural):
                    self._schedule((ns, name), "reconcile", 0.0)
        self._thread = threading.Thread(target=self._loop, name="fake-kserve", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wakeup.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self._running = False

    def reset(self) -> None:
        with self.api._lock:
            self._services.clear()
            self._failures.clear()
            self._due.clear()
            self.paused = False

    def inject_failure(
        self, namespace: str, name: str, failure: str, *, message: str | None = None
    ) -> None:
        """The next revision of ``namespace/name`` fails with ``failure`` (one of
        :data:`FAILURES`); ``message`` is the crashed process's last words for ``crash-loop``."""
        if failure not in FAILURES:
            raise ValueError(f"unknown failure {failure!r}; one of {', '.join(FAILURES)}")
        with self.api._lock:
            self._failures.setdefault((namespace, name), []).append(_Failure(failure, message))

    def settle(self, timeout: float = 5.0) -> bool:
        """Wait until no rollout is due (False on timeout or while paused)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.api._lock:
                if not self._due:
                    return True
            time.sleep(0.01)
        return False

    def serving_revision(self, namespace: str, name: str) -> str | None:
        """The revision taking traffic (None when nothing serves)."""
        with self.api._lock:
            svc = self._services.get((namespace, name))
            return svc.serving if svc else None

    # -- the reconcile loop ------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            with self.api._lock:
                now = time.monotonic()
                ready = []
                while self._due and self._due[0][0] <= now:
                    ready.append(heapq.heappop(self._due))
                wait = (self._due[0][0] - now) if self._due else 0.5
            for _, _, key, action in ready:
                with self.api._lock:
                    if action == "reconcile":
                        self._reconcile(key)
                    else:
                        self._settle(key, action)
            if not ready:
                self._wakeup.wait(max(0.0, min(wait, 0.5)))
                self._wakeup.clear()

    def _schedule(self, key: tuple[str, str], action: str, delay: float) -> None:
        """Queue ``action`` ("reconcile", or a revision name to settle) after ``delay``."""
        heapq.heappush(self._due, (time.monotonic() + delay, next(self._seq), key, action))
        self._wakeup.set()

    def _on_write(
        self, kind: str, cr: CustomResource, obj: dict[str, Any], old: dict[str, Any] | None
    ) -> None:
        """The informer's side: queue a reconcile; the controller acts after the write returns."""
        from tests.fakes.kubernetes import KSERVE

        if self._running and (cr.group, cr.plural) == (KSERVE.group, KSERVE.plural):
            meta = obj["metadata"]
            if self.namespaces is not None and meta["namespace"] not in self.namespaces:
                return
            self._schedule((meta["namespace"], meta["name"]), "reconcile", 0.0)

    def _reconcile(self, key: tuple[str, str]) -> None:
        obj = self.api.custom_object(*key)
        if obj is None:
            self._delete_pods(key)
            self._services.pop(key, None)
            return
        meta = obj["metadata"]
        svc = self._services.get(key)
        if svc is None or svc.uid != meta["uid"]:  # new, or deleted and created again
            if svc is not None:
                self._delete_pods(key)
            svc = self._services[key] = _Service(*key, uid=meta["uid"])
        generation = int(meta.get("generation") or 1)
        stop = (meta.get("annotations") or {}).get(STOP_ANNOTATION) == "true"
        if stop:
            svc.generation = generation
            if not svc.stopped:
                self._stop_service(svc, obj)
            return
        template, percent = _template(obj), _percent(obj)
        traffic_only = (
            not svc.stopped
            and svc.revisions > 0
            and template == svc.template
            and (percent is not None or svc.percent is not None)
        )
        if traffic_only and generation != svc.generation:
            svc.generation = generation
            self._move_traffic(svc, obj, percent)
        elif svc.stopped or generation != svc.generation or svc.revisions == 0:
            svc.stopped = False
            svc.generation = generation
            svc.template, svc.percent = template, percent
            self._new_revision(svc, obj)

    def _move_traffic(self, svc: _Service, obj: dict[str, Any], percent: int | None) -> None:
        """Only canaryTrafficPercent changed: no revision, the split moves."""
        svc.percent = percent
        if svc.canary is not None and (percent is None or percent >= 100):
            self._delete_pods((svc.namespace, svc.name), revision=svc.serving)
            svc.previous, svc.serving, svc.canary = svc.serving, svc.canary, None
        self._write_status(svc, obj, "ready" if svc.ready else "deploying")

    # -- revisions ---------------------------------------------------------------------------
    def _new_revision(self, svc: _Service, obj: dict[str, Any]) -> None:
        key = (svc.namespace, svc.name)
        if svc.pending:  # superseded before it settled
            self._delete_pods(key, revision=svc.pending)
        elif svc.latest and svc.latest != svc.serving:  # the failed one
            self._delete_pods(key, revision=svc.latest)
        svc.revisions += 1
        revision = f"{svc.name}-predictor-{svc.revisions:05d}"
        queued = self._failures.get(key) or []
        svc.failure = queued.pop(0) if queued else None
        svc.latest = svc.pending = revision
        svc.failed = {}
        svc.unschedulable = None
        predictor = (obj.get("spec") or {}).get("predictor") or {}
        replicas = max(1, _int(predictor.get("minReplicas") or 1))
        for index in range(replicas):
            pod = self._pod(svc, obj, revision, index)
            if svc.failure is not None and svc.failure.kind == "insufficient-gpus":
                node, message = None, self._unschedulable_message(pod, forced=True)
            else:
                node, message = self._place(pod)
            if node is None:
                svc.unschedulable = message
                pod["status"] = self._unscheduled_status(message)
                stored = self.api.put_pod(pod)
                self.api.record_event(
                    svc.namespace,
                    stored,
                    "FailedScheduling",
                    message,
                    type="Warning",
                    component="default-scheduler",
                )
                continue
            pod["spec"]["nodeName"] = node
            pod["status"] = self.api.pod_status(pod["spec"], "Pending")
            stored = self.api.put_pod(pod)
            self.api.record_event(
                svc.namespace,
                stored,
                "Scheduled",
                f"Successfully assigned {svc.namespace}/{pod['metadata']['name']} to {node}",
                component="default-scheduler",
            )
        self._write_status(svc, obj, "deploying")
        self._schedule(key, revision, self.ready_after)

    def _settle(self, key: tuple[str, str], revision: str) -> None:
        svc = self._services.get(key)
        if svc is None or svc.pending != revision:
            return
        if self.paused:
            self._schedule(key, revision, max(self.ready_after, 0.05))
            return
        obj = self.api.custom_object(*key)
        if obj is None:
            return
        svc.pending = None
        if svc.unschedulable is not None:
            self._fail(svc, obj, revision, "insufficient-gpus", svc.unschedulable)
        elif svc.failure is not None:
            self._fail(svc, obj, revision, svc.failure.kind, svc.failure.message)
        else:
            self._become_ready(svc, obj, revision)

    def _become_ready(self, svc: _Service, obj: dict[str, Any], revision: str) -> None:
        key = (svc.namespace, svc.name)
        for pod in self._pods_of(key, revision):
            pod["status"] = self.api.pod_status(pod["spec"], "Running")
            stored = self.api.put_pod(pod)
            image = pod["spec"]["containers"][0]["image"]
            path = f"spec.containers{{{CONTAINER}}}"
            for reason, message in (
                ("Pulled", f'Container image "{image}" already present on machine'),
                ("Created", f"Created container {CONTAINER}"),
                ("Started", f"Started container {CONTAINER}"),
            ):
                self.api.record_event(
                    svc.namespace,
                    stored,
                    reason,
                    message,
                    host=pod["spec"].get("nodeName"),
                    field_path=path,
                )
        canary = svc.percent is not None and svc.percent < 100
        if canary and svc.serving and svc.serving != revision:
            if svc.canary and svc.canary != revision:  # a canary replaced by a newer one
                self._delete_pods(key, revision=svc.canary)
            svc.canary = revision  # the rolled-out revision keeps its pods and the rest
        else:
            if svc.serving and svc.serving != revision:
                self._delete_pods(key, revision=svc.serving)
                svc.previous = svc.serving
            if svc.canary and svc.canary != revision:
                self._delete_pods(key, revision=svc.canary)
            svc.canary = None
            svc.serving = revision
        was_ready, svc.ready = svc.ready, True
        self._write_status(svc, obj, "ready")
        if not was_ready:
            self.api.record_event(
                svc.namespace,
                self.api.custom_object(*key) or obj,
                "InferenceServiceReady",
                f"InferenceService [{svc.name}] is Ready",
                component="v1beta1Controllers",
            )

    def _fail(
        self, svc: _Service, obj: dict[str, Any], revision: str, kind: str, detail: str | None
    ) -> None:
        key = (svc.namespace, svc.name)
        pods = self._pods_of(key, revision)
        reason_text = ""
        info: dict[str, Any] | None = None
        for pod in pods:
            pod_name = pod["metadata"]["name"]
            image = pod["spec"]["containers"][0]["image"]
            path = f"spec.containers{{{CONTAINER}}}"
            uid = pod["metadata"].get("uid", "")
            host = pod["spec"].get("nodeName")
            if kind == "insufficient-gpus":
                reason_text = detail or ""
                continue  # stays Pending; FailedScheduling was recorded when it was created
            if kind == "image-pull":
                pod["status"] = self._waiting(
                    pod, "ImagePullBackOff", f'Back-off pulling image "{image}"'
                )
                self.api.put_pod(pod)
                pull = (
                    f'Failed to pull image "{image}": rpc error: code = NotFound desc = failed to '
                    f'pull and unpack image "{image}": failed to resolve reference "{image}": '
                    "not found"
                )
                for etype, reason, message in (
                    ("Normal", "Pulling", f'Pulling image "{image}"'),
                    ("Warning", "Failed", pull),
                    ("Warning", "Failed", "Error: ErrImagePull"),
                    ("Normal", "BackOff", f'Back-off pulling image "{image}"'),
                    ("Warning", "Failed", "Error: ImagePullBackOff"),
                ):
                    self.api.record_event(
                        svc.namespace, pod, reason, message, type=etype, host=host, field_path=path
                    )
                reason_text = f'Back-off pulling image "{image}"'
                continue
            oom = kind == "oom"
            exit_code = 137 if oom else 1
            last_words = "" if oom else (detail or "Error: the model server exited")
            terminated = {
                "exitCode": exit_code,
                "reason": "OOMKilled" if oom else "Error",
                "startedAt": _now(),
                "finishedAt": _now(),
                **({"message": last_words} if last_words else {}),
            }
            backoff = (
                f"back-off 40s restarting failed container={CONTAINER} "
                f"pod={pod_name}_{svc.namespace}({uid})"
            )
            pod["status"] = self._waiting(
                pod, "CrashLoopBackOff", backoff, last=terminated, restarts=3, phase="Running"
            )
            self.api.put_pod(pod)
            for etype, reason, message in (
                ("Normal", "Pulled", f'Container image "{image}" already present on machine'),
                ("Normal", "Created", f"Created container {CONTAINER}"),
                ("Normal", "Started", f"Started container {CONTAINER}"),
                (
                    "Warning",
                    "BackOff",
                    f"Back-off restarting failed container {CONTAINER} in pod "
                    f"{pod_name}_{svc.namespace}({uid})",
                ),
            ):
                self.api.record_event(
                    svc.namespace, pod, reason, message, type=etype, host=host, field_path=path
                )
            reason_text = f"Container failed with: {'OOMKilled' if oom else last_words}"
            info = {
                "location": pod_name,
                "reason": "ModelLoadFailed",
                "message": "OOMKilled" if oom else last_words,
                "modelRevisionName": revision,
                "exitCode": exit_code,
                "time": _now(),
            }
        message = f'Revision "{revision}" failed with message: {reason_text}.'
        svc.failed = {"reason": "RevisionFailed", "message": message, "info": info}
        was_ready, svc.ready = svc.ready, False
        self._write_status(svc, obj, "failed")
        if was_ready:
            self._not_ready_event(svc, obj)

    def _stop_service(self, svc: _Service, obj: dict[str, Any]) -> None:
        key = (svc.namespace, svc.name)
        self._delete_pods(key)
        svc.stopped = True
        svc.pending = None
        svc.previous, svc.serving = svc.serving or svc.previous, None
        was_ready, svc.ready = svc.ready, False
        self._write_status(svc, obj, "stopped")
        if was_ready:
            self._not_ready_event(svc, obj)

    def _not_ready_event(self, svc: _Service, obj: dict[str, Any]) -> None:
        current = self.api.custom_object(svc.namespace, svc.name) or obj
        failing = [
            c["type"]
            for c in (current.get("status") or {}).get("conditions") or []
            if c.get("status") != "True" and c["type"] != "Stopped"
        ]
        self.api.record_event(
            svc.namespace,
            current,
            "InferenceServiceNotReady",
            f"InferenceService [{svc.name}] is no longer Ready because of: {', '.join(failing)}",
            type="Warning",
            component="v1beta1Controllers",
        )

    # -- pods --------------------------------------------------------------------------------
    def _pod(self, svc: _Service, obj: dict[str, Any], revision: str, index: int) -> dict:
        predictor = (obj.get("spec") or {}).get("predictor") or {}
        model = predictor.get("model") or {}
        resources = copy.deepcopy(model.get("resources") or {})
        limits = resources.get("limits") or {}
        if "nvidia.com/gpu" in limits:  # extended resources: requests default to limits
            resources.setdefault("requests", {}).setdefault(
                "nvidia.com/gpu", limits["nvidia.com/gpu"]
            )
        container: dict[str, Any] = {
            "name": CONTAINER,
            "image": model.get("image") or self.runtime_image,
            "args": list(model.get("args") or []),
            "resources": resources,
            "ports": [{"containerPort": 8080, "name": "user-port", "protocol": "TCP"}],
        }
        if model.get("env"):
            container["env"] = copy.deepcopy(model["env"])
        spec = self.api.pod_spec([container], gpus=_gpus(container) > 0)
        if predictor.get("nodeSelector"):
            spec["nodeSelector"] = dict(predictor["nodeSelector"])
        if predictor.get("serviceAccountName"):
            spec["serviceAccountName"] = predictor["serviceAccountName"]
        uri = str(model.get("storageUri") or "")
        if uri.startswith("pvc://"):
            claim = uri.removeprefix("pvc://").split("/", 1)[0]
            spec["volumes"] = [
                {
                    "name": "kserve-pvc-source",
                    "persistentVolumeClaim": {"claimName": claim, "readOnly": True},
                }
            ]
            container["volumeMounts"] = [
                {"name": "kserve-pvc-source", "mountPath": "/mnt/pvc", "readOnly": True}
            ]
        elif uri:
            spec["initContainers"] = [
                {
                    "name": "storage-initializer",
                    "image": "kserve/storage-initializer:v0.15.2",
                    "args": [uri, "/mnt/models"],
                }
            ]
        digest = hashlib.sha256(revision.encode()).hexdigest()[:10]
        name = f"{revision}-deployment-{digest}-{uuid.uuid4().hex[:5]}"
        uid = str(uuid.uuid4())
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": svc.namespace,
                "uid": uid,
                "labels": {
                    "app": revision,
                    "component": "predictor",
                    ISVC_LABEL: svc.name,
                    "serving.knative.dev/configuration": f"{svc.name}-predictor",
                    "serving.knative.dev/revision": revision,
                    "serving.knative.dev/service": f"{svc.name}-predictor",
                },
            },
            "spec": spec,
        }

    def _place(self, pod: dict[str, Any]) -> tuple[str | None, str]:
        nodes = self.api._nodes
        if not nodes:
            return "fake-node", ""
        need = _gpus(pod["spec"]["containers"][0])
        selector = pod["spec"].get("nodeSelector") or {}
        used: dict[str, int] = {}
        for other in self.api._pods.values():
            node = other["spec"].get("nodeName")
            if node and other.get("status", {}).get("phase") not in ("Succeeded", "Failed"):
                used[node] = used.get(node, 0) + _gpus(other["spec"]["containers"][0])
        reasons: dict[str, int] = {}
        for name in sorted(nodes):
            node = nodes[name]
            labels = node["metadata"].get("labels") or {}
            ready = any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in node["status"].get("conditions") or []
            )
            if not ready or node["spec"].get("unschedulable"):
                reasons["node(s) were unschedulable"] = (
                    reasons.get("node(s) were unschedulable", 0) + 1
                )
                continue
            if any(labels.get(k) != v for k, v in selector.items()):
                why = "node(s) didn't match Pod's node affinity/selector"
                reasons[why] = reasons.get(why, 0) + 1
                continue
            free = _int((node["status"].get("allocatable") or {}).get("nvidia.com/gpu")) - used.get(
                name, 0
            )
            if need > free:
                reasons["Insufficient nvidia.com/gpu"] = (
                    reasons.get("Insufficient nvidia.com/gpu", 0) + 1
                )
                continue
            return name, ""
        return None, self._message(len(nodes), reasons)

    def _unschedulable_message(self, pod: dict[str, Any], *, forced: bool) -> str:
        total = max(1, len(self.api._nodes))
        return self._message(total, {"Insufficient nvidia.com/gpu": total})

    @staticmethod
    def _message(total: int, reasons: Mapping[str, int]) -> str:
        """The scheduler's FailedScheduling wording."""
        parts = ", ".join(f"{count} {why}" for why, count in sorted(reasons.items()))
        preempt = ", ".join(
            f"{count} "
            + (
                "No preemption victims found for incoming pod"
                if why.startswith("Insufficient")
                else "Preemption is not helpful for scheduling"
            )
            for why, count in sorted(reasons.items())
        )
        return (
            f"0/{total} nodes are available: {parts}. "
            f"preemption: 0/{total} nodes are available: {preempt}."
        )

    @staticmethod
    def _unscheduled_status(message: str) -> dict[str, Any]:
        return {
            "phase": "Pending",
            "qosClass": "Burstable",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": message,
                    "lastTransitionTime": _now(),
                }
            ],
        }

    def _waiting(
        self,
        pod: dict[str, Any],
        reason: str,
        message: str,
        *,
        last: dict[str, Any] | None = None,
        restarts: int = 0,
        phase: str = "Pending",
    ) -> dict[str, Any]:
        status = self.api.pod_status(pod["spec"], "Pending")
        status["phase"] = phase
        for cond in status.get("conditions") or []:
            if cond["type"] in ("ContainersReady", "Ready"):
                cond["reason"] = "ContainersNotReady"
                cond["message"] = f"containers with unready status: [{CONTAINER}]"
        for cs in status.get("containerStatuses") or []:
            cs["state"] = {"waiting": {"reason": reason, "message": message}}
            cs["restartCount"] = restarts
            if last:
                cs["lastState"] = {"terminated": last}
        return status

    def _pods_of(self, key: tuple[str, str], revision: str | None = None) -> list[dict]:
        namespace, name = key
        return [
            copy.deepcopy(pod)
            for (ns, _), pod in sorted(self.api._pods.items())
            if ns == namespace
            and (pod["metadata"].get("labels") or {}).get(ISVC_LABEL) == name
            and (
                revision is None
                or pod["metadata"]["labels"].get("serving.knative.dev/revision") == revision
            )
        ]

    def _delete_pods(self, key: tuple[str, str], revision: str | None = None) -> None:
        for pod in self._pods_of(key, revision):
            self.api.remove_pod(pod["metadata"]["name"], key[0])

    # -- status ------------------------------------------------------------------------------
    def _write_status(self, svc: _Service, obj: dict[str, Any], phase: str) -> None:
        name, ns = svc.name, svc.namespace
        current = self.api.custom_object(ns, name) or obj
        old = {c["type"]: c for c in (current.get("status") or {}).get("conditions") or []}
        serving = svc.serving
        wanted: dict[str, tuple[str, str, str]] = {}
        waiting = (
            "RevisionMissing",
            f'Configuration "{name}-predictor" is waiting for a Revision to become ready.',
        )
        if phase == "ready":
            wanted = dict.fromkeys(_CONDITIONS, ("True", "", ""))
        elif phase == "deploying":
            route = ("True", "", "") if serving else ("Unknown", *waiting)
            wanted = {
                "IngressReady": route,
                "LatestDeploymentReady": ("Unknown", "PredictorConfigurationReady not ready", ""),
                "PredictorConfigurationReady": ("Unknown", *waiting),
                "PredictorReady": ("Unknown", *waiting),
                "PredictorRouteReady": route,
                "Ready": ("Unknown", *waiting),
                "RoutesReady": route
                if serving
                else ("Unknown", "PredictorRouteReady not ready", ""),
            }
        elif phase == "failed":
            failed = ("False", svc.failed["reason"], svc.failed["message"])
            route = ("True", "", "") if serving else failed
            wanted = {
                "IngressReady": route,
                "LatestDeploymentReady": ("False", "PredictorConfigurationReady not ready", ""),
                "PredictorConfigurationReady": failed,
                "PredictorReady": failed,
                "PredictorRouteReady": route,
                "Ready": failed,
                "RoutesReady": route if serving else ("False", "PredictorRouteReady not ready", ""),
            }
        elif phase == "stopped":
            stopped = ("False", "Stopped", "")
            wanted = {
                "IngressReady": stopped,
                "PredictorReady": stopped,
                "Ready": stopped,
                "Stopped": ("True", "", ""),
            }
        now = _now()
        conditions = []
        for ctype in sorted(wanted):
            status, reason, message = wanted[ctype]
            cond: dict[str, Any] = {"type": ctype, "status": status}
            previous = old.get(ctype)
            same = previous is not None and previous.get("status") == status
            cond["lastTransitionTime"] = previous["lastTransitionTime"] if same else now
            if reason:
                cond["reason"] = reason
            if message:
                cond["message"] = message
            if ctype not in ("IngressReady", "PredictorReady", "Ready", "Stopped"):
                cond["severity"] = "Info"
            conditions.append(cond)
        pods = self._pods_of((ns, name), serving) if serving else []
        ready_pods = sum(
            1
            for p in pods
            if any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in p.get("status", {}).get("conditions") or []
            )
        )
        status: dict[str, Any] = {
            "conditions": conditions,
            "observedGeneration": svc.generation,
            "deploymentMode": "Serverless",
            "address": {"url": f"http://{name}.{ns}.svc.cluster.local"},
        }
        model_status: dict[str, Any] = {"copies": {"failedCopies": 0, "totalCopies": ready_pods}}
        if phase == "ready":
            model_status.update(
                states={"activeModelState": "Loaded", "targetModelState": "Loaded"},
                transitionStatus="UpToDate",
            )
        elif phase == "deploying":
            model_status.update(
                states={
                    "activeModelState": "Loaded" if serving else "Pending",
                    "targetModelState": "Pending",
                },
                transitionStatus="InProgress",
            )
        elif phase == "failed":
            model_status.update(
                states={
                    "activeModelState": "Loaded" if serving else "",
                    "targetModelState": "FailedToLoad",
                },
                transitionStatus="BlockedByFailedLoad",
            )
            if svc.failed.get("info"):
                model_status["lastFailureInfo"] = svc.failed["info"]
                model_status["copies"]["failedCopies"] = 1
        else:
            model_status = {"transitionStatus": "UpToDate"}
        status["modelStatus"] = model_status
        predictor: dict[str, Any] = {}
        if svc.latest and phase != "stopped":
            predictor["latestCreatedRevision"] = svc.latest
        if serving:
            url = f"http://{name}-predictor.{ns}.{self.domain}"
            traffic = [
                {
                    "latestRevision": serving == svc.latest,
                    "percent": 100,
                    "revisionName": serving,
                }
            ]
            if svc.canary:
                share = max(0, min(100, svc.percent or 0))
                traffic = [
                    {"latestRevision": True, "percent": share, "revisionName": svc.canary,
                     "tag": "latest", "url": self.tag_urls.get(
                         "latest", f"http://latest-{name}-predictor.{ns}.{self.domain}")},
                    {"latestRevision": False, "percent": 100 - share, "revisionName": serving,
                     "tag": "prev", "url": self.tag_urls.get(
                         "prev", f"http://prev-{name}-predictor.{ns}.{self.domain}")},
                ]  # fmt: skip
                annotations = (obj.get("metadata") or {}).get("annotations") or {}
                if annotations.get(TAG_ROUTING) != "true":  # tagged URLs only when asked for
                    for entry in traffic:
                        del entry["url"]
            predictor.update(
                latestReadyRevision=svc.canary or serving,
                latestRolledoutRevision=serving,
                traffic=traffic,
                url=url,
                address={"url": f"http://{name}-predictor.{ns}.svc.cluster.local"},
            )
            if svc.previous:
                predictor["previousRolledoutRevision"] = svc.previous
            status["url"] = f"http://{name}.{ns}.{self.domain}"
        if predictor:
            status["components"] = {"predictor": predictor}
        self.api.set_custom_object_status(ns, name, status, manager=MANAGER)
