"""The Kubernetes API, configured once: kubeconfig or in-cluster, timeouts, error mapping.

Only what Modelarium reads today: nodes (for GPU feature discovery labels and allocatable GPUs)
and pods (for the GPUs they request). Lists come back as plain dicts from the API's JSON, which
is what the callers want and avoids deserialising thousands of pod models per inventory.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from modelarium.config.settings import Settings
from modelarium.core.errors import PermissionDeniedError, UpstreamError

PAGE_SIZE = 500
"""Items per list call; larger clusters are read in pages with ``continue`` tokens."""


class KubernetesNotConfiguredError(UpstreamError):
    """Neither a kubeconfig nor an in-cluster service account is available."""


class KubernetesUnreachableError(UpstreamError):
    """The API server did not answer (network, DNS, timeout, 5xx)."""


def kube_configured(settings: Settings) -> bool:
    """A kubeconfig is set (``settings.kubeconfig`` / ``KUBECONFIG``) or we run in a pod."""
    return settings.kubeconfig is not None or "KUBERNETES_SERVICE_HOST" in os.environ


@contextmanager
def kube_errors(what: str) -> Iterator[None]:
    """Translate kubernetes/urllib3 exceptions into one-line Modelarium errors."""
    try:
        yield
    except ApiException as exc:
        status = exc.status or 0
        reason = _status_message(exc)
        if status in (401, 403):
            raise PermissionDeniedError(
                f"Kubernetes refused {what} (HTTP {status}: {reason})"
            ) from None
        if status == 0 or status >= 500 or status == 429:
            raise KubernetesUnreachableError(
                f"Kubernetes is unreachable ({what}: HTTP {status or '-'} {reason})"
            ) from None
        raise UpstreamError(f"Kubernetes refused {what} (HTTP {status}: {reason})") from None
    except ConfigException as exc:
        raise KubernetesNotConfiguredError(f"Kubernetes configuration is invalid: {exc}") from None
    except Exception as exc:
        # urllib3 (connection refused, timeouts, TLS) and socket errors.
        if type(exc).__module__.split(".")[0] in {"urllib3", "socket", "ssl"} or isinstance(
            exc, OSError
        ):
            text = str(exc).strip().splitlines()
            detail = f"{type(exc).__name__}: {text[0][:160]}" if text else type(exc).__name__
            raise KubernetesUnreachableError(f"Kubernetes is unreachable ({detail})") from None
        raise


def _status_message(exc: ApiException) -> str:
    try:
        body = json.loads(exc.body or "{}")
    except (TypeError, ValueError):
        body = {}
    message = body.get("message") if isinstance(body, dict) else None
    return str(message or exc.reason or "error").splitlines()[0][:200]


class KubeClient:
    """A CoreV1 API client bound to one cluster; built from settings by :func:`kube_client`."""

    def __init__(self, api_client: k8s_client.ApiClient, timeout: float) -> None:
        self._api_client = api_client
        self._core = k8s_client.CoreV1Api(api_client)
        self._timeout = timeout

    @property
    def host(self) -> str:
        return str(self._api_client.configuration.host)

    def _list(self, method: Any, what: str, **params: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        token: str | None = None
        with kube_errors(what):
            while True:
                extra = {"_continue": token} if token else {}
                response = method(
                    limit=PAGE_SIZE,
                    _preload_content=False,
                    _request_timeout=self._timeout,
                    **params,
                    **extra,
                )
                body = json.loads(response.data or b"{}")
                items.extend(body.get("items") or [])
                token = (body.get("metadata") or {}).get("continue") or None
                if not token:
                    return items

    def list_nodes(self, label_selector: str | None = None) -> list[dict[str, Any]]:
        params = {"label_selector": label_selector} if label_selector else {}
        return self._list(self._core.list_node, "listing nodes", **params)

    def list_pods(self, field_selector: str | None = None) -> list[dict[str, Any]]:
        """Pods in every namespace (``field_selector`` as the API server reads it)."""
        params = {"field_selector": field_selector} if field_selector else {}
        return self._list(self._core.list_pod_for_all_namespaces, "listing pods", **params)

    def close(self) -> None:
        self._api_client.close()


def kube_client(settings: Settings, timeout: float = 10.0) -> KubeClient:
    """A client from ``settings.kubeconfig`` (``KUBECONFIG``), else the in-cluster account."""
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
