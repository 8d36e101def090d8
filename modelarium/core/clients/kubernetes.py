"""The Kubernetes API, configured once: kubeconfig or in-cluster, timeouts, error mapping.

What Modelarium reads and writes: nodes (GPU feature discovery labels, allocatable GPUs) and
pods for the GPU inventory; KServe ``InferenceService`` objects (get, list per namespace,
server-side apply as field manager ``modelarium``, dry runs, annotation patches, deletes,
watches) and the pods and events that explain them. Answers come back as plain dicts from the
API's JSON, which is what callers want and avoids deserialising thousands of models per list.

Every failure becomes one line a person can act on: the cluster is unreachable; the kubeconfig
is missing or its credentials expired; RBAC refused a verb (the API server's own sentence); an
admission webhook rejected the object (its message verbatim); another field manager owns fields
an apply would change (who owns what).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelarium.config.settings import Settings

if TYPE_CHECKING:  # the library is imported when a client is made (a third of a second)
    from kubernetes import client as k8s_client
    from kubernetes.client.exceptions import ApiException
from modelarium.core.errors import (
    ConflictError,
    ModelariumError,
    NotFoundError,
    PermissionDeniedError,
    UnreachableError,
    UpstreamError,
    ValidationError,
)

PAGE_SIZE = 500
"""Items per list call; larger clusters are read in pages with ``continue`` tokens."""
FIELD_MANAGER = "modelarium"
"""Who owns the fields Modelarium applies (``metadata.managedFields``)."""
KSERVE_GROUP, KSERVE_VERSION, INFERENCE_SERVICES = (
    "serving.kserve.io",
    "v1beta1",
    "inferenceservices",
)
ISVC_LABEL = "serving.kserve.io/inferenceservice"
"""The label KServe puts on every pod of an InferenceService."""
APPLY_CONTENT_TYPE = "application/apply-patch+yaml"
WATCH_CHUNK = 10.0
"""Seconds per watch request: a waiter gets control back this often to check its deadline."""


class KubernetesNotConfiguredError(UpstreamError):
    """Neither a kubeconfig nor an in-cluster service account is available."""


class KubernetesUnreachableError(UnreachableError):
    """The API server did not answer (network, DNS, timeout, 5xx)."""


class KubernetesNotFoundError(NotFoundError):
    """404: the object does not exist (or the API server does not serve that resource)."""


class KubernetesAuthError(PermissionDeniedError):
    """The API server does not accept our credentials (401): missing, wrong or expired."""


class KubernetesForbiddenError(PermissionDeniedError):
    """RBAC refused a verb (403); the message is the API server's own sentence."""


class AdmissionRejectedError(ValidationError):
    """An admission webhook refused the object; ``str()`` is its message, verbatim."""


@dataclass(frozen=True)
class FieldConflict:
    manager: str  # as the API server names it: '"kubectl-edit" using serving.kserve.io/v1beta1'
    field: str  # ".spec.predictor.minReplicas"


class ApplyConflictError(ConflictError):
    """Server-side apply found fields another field manager owns with other values (409)."""

    def __init__(self, message: str, conflicts: list[FieldConflict], detail: str) -> None:
        super().__init__(message)
        self.conflicts = conflicts
        self.detail = detail


class WatchTimeoutError(UpstreamError):
    """A watched object did not reach the awaited state before the deadline."""

    def __init__(self, message: str, last: dict[str, Any] | None) -> None:
        super().__init__(message)
        self.last = last


def kube_configured(settings: Settings) -> bool:
    """A kubeconfig is set (``settings.kubeconfig`` / ``KUBECONFIG``) or we run in a pod."""
    return settings.kubeconfig is not None or "KUBERNETES_SERVICE_HOST" in os.environ


def _status_body(exc: ApiException) -> dict[str, Any]:
    try:
        body = json.loads(exc.body or "{}")
    except (TypeError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def _status_message(exc: ApiException) -> str:
    message = _status_body(exc).get("message")
    return str(message or exc.reason or "error").splitlines()[0][:300]


def _apply_conflict(exc: ApiException) -> ApplyConflictError:
    body = _status_body(exc)
    causes = (body.get("details") or {}).get("causes") or []
    conflicts = [
        FieldConflict(str(c.get("message", "")).removeprefix("conflict with "), str(c["field"]))
        for c in causes
        if c.get("reason") == "FieldManagerConflict" and c.get("field")
    ]
    owners: dict[str, list[str]] = {}
    for conflict in conflicts:
        owners.setdefault(conflict.manager, []).append(conflict.field)
    owned = "; ".join(f"{manager} owns {', '.join(fields)}" for manager, fields in owners.items())
    message = (
        f"another field manager changed fields Modelarium applies ({owned}); "
        "re-apply with --force to take them over"
    )
    return ApplyConflictError(message, conflicts, str(body.get("message") or ""))


@contextmanager
def kube_errors(what: str) -> Iterator[None]:
    """Translate kubernetes/urllib3 exceptions into one-line Modelarium errors."""
    from kubernetes.client.exceptions import ApiException
    from kubernetes.config.config_exception import ConfigException

    try:
        yield
    except ApiException as exc:
        status = exc.status or 0
        reason = _status_message(exc)
        if reason.startswith("admission webhook "):
            raise AdmissionRejectedError(reason) from None
        if status == 401:
            raise KubernetesAuthError(
                f"Kubernetes rejected our credentials while {what} (HTTP 401 Unauthorized): "
                "the kubeconfig's token or certificate is missing, wrong or expired"
            ) from None
        if status == 403:
            raise KubernetesForbiddenError(f"Kubernetes refused {what}: {reason}") from None
        if status == 409 and any(
            c.get("reason") == "FieldManagerConflict"
            for c in (_status_body(exc).get("details") or {}).get("causes") or []
        ):
            raise _apply_conflict(exc) from None
        if status == 0 or status >= 500 or status == 429:
            raise KubernetesUnreachableError(
                f"Kubernetes is unreachable ({what}: HTTP {status or '-'} {reason})"
            ) from None
        if status == 404:
            raise KubernetesNotFoundError(f"Kubernetes found nothing {what}: {reason}") from None
        if status == 409:
            raise ConflictError(f"Kubernetes refused {what}: {reason}") from None
        if status == 422:
            raise ValidationError(f"Kubernetes refused {what}: {reason}") from None
        raise UpstreamError(f"Kubernetes refused {what} (HTTP {status}: {reason})") from None
    except ConfigException as exc:
        raise KubernetesNotConfiguredError(f"Kubernetes configuration is invalid: {exc}") from None
    except ModelariumError:
        raise
    except Exception as exc:
        # urllib3 (connection refused, timeouts, TLS) and socket errors.
        if type(exc).__module__.split(".")[0] in {"urllib3", "socket", "ssl"} or isinstance(
            exc, OSError
        ):
            text = str(exc).strip().splitlines()
            detail = f"{type(exc).__name__}: {text[0][:160]}" if text else type(exc).__name__
            raise KubernetesUnreachableError(f"Kubernetes is unreachable ({detail})") from None
        raise


def condition(obj: Mapping[str, Any] | None, kind: str) -> dict[str, Any] | None:
    """``status.conditions[type=kind]`` of an object, or None."""
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == kind:
            return cond
    return None


def is_ready(obj: Mapping[str, Any] | None) -> bool:
    """The object's Ready condition is True for its current generation."""
    ready = condition(obj, "Ready")
    if obj is None or ready is None or ready.get("status") != "True":
        return False
    observed = (obj.get("status") or {}).get("observedGeneration")
    generation = (obj.get("metadata") or {}).get("generation")
    return observed is None or generation is None or int(observed) >= int(generation)


class KubeClient:
    """One cluster's API (core v1 and KServe); built from settings by :func:`kube_client`."""

    def __init__(self, api_client: k8s_client.ApiClient, timeout: float) -> None:
        from kubernetes import client as k8s_client

        self._api_client = api_client
        self._core = k8s_client.CoreV1Api(api_client)
        self._custom = k8s_client.CustomObjectsApi(api_client)
        self._timeout = timeout
        self.reveal: Callable[[Any], Any] = _same
        """Applied to every InferenceService sent to the cluster."""
        self.conceal: Callable[[Any], Any] = _same
        """Applied to every InferenceService read from it (secrets the caller must not keep,
        see :mod:`modelarium.core.deployments.spec_secrets`)."""

    @property
    def host(self) -> str:
        return str(self._api_client.configuration.host)

    @staticmethod
    def _json(response: Any) -> dict[str, Any]:
        data = json.loads(response.data or b"{}")
        return data if isinstance(data, dict) else {}

    def _list(self, method: Any, what: str, *args: Any, **params: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        token: str | None = None
        with kube_errors(what):
            while True:
                extra = {"_continue": token} if token else {}
                response = method(
                    *args,
                    limit=PAGE_SIZE,
                    _preload_content=False,
                    _request_timeout=self._timeout,
                    **params,
                    **extra,
                )
                body = self._json(response)
                items.extend(body.get("items") or [])
                token = (body.get("metadata") or {}).get("continue") or None
                if not token:
                    return items

    # -- nodes and pods (GPU inventory) -------------------------------------------------------
    def list_nodes(self, label_selector: str | None = None) -> list[dict[str, Any]]:
        params = {"label_selector": label_selector} if label_selector else {}
        return self._list(self._core.list_node, "listing nodes", **params)

    def list_pods(self, field_selector: str | None = None) -> list[dict[str, Any]]:
        """Pods in every namespace (``field_selector`` as the API server reads it)."""
        params = {"field_selector": field_selector} if field_selector else {}
        return self._list(self._core.list_pod_for_all_namespaces, "listing pods", **params)

    # -- InferenceServices --------------------------------------------------------------------
    def _isvc_args(self, namespace: str) -> tuple[str, str, str, str]:
        return KSERVE_GROUP, KSERVE_VERSION, namespace, INFERENCE_SERVICES

    def get_inference_service(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The live object, or None when there is none."""
        try:
            with kube_errors(f"reading inferenceservice {namespace}/{name}"):
                response = self._custom.get_namespaced_custom_object(
                    *self._isvc_args(namespace),
                    name,
                    _preload_content=False,
                    _request_timeout=self._timeout,
                )
        except KubernetesNotFoundError:
            return None
        return self.conceal(self._json(response))

    def list_inference_services(
        self, namespace: str, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        """Every InferenceService of one namespace: one call (pages of 500 beyond that)."""
        params = {"label_selector": label_selector} if label_selector else {}
        items = self._list(
            self._custom.list_namespaced_custom_object,
            f"listing inferenceservices in {namespace}",
            *self._isvc_args(namespace),
            **params,
        )
        return [self.conceal(item) for item in items]

    def apply_inference_service(
        self, obj: Mapping[str, Any], *, force: bool = False, dry_run: bool = False
    ) -> dict[str, Any]:
        """Server-side apply ``obj`` as field manager ``modelarium``; the resulting object.

        ``dry_run`` runs validation, admission and conflict checks without storing anything.
        A conflict raises :class:`ApplyConflictError` naming who owns what; ``force`` takes the
        fields over.
        """
        meta = obj.get("metadata") or {}
        namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
        verb = "dry-running" if dry_run else "applying"
        extra: dict[str, Any] = {"dry_run": "All"} if dry_run else {}
        if force:
            extra["force"] = True
        with kube_errors(f"{verb} inferenceservice {namespace}/{name}"):
            response = self._custom.patch_namespaced_custom_object(
                *self._isvc_args(namespace),
                name,
                dict(self.reveal(obj)),
                field_manager=FIELD_MANAGER,
                _content_type=APPLY_CONTENT_TYPE,
                _preload_content=False,  # an apply that creates answers 201
                _request_timeout=self._timeout,
                **extra,
            )
        return self.conceal(self._json(response))

    def patch_annotations(
        self,
        namespace: str,
        name: str,
        annotations: Mapping[str, str | None],
        *,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """Merge-patch annotations (None removes one), e.g. KServe's stop annotation."""
        extra: dict[str, Any] = {"dry_run": "All"} if dry_run else {}
        with kube_errors(f"annotating inferenceservice {namespace}/{name}"):
            response = self._custom.patch_namespaced_custom_object(
                *self._isvc_args(namespace),
                name,
                {"metadata": {"annotations": dict(annotations)}},
                field_manager=FIELD_MANAGER,
                _content_type="application/merge-patch+json",
                _preload_content=False,
                _request_timeout=self._timeout,
                **extra,
            )
        return self.conceal(self._json(response))

    def delete_inference_service(self, namespace: str, name: str, *, dry_run: bool = False) -> bool:
        """Delete it; False when it was already gone."""
        extra: dict[str, Any] = {"dry_run": "All"} if dry_run else {}
        try:
            with kube_errors(f"deleting inferenceservice {namespace}/{name}"):
                self._custom.delete_namespaced_custom_object(
                    *self._isvc_args(namespace),
                    name,
                    _preload_content=False,
                    _request_timeout=self._timeout,
                    **extra,
                )
        except KubernetesNotFoundError:
            return False
        return True

    def watch_inference_service(
        self, namespace: str, name: str, timeout: float, resource_version: str | None = None
    ) -> Iterator[dict[str, Any] | None]:
        """The object each time it changes (None once deleted) until ``timeout`` seconds pass.

        Without ``resource_version`` the current state (None: there is none) comes first. The
        stream is re-opened every :data:`WATCH_CHUNK` seconds (from the last version seen; a
        compacted one starts over from the current state), so a consumer regains control at
        least that often: each re-open also yields the latest object, which lets a waiter check
        its deadline.
        """
        from kubernetes import watch as k8s_watch
        from kubernetes.client.exceptions import ApiException

        deadline = time.monotonic() + timeout
        version = resource_version
        last: dict[str, Any] | None = None
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            if not version:
                # List, then watch from the list's version (an informer's start): a watch
                # without one sends nothing for an object that does not exist, so a waiter for
                # a deletion that already happened heard nothing until the chunk ran out.
                last, version = self._current(namespace, name)
                yield last
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
            chunk = max(1, int(min(remaining, WATCH_CHUNK) + 0.999))
            params: dict[str, Any] = {
                "field_selector": f"metadata.name={name}",
                "timeout_seconds": chunk,
                "_request_timeout": chunk + self._timeout,
            }
            if version:
                params["resource_version"] = version
            stream = k8s_watch.Watch()
            try:
                with kube_errors(f"watching inferenceservice {namespace}/{name}"):
                    try:
                        for event in stream.stream(
                            self._custom.list_namespaced_custom_object,
                            *self._isvc_args(namespace),
                            **params,
                        ):
                            obj = event.get("object")
                            if not isinstance(obj, dict):
                                continue
                            meta = obj.get("metadata") or {}
                            version = meta.get("resourceVersion") or version
                            if event.get("type") == "BOOKMARK":
                                continue
                            last = None if event.get("type") == "DELETED" else self.conceal(obj)
                            yield last
                            if time.monotonic() >= deadline:
                                return
                    except ApiException as exc:
                        if exc.status != 410:
                            raise
                        version = None  # compacted: start over from the current state
                        continue
            finally:
                stream.stop()
            yield last

    def _current(self, namespace: str, name: str) -> tuple[dict[str, Any] | None, str | None]:
        """(the object or None, the collection's resourceVersion to watch from)."""
        with kube_errors(f"reading inferenceservice {namespace}/{name}"):
            response = self._custom.list_namespaced_custom_object(
                *self._isvc_args(namespace),
                field_selector=f"metadata.name={name}",
                _preload_content=False,
                _request_timeout=self._timeout,
            )
        body = self._json(response)
        items = body.get("items") or []
        version = (body.get("metadata") or {}).get("resourceVersion")
        return (self.conceal(items[0]) if items else None), (str(version) if version else None)

    def wait_for(
        self,
        namespace: str,
        name: str,
        done: Callable[[dict[str, Any] | None], bool],
        timeout: float,
        *,
        resource_version: str | None = None,
        check: Callable[[], None] | None = None,
    ) -> dict[str, Any] | None:
        """Watch until ``done(object)`` (None: deleted) and return that object.

        Raises :class:`WatchTimeoutError` (carrying the last object seen) after ``timeout``
        seconds; ``check`` runs between events (a job's cancellation check).
        """
        last: dict[str, Any] | None = None
        for obj in self.watch_inference_service(namespace, name, timeout, resource_version):
            last = obj
            if check is not None:
                check()
            if done(obj):
                return obj
        raise WatchTimeoutError(
            f"inferenceservice {namespace}/{name} did not get there within {timeout:g}s", last
        )

    def wait_ready(
        self, namespace: str, name: str, timeout: float, **kwargs: Any
    ) -> dict[str, Any]:
        """Watch until Ready is True for the current generation (see :func:`is_ready`)."""
        obj = self.wait_for(namespace, name, is_ready, timeout, **kwargs)
        assert obj is not None
        return obj

    # -- what explains an InferenceService -------------------------------------------------------
    def service_pods(self, namespace: str, name: str) -> list[dict[str, Any]]:
        """The pods KServe runs for an InferenceService (its ``inferenceservice`` label)."""
        return self._list(
            self._core.list_namespaced_pod,
            f"listing the pods of {namespace}/{name}",
            namespace,
            label_selector=f"{ISVC_LABEL}={name}",
        )

    def events(
        self, namespace: str, involved: str, *, kind: str | None = None, warnings: bool = False
    ) -> list[dict[str, Any]]:
        """Core v1 events about one object (``involvedObject.name``), oldest first."""
        selector = f"involvedObject.name={involved}"
        if kind:
            selector += f",involvedObject.kind={kind}"
        if warnings:
            selector += ",type=Warning"
        items = self._list(
            self._core.list_namespaced_event,
            f"listing events of {namespace}/{involved}",
            namespace,
            field_selector=selector,
        )
        return sorted(items, key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))

    def close(self) -> None:
        self._api_client.close()


def _same(obj: Any) -> Any:
    return obj


def kube_client(settings: Settings, timeout: float = 10.0) -> KubeClient:
    """A client from ``settings.kubeconfig`` (``KUBECONFIG``), else the in-cluster account."""
    from kubernetes import client as k8s_client
    from kubernetes import config as k8s_config

    with kube_errors("loading the configuration"):
        configuration = k8s_client.Configuration()
        if settings.kubeconfig is not None:
            path = settings.kubeconfig.expanduser()
            if not path.is_file():
                raise KubernetesNotConfiguredError(f"kubeconfig {path} does not exist")
            k8s_config.load_kube_config(
                config_file=str(path),
                context=settings.kube_context,
                client_configuration=configuration,
                persist_config=False,
            )
        elif "KUBERNETES_SERVICE_HOST" in os.environ:
            k8s_config.load_incluster_config(client_configuration=configuration)
        else:
            raise KubernetesNotConfiguredError(
                "Kubernetes is not configured (set KUBECONFIG or run in a cluster)"
            )
        configuration.retries = 1  # one quick retry; callers fall back to cached inventory
        return KubeClient(k8s_client.ApiClient(configuration), timeout)
