"""A thin typed client for Ollama's HTTP API (httpx), with errors mapped to one line.

Only the model-management endpoints Modelarium uses: ``/api/tags``, ``/api/show``,
``/api/create``, ``/api/copy``, ``/api/delete``, ``/api/pull``, ``/api/push``, ``/api/version``.
Streaming calls yield the NDJSON progress objects as Ollama sends them; an ``{"error": ...}``
line mid-stream (Ollama's way of failing after the headers went out) raises like an HTTP error.

Connections go through the address guard (:mod:`modelarium.core.clients.addresses`). Errors
quote only Ollama's own one-line ``error`` field, never a body (an endpoint may be any server),
and every way of getting no HTTP answer reads the same (the detail goes to the log), so calls
through an endpoint are no port scanner.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import httpx

from modelarium.core import safejson
from modelarium.core.clients.addresses import AddressPolicy, guarded_transport, refused_by_policy
from modelarium.core.errors import UpstreamError
from modelarium.core.logging import get_logger

log = get_logger(__name__)

DEFAULT_TIMEOUT = 30.0
STREAM_READ_TIMEOUT = 600.0
"""Pull/push/create keep streaming progress; ten minutes of silence means it is stuck."""


class OllamaError(UpstreamError):
    """Ollama refused or failed a call, or could not be reached (``status`` is None then)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status

    @property
    def retryable(self) -> bool:
        """Unreachable, 5xx or 429: worth retrying; other 4xx will fail the same way again."""
        return self.status is None or self.status >= 500 or self.status == 429


@dataclass(frozen=True)
class ModelDetails:
    format: str = ""
    family: str = ""
    families: tuple[str, ...] = ()
    parameter_size: str = ""
    quantization_level: str = ""
    parent_model: str = ""

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> ModelDetails:
        data = data or {}
        return cls(
            format=str(data.get("format") or ""),
            family=str(data.get("family") or ""),
            families=tuple(data.get("families") or ()),
            parameter_size=str(data.get("parameter_size") or ""),
            quantization_level=str(data.get("quantization_level") or ""),
            parent_model=str(data.get("parent_model") or ""),
        )


@dataclass(frozen=True)
class LocalModel:
    """One entry of ``/api/tags``."""

    name: str
    model: str
    size: int
    digest: str
    modified_at: str
    details: ModelDetails


@dataclass(frozen=True)
class ShowResult:
    """``/api/show``: the model's Modelfile as Ollama writes it, and its parts."""

    modelfile: str
    template: str = ""
    system: str = ""
    parameters: str = ""
    license: str = ""
    details: ModelDetails = field(default_factory=ModelDetails)
    capabilities: tuple[str, ...] = ()
    messages: tuple[dict[str, Any], ...] = ()
    model_info: dict[str, Any] = field(default_factory=dict)
    modified_at: str = ""


@dataclass(frozen=True)
class Progress:
    """One line of a pull/push/create stream."""

    status: str
    digest: str = ""
    total: int = 0
    completed: int = 0

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Progress:
        return cls(
            status=str(data.get("status") or ""),
            digest=str(data.get("digest") or ""),
            total=int(data.get("total") or 0),
            completed=int(data.get("completed") or 0),
        )


class OllamaClient:
    """One Ollama server. Use as a context manager (it owns an ``httpx.Client``)."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        name: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        policy: AddressPolicy | None = None,
    ) -> None:
        """``policy``: the addresses it may connect to (the strictest when ``None``); ignored
        when a ``transport`` is given."""
        self.base_url = base_url.rstrip("/")
        self.name = name or self.base_url
        headers = {"Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._timeout = timeout
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            transport=transport or guarded_transport(policy or AddressPolicy()),
            trust_env=False,
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- calls ------------------------------------------------------------------------------

    def version(self) -> str:
        return str(self._json("GET", "/api/version").get("version") or "")

    def list_models(self) -> list[LocalModel]:
        data = self._json("GET", "/api/tags")
        return [
            LocalModel(
                name=str(m.get("name") or m.get("model") or ""),
                model=str(m.get("model") or m.get("name") or ""),
                size=int(m.get("size") or 0),
                digest=str(m.get("digest") or ""),
                modified_at=str(m.get("modified_at") or ""),
                details=ModelDetails.from_json(m.get("details")),
            )
            for m in data.get("models") or []
        ]

    def show(self, model: str) -> ShowResult:
        data = self._json("POST", "/api/show", {"model": model}, what=f"model {model}")
        return ShowResult(
            modelfile=str(data.get("modelfile") or ""),
            template=str(data.get("template") or ""),
            system=str(data.get("system") or ""),
            parameters=str(data.get("parameters") or ""),
            license=str(data.get("license") or ""),
            details=ModelDetails.from_json(data.get("details")),
            capabilities=tuple(data.get("capabilities") or ()),
            messages=tuple(data.get("messages") or ()),
            model_info=dict(data.get("model_info") or {}),
            modified_at=str(data.get("modified_at") or ""),
        )

    def copy(self, source: str, destination: str) -> None:
        self._json(
            "POST",
            "/api/copy",
            {"source": source, "destination": destination},
            what=f"model {source}",
        )

    def delete(self, model: str) -> None:
        self._json("DELETE", "/api/delete", {"model": model}, what=f"model {model}")

    def create(self, request: dict[str, Any]) -> Iterator[Progress]:
        """``POST /api/create`` with the structured request (``model``, ``from``, ``system``...)."""
        return self._stream(
            "/api/create", {**request, "stream": True}, f"create {request['model']}"
        )

    def pull(self, model: str) -> Iterator[Progress]:
        return self._stream("/api/pull", {"model": model, "stream": True}, f"model {model}")

    def push(self, model: str) -> Iterator[Progress]:
        return self._stream("/api/push", {"model": model, "stream": True}, f"model {model}")

    # -- plumbing ---------------------------------------------------------------------------

    def _json(
        self, method: str, path: str, body: dict[str, Any] | None = None, *, what: str = ""
    ) -> dict[str, Any]:
        try:
            response = self._http.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        if response.status_code >= 400:
            raise self._refused(response.status_code, response.content, what)
        if not response.content.strip():
            return {}
        try:
            data = safejson.loads(response.content)
        except ValueError:
            raise OllamaError(
                f"Ollama {self.name} sent a response that is not JSON ({path})",
                status=response.status_code,
            ) from None
        if not isinstance(data, dict):
            raise OllamaError(f"Ollama {self.name} sent unexpected JSON ({path})")
        return data

    def _stream(self, path: str, body: dict[str, Any], what: str) -> Iterator[Progress]:
        timeout = httpx.Timeout(self._timeout, read=STREAM_READ_TIMEOUT)
        try:
            with self._http.stream("POST", path, json=body, timeout=timeout) as response:
                if response.status_code >= 400:
                    raise self._refused(response.status_code, response.read(), what)
                for line in response.iter_lines():
                    if not line.strip():
                        continue
                    try:
                        data = safejson.loads(line)
                    except ValueError:
                        raise OllamaError(
                            f"Ollama {self.name} sent a progress line that is not JSON ({path})"
                        ) from None
                    if isinstance(data, dict) and data.get("error"):
                        raise OllamaError(
                            f"Ollama {self.name}: {_first_line(str(data['error']))}",
                            status=response.status_code,
                        )
                    if isinstance(data, dict):
                        yield Progress.from_json(data)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None

    def _unreachable(self, exc: httpx.HTTPError) -> OllamaError:
        refused = refused_by_policy(exc)
        if refused is not None:
            return OllamaError(f"Ollama {self.name}: {refused}")
        log.warning(
            "ollama.unreachable",
            endpoint=self.name,
            error=type(exc).__name__,
            detail=_first_line(str(exc))[:200],
        )
        return OllamaError(
            f"Ollama {self.name} at {self.base_url} is unreachable: no HTTP answer "
            "(cannot connect, no answer in time, or not an HTTP server)"
        )

    def _refused(self, status: int, content: bytes, what: str) -> OllamaError:
        """Only Ollama's ``{"error": "..."}``, one line, is quoted: any other body may be some
        other server's page, and is not passed on."""
        message = ""
        try:
            data = safejson.loads(content)
            if isinstance(data, dict) and isinstance(data.get("error"), str):
                message = data["error"]
        except ValueError:
            pass
        message = "".join(c for c in _first_line(message) if c.isprintable())[:200]
        if status in (401, 403):
            text = f"Ollama {self.name} refused the request (HTTP {status}): check its API key"
        elif status == 404:
            text = f"Ollama {self.name}: {message or (what + ' not found')} (HTTP 404)"
        else:
            text = f"Ollama {self.name} failed: {message or 'no reason given'} (HTTP {status})"
        return OllamaError(text, status=status)


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def human_size(size: float) -> str:
    """Bytes as Ollama's CLI shows them (decimal units: 4.7 GB)."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(size) < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


__all__ = [
    "LocalModel",
    "ModelDetails",
    "OllamaClient",
    "OllamaError",
    "Progress",
    "ShowResult",
    "human_size",
]
