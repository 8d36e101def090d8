"""Reading a live InferenceService: is it Ready, still rolling out, failed (and why), stopped.

KServe reports a rollout in progress differently by mode: Serverless (Knative) says ``Unknown``
(reason ``RevisionMissing``), RawDeployment says ``False`` (``MinimumReplicasUnavailable``). A
failure is ``False`` for another reason, a model that could not load
(``modelStatus.transitionStatus: BlockedByFailedLoad``), or pods the kubelet or scheduler
gave up on (image pull back-off, crash loop, OOM kill, unschedulable), which is what is checked
when the conditions alone do not tell.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from modelarium.core.clients.kubernetes import condition, is_ready
from modelarium.core.deployments.manifest import STOP_ANNOTATION

IN_PROGRESS = frozenset(
    {
        "",
        "RevisionMissing",
        "Deploying",
        "MinimumReplicasUnavailable",
        "NewReplicaSetCreated",
        "ReplicaSetUpdated",
        "FoundNewReplicaSet",
        "PredictorConfigurationReady not ready",
        # The stop annotation is gone but the controller has not reconciled yet: the status is
        # still the stopped one (the annotation changes no generation, so it does not look stale).
        "Stopped",
    }
)
"""Ready-condition reasons that mean "still rolling out", not "failed"."""
POD_FAILURES = frozenset(
    {
        "ImagePullBackOff",
        "ErrImagePull",
        "InvalidImageName",
        "CrashLoopBackOff",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)


@dataclass(frozen=True)
class Health:
    state: str  # ready | progressing | failed | stopped | missing
    reason: str | None = None
    message: str | None = None
    url: str | None = None
    revision: str | None = None  # the revision taking traffic
    latest: str | None = None  # the latest created revision
    traffic: tuple[dict[str, Any], ...] = ()
    conditions: tuple[dict[str, Any], ...] = field(default=())

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    def why(self) -> str:
        """``Ready is False: RevisionFailed — <message>`` (empty when Ready)."""
        if self.ready:
            return ""
        text = f"{self.reason}" if self.reason else self.state
        return f"{text}: {self.message}" if self.message else text


def health(obj: Mapping[str, Any] | None) -> Health:
    if obj is None:
        return Health("missing", "NotFound", "the InferenceService does not exist")
    status = obj.get("status") or {}
    predictor = (status.get("components") or {}).get("predictor") or {}
    base = {
        "url": status.get("url"),
        "revision": predictor.get("latestReadyRevision"),
        "latest": predictor.get("latestCreatedRevision"),
        "traffic": tuple(predictor.get("traffic") or ()),
        "conditions": tuple(status.get("conditions") or ()),
    }
    ready = condition(obj, "Ready") or {}
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    if annotations.get(STOP_ANNOTATION) == "true":
        stopped = (
            ready.get("reason") == "Stopped"
            or (condition(obj, "Stopped") or {}).get("status") == "True"
        )
        return Health(
            "stopped" if stopped else "progressing",
            "Stopped",
            "stopped with the serving.kserve.io/stop annotation",
            **{**base, "url": None},
        )
    if is_ready(obj):
        return Health("ready", **base)
    reason = str(ready.get("reason") or "")
    message = str(ready.get("message") or "")
    observed = status.get("observedGeneration")
    generation = (obj.get("metadata") or {}).get("generation")
    stale = observed is not None and generation is not None and int(observed) < int(generation)
    blocked = (status.get("modelStatus") or {}).get("transitionStatus") == "BlockedByFailedLoad"
    if not stale and (blocked or (ready.get("status") == "False" and reason not in IN_PROGRESS)):
        info = (status.get("modelStatus") or {}).get("lastFailureInfo") or {}
        return Health(
            "failed",
            reason or str(info.get("reason") or "Failed"),
            message or str(info.get("message") or ""),
            **base,
        )
    return Health("progressing", reason or "Progressing", message or None, **base)


def pod_failures(pods: Iterable[Mapping[str, Any]]) -> list[tuple[str, str, str]]:
    """(pod, reason, message) for pods the kubelet or scheduler gave up on."""
    out: list[tuple[str, str, str]] = []
    for pod in pods:
        name = str((pod.get("metadata") or {}).get("name") or "?")
        status = pod.get("status") or {}
        for cond in status.get("conditions") or []:
            if cond.get("type") == "PodScheduled" and cond.get("reason") == "Unschedulable":
                out.append((name, "Unschedulable", str(cond.get("message") or "")))
        for cs in status.get("containerStatuses") or []:
            waiting = (cs.get("state") or {}).get("waiting") or {}
            last = (cs.get("lastState") or {}).get("terminated") or {}
            if last.get("reason") == "OOMKilled":
                out.append((name, "OOMKilled", f"container {cs.get('name')} ran out of memory"))
            elif waiting.get("reason") == "CrashLoopBackOff" and last:
                # The back-off message says nothing; the last exit says why it crashed.
                words = str(last.get("message") or "").strip().splitlines()
                detail = f"last exit {last.get('exitCode')} ({last.get('reason')})"
                out.append((name, "CrashLoopBackOff", detail + (f": {words[-1]}" if words else "")))
            elif waiting.get("reason") in POD_FAILURES:
                out.append((name, str(waiting["reason"]), str(waiting.get("message") or "")))
    return out


def event_line(event: Mapping[str, Any]) -> str:
    involved = (event.get("involvedObject") or {}).get("name") or "?"
    count = int(event.get("count") or 1)
    times = f" (×{count})" if count > 1 else ""
    return f"{involved}: {event.get('reason')}{times} — {event.get('message')}"
