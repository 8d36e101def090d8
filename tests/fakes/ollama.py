"""Fake Ollama and OpenAI-compatible servers, one endpoint each or a thousand in one process.

:class:`FakeOllama` speaks Ollama's native API as ``server/routes.go`` and ``server/create.go``
(ollama/ollama ``fb30760``) do: ``/api/version``, ``/api/tags``, ``/api/show``, ``/api/create``,
``/api/copy``, ``/api/delete``, ``/api/pull``, ``/api/push``, ``/api/ps``, ``/api/blobs/:digest``
and the OpenAI-style ``/v1/models``. Streamed answers are chunked ``application/x-ndjson``; an
error before the first line is an HTTP error with ``{"error": …}``, an error after it is one
more ``{"error": …}`` line on a 200, and ``"stream": false`` gives a single object, exactly like
gin's ``streamResponse``/``waitForStream``. ``/api/create`` takes the current request shape
(``model``, ``from``, ``files``, ``adapters``, ``template``, ``system``, ``parameters``,
``messages``, ``license``, ``quantize``, …). The legacy ``modelfile`` field is no longer part of
``api.CreateRequest``: like the real server the fake ignores it, so such a request fails with
"neither 'from' or 'files' was specified". A ``from`` model that is not local is pulled first
(its pull progress, including a ``success`` line, comes before the create statuses).

:class:`FakeOpenAI` is a vLLM/OpenAI-style ``GET /v1/models`` (+ ``/v1/models/{id}``) with an
optional bearer key (401 in OpenAI's error shape) and a model list changeable at runtime.

Both have ``mode``: ``"healthy"``, ``"failing"`` (500), ``"slow"`` (``slow_delay`` before each
answer), ``"hanging"`` (requests are read and never answered until the mode changes or the
server stops; stopping never waits for them) and ``"reset"`` (connections reset).

:class:`FakeEndpointFarm` serves many virtual endpoints from one port for benchmarks:
``farm.add("ollama")`` returns an endpoint whose ``url`` is ``http://127.0.0.1:PORT/e/<n>``, a
base URL with its own mode, models and key.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.fakes.streaming import Request, Response, StreamingFakeServer, StreamResponse

__all__ = [
    "FakeEndpointFarm",
    "FakeOllama",
    "FakeOpenAI",
    "OllamaModel",
    "VirtualOllama",
    "VirtualOpenAI",
    "fake_endpoint_farm",
    "fake_ollama",
    "fake_openai",
]

MODES = ("healthy", "failing", "slow", "hanging", "reset")
BLOBS_DIR = "/root/.ollama/models/blobs"
DEFAULT_TEMPLATE = "{{ .Prompt }}"
_T0 = datetime(2025, 5, 1, 8, 0, tzinfo=UTC)

_MT_MODEL = "application/vnd.ollama.image.model"
_MT_ADAPTER = "application/vnd.ollama.image.adapter"
_MT_TEMPLATE = "application/vnd.ollama.image.template"
_MT_SYSTEM = "application/vnd.ollama.image.system"
_MT_PARAMS = "application/vnd.ollama.image.params"
_MT_LICENSE = "application/vnd.ollama.image.license"
_MT_MESSAGES = "application/vnd.ollama.image.messages"


# ---------------------------------------------------------------------------------------------
# Shared: modes
# ---------------------------------------------------------------------------------------------
class _Behaviour:
    """Mode handling shared by every fake endpoint, served alone or in a farm."""

    def __init__(self, *, mode: str = "healthy", slow_delay: float = 0.5) -> None:
        self._check_mode(mode)
        self.mode = mode
        self.slow_delay = slow_delay
        self._state = threading.RLock()
        self._changed = threading.Condition(self._state)
        self._halt = threading.Event()  # replaced by the owning server's ``stopping``
        self.calls: list[tuple[str, str]] = []
        """(method, route) of every request this endpoint received."""
        self.chat_latency = 0.0
        self.chat_jitter = 0.0
        self.chat_error_rate = 0.0
        self._rng = random.Random(0)
        self.chats = 0
        """Chat requests answered (successes and injected errors)."""
        self.chats_in_flight = 0
        self.chats_peak = 0
        """The most chat requests this endpoint was answering at once."""

    def set_chat(
        self,
        *,
        latency: float | None = None,
        jitter: float | None = None,
        error_rate: float | None = None,
        seed: int | None = None,
    ) -> None:
        """How chat requests behave: ``latency`` seconds (+ uniform ``jitter``), and a share
        ``error_rate`` of them answered with a server error (a seeded draw)."""
        with self._state:
            if latency is not None:
                self.chat_latency = latency
            if jitter is not None:
                self.chat_jitter = jitter
            if error_rate is not None:
                self.chat_error_rate = error_rate
            if seed is not None:
                self._rng = random.Random(seed)

    def _chat_draw(self) -> tuple[float, bool]:
        """(delay, fail) of one chat request."""
        with self._state:
            self.chats += 1
            delay = self.chat_latency + self._rng.random() * self.chat_jitter
            return delay, self._rng.random() < self.chat_error_rate

    @staticmethod
    def _count_tokens(messages: Any) -> int:
        if not isinstance(messages, list):
            return 0
        return sum(len(str((m or {}).get("content", "")).split()) for m in messages)

    @staticmethod
    def _check_mode(mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")

    def set_mode(self, mode: str, *, slow_delay: float | None = None) -> None:
        """Switch mode at runtime; requests hanging in ``"hanging"`` then get answered."""
        self._check_mode(mode)
        with self._changed:
            self.mode = mode
            if slow_delay is not None:
                self.slow_delay = slow_delay
            self._changed.notify_all()

    def _wake_all(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def _chat_pause(self, seconds: float) -> bool:
        """:meth:`_pause` for a chat's latency, counting the chats answered at once."""
        with self._state:
            self.chats_in_flight += 1
            self.chats_peak = max(self.chats_peak, self.chats_in_flight)
        try:
            return self._pause(seconds)
        finally:
            with self._state:
                self.chats_in_flight -= 1

    def _pause(self, seconds: float) -> bool:
        """Stop-aware sleep; False if the server is stopping."""
        return not self._halt.wait(seconds) if seconds > 0 else not self._halt.is_set()

    def handle_at(self, request: Request, route: str) -> Response:
        """Answer ``request`` as if ``route`` were its path (the farm strips ``/e/<n>``)."""
        with self._state:
            self.calls.append((request.method, route))
        if self.mode == "hanging":
            with self._changed:
                self._changed.wait_for(lambda: self.mode != "hanging" or self._halt.is_set())
        if self._halt.is_set() or self.mode == "reset":
            return StreamResponse(reset=True)
        if self.mode == "failing":
            return self._failure()
        if self.mode == "slow" and not self._pause(self.slow_delay):
            return StreamResponse(reset=True)
        return self._route(request, route)

    def _failure(self) -> Response:
        raise NotImplementedError

    def _route(self, request: Request, route: str) -> Response:
        raise NotImplementedError


def _encode(data: Any) -> bytes:
    """Go's json.Marshal: compact, with <, > and & escaped as \\u003c, \\u003e, \\u0026."""
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").encode()


def _json(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    hdrs = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
    return Response(status=status, body=_encode(data), headers=hdrs)


def _go_time(dt: datetime) -> str:
    """RFC 3339 with nanoseconds, as Go's time.Time marshals (``Z`` for UTC)."""
    base = dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    frac = f"{dt.microsecond:06d}".rstrip("0")  # RFC3339Nano drops trailing zeros
    return f"{base}.{frac}Z" if frac else f"{base}Z"


# ---------------------------------------------------------------------------------------------
# Ollama
# ---------------------------------------------------------------------------------------------
_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,79}")
_NS = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_\-]{0,79}")


def parse_model_name(name: str) -> tuple[str, str, str, str] | None:
    """(host, namespace, model, tag) with Ollama's defaults, or None if invalid."""
    if not name:
        return None
    tag = "latest"
    s = name
    if s.rfind(":") > s.rfind("/"):
        s, _, tag = s.rpartition(":")
    parts = s.split("/")
    if len(parts) > 3:
        return None
    model = parts[-1]
    namespace = parts[-2] if len(parts) >= 2 else "library"
    host = parts[-3].split("://")[-1] if len(parts) == 3 else "registry.ollama.ai"
    if not (_PART.fullmatch(model) and _PART.fullmatch(tag) and _NS.fullmatch(namespace)):
        return None
    if not host:
        return None
    return host, namespace, model, tag


def short_name(name: str) -> str:
    """Ollama's ``DisplayShortest``: ``llama3.2`` → ``llama3.2:latest``; invalid names unchanged."""
    parsed = parse_model_name(name)
    if parsed is None:
        return name
    host, namespace, model, tag = parsed
    if host.lower() != "registry.ollama.ai":
        return f"{host}/{namespace}/{model}:{tag}"
    if namespace.lower() != "library":
        return f"{namespace}/{model}:{tag}"
    return f"{model}:{tag}"


def _sha256(data: str | bytes) -> str:
    return "sha256:" + hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


@dataclass
class _Layer:
    media_type: str
    digest: str
    size: int


@dataclass
class OllamaModel:
    """A local (or pullable) model: what ``/api/tags``, ``/api/show`` and ``/api/ps`` report."""

    name: str
    size: int = 4_920_753_328
    format: str = "gguf"
    family: str = "llama"
    families: list[str] | None = None
    parameter_size: str = "8.0B"
    quantization_level: str = "Q4_K_M"
    parent_model: str = ""
    template: str = DEFAULT_TEMPLATE
    system: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    license: list[str] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    model_info: dict[str, Any] = field(default_factory=dict)
    capabilities: list[str] = field(default_factory=lambda: ["completion"])
    renderer: str = ""
    parser: str = ""
    requires: str = ""
    modified_at: datetime = _T0
    model_layer: _Layer | None = None
    adapters: list[_Layer] = field(default_factory=list)
    pull_error: str | None = None
    """Pull fails with this message after the first layer's progress (remote models only)."""

    def __post_init__(self) -> None:
        self.name = short_name(self.name)
        if self.families is None:
            self.families = [self.family]
        if self.model_layer is None:
            fixed = 0
            for text in (self.template, self.system, *self.license):
                fixed += len(text.encode())
            weights = max(1, self.size - fixed)
            self.model_layer = _Layer(_MT_MODEL, _sha256(f"weights:{self.name}"), weights)
        if not self.model_info:
            self.model_info = {
                "general.architecture": self.family,
                "general.parameter_count": _param_count(self.parameter_size),
                f"{self.family}.context_length": 8192,
            }

    def layers(self) -> list[_Layer]:
        """Layers in manifest order, with digests derived from their content."""
        assert self.model_layer is not None
        out = [self.model_layer, *self.adapters]
        if self.template:
            out.append(_Layer(_MT_TEMPLATE, _sha256(self.template), len(self.template.encode())))
        if self.system:
            out.append(_Layer(_MT_SYSTEM, _sha256(self.system), len(self.system.encode())))
        for text in self.license:
            out.append(_Layer(_MT_LICENSE, _sha256(text), len(text.encode())))
        if self.parameters:
            raw = json.dumps(self.parameters)
            out.append(_Layer(_MT_PARAMS, _sha256(raw), len(raw)))
        if self.messages:
            raw = json.dumps(self.messages)
            out.append(_Layer(_MT_MESSAGES, _sha256(raw), len(raw)))
        return out

    @property
    def digest(self) -> str:
        """The manifest digest (hex, no prefix), as ``/api/tags`` reports it."""
        manifest = json.dumps([(layer.media_type, layer.digest) for layer in self.layers()])
        return hashlib.sha256(manifest.encode()).hexdigest()

    @property
    def total_size(self) -> int:
        return sum(layer.size for layer in self.layers())

    def details(self) -> dict[str, Any]:
        return {
            "parent_model": self.parent_model,
            "format": self.format,
            "family": self.family,
            "families": list(self.families or []),
            "parameter_size": self.parameter_size,
            "quantization_level": self.quantization_level,
        }


def _param_count(size: str) -> int:
    m = re.fullmatch(r"([0-9.]+)([KMBT]?)", size.strip(), re.IGNORECASE)
    if not m:
        return 0
    return int(
        float(m.group(1)) * {"": 1, "K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}[m.group(2).upper()]
    )


def _go_value(value: Any) -> str:
    """Go's ``%v`` of a JSON-decoded value (numbers are float64)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        f = float(value)
        return str(int(f)) if f.is_integer() and abs(f) < 1e21 else repr(f)
    return str(value)


def _go_quoted(value: Any) -> str:
    """Go's ``%#v`` of a JSON-decoded value (strings quoted)."""
    return json.dumps(value, ensure_ascii=False) if isinstance(value, str) else _go_value(value)


def _mf_quote(s: str) -> str:
    """``parser.quote``: quote only multi-line or space-padded values."""
    if "\n" in s or s.startswith(" ") or s.endswith(" "):
        return f'"""{s}"""' if '"' in s else f'"{s}"'
    return s


def _template_error(text: str) -> str | None:
    """The Go text/template parse errors a Modelfile TEMPLATE usually hits (not a full parser)."""
    stack: list[str] = []
    pos = 0
    while (start := text.find("{{", pos)) >= 0:
        line = text.count("\n", 0, start) + 1
        end = text.find("}}", start + 2)
        if end < 0:
            return f"template: :{line}: unclosed action"
        action = text[start + 2 : end].strip("- \t\r\n")
        pos = end + 2
        if action.startswith("/*"):
            continue
        word = action.split(None, 1)[0] if action else ""
        if word in ("if", "range", "with", "block", "define"):
            stack.append(word)
        elif word == "else":
            if not stack or stack[-1] not in ("if", "range", "with"):
                return f"template: :{line}: unexpected {{{{else}}}}"
        elif word == "end":
            if not stack:
                return f"template: :{line}: unexpected {{{{end}}}}"
            stack.pop()
        elif not action:
            return f"template: :{line}: missing value for command"
    if stack:
        return f"template: :{text.count(chr(10)) + 1}: unexpected EOF"
    return None


class _Err:
    """An error in an NDJSON event stream (``status`` None: 500 if nothing was sent yet)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        self.message, self.status = message, status


_Event = dict[str, Any] | _Err


class _BadRequest(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message, self.status = message, status


_QUANTS = {"F32", "F16", "BF16", "Q8_0", "Q4_K_S", "Q4_K_M", "Q4_K"}


class OllamaApi(_Behaviour):
    """Ollama's API over in-memory state; served by :class:`FakeOllama` or a farm endpoint.

    ``pull_steps`` progress lines per layer, ``pull_delay`` seconds between streamed lines.
    """

    def __init__(
        self,
        *,
        mode: str = "healthy",
        slow_delay: float = 0.5,
        version: str = "0.12.6",
        pull_steps: int = 4,
        pull_delay: float = 0.0,
    ) -> None:
        super().__init__(mode=mode, slow_delay=slow_delay)
        self.version = version
        self.pull_steps = pull_steps
        self.pull_delay = pull_delay
        self._models: dict[str, OllamaModel] = {}
        self._remote: dict[str, OllamaModel] = {}
        self._running: dict[str, dict[str, Any]] = {}
        self.blobs: dict[str, int] = {}
        """Blobs pushed with ``POST /api/blobs/:digest`` (digest → size)."""
        self._clock = 0

    # -- state helpers ------------------------------------------------------------------------
    @staticmethod
    def _key(name: str) -> str:
        return short_name(name).lower()

    def _now(self) -> datetime:
        self._clock += 1
        return _T0 + timedelta(minutes=self._clock)

    def add_model(self, name: str, **fields: Any) -> OllamaModel:
        """Install a local model (fields of :class:`OllamaModel`)."""
        fields.setdefault("modified_at", None)
        with self._state:
            if fields["modified_at"] is None:
                fields["modified_at"] = self._now()
            model = OllamaModel(name=name, **fields)
            self._models[self._key(name)] = model
            return model

    def add_remote_model(self, name: str, **fields: Any) -> OllamaModel:
        """Make ``name`` pullable from the "registry" (``pull_error`` makes its pull fail)."""
        model = OllamaModel(name=name, **fields)
        with self._state:
            self._remote[self._key(name)] = model
        return model

    def remove_model(self, name: str) -> None:
        with self._state:
            self._models.pop(self._key(name), None)

    def model(self, name: str) -> OllamaModel | None:
        with self._state:
            return self._models.get(self._key(name))

    @property
    def models(self) -> list[str]:
        """Names of the local models."""
        with self._state:
            return [m.name for m in self._models.values()]

    def load(
        self,
        name: str,
        *,
        size_vram: int | None = None,
        expires_in: float = 300.0,
        context_length: int = 4096,
    ) -> None:
        """Report ``name`` as loaded in ``/api/ps``."""
        with self._state:
            model = self._models[self._key(name)]
            self._running[self._key(name)] = {
                "size_vram": model.total_size if size_vram is None else size_vram,
                "expires_at": datetime.now(UTC) + timedelta(seconds=expires_in),
                "context_length": context_length,
            }

    def unload(self, name: str) -> None:
        with self._state:
            self._running.pop(self._key(name), None)

    # -- HTTP ---------------------------------------------------------------------------------
    def _failure(self) -> Response:
        return _json({"error": "llama runner process has terminated: exit status 2"}, 500)

    def _route(self, request: Request, route: str) -> Response:
        method = request.method
        table: dict[tuple[str, str], Callable[[Request], Response]] = {
            ("GET", "/"): lambda r: Response.text("Ollama is running"),
            ("HEAD", "/"): lambda r: Response.text("Ollama is running"),
            ("GET", "/api/version"): lambda r: _json({"version": self.version}),
            ("HEAD", "/api/version"): lambda r: _json({"version": self.version}),
            ("GET", "/api/tags"): self._tags,
            ("HEAD", "/api/tags"): self._tags,
            ("GET", "/api/ps"): self._ps,
            ("POST", "/api/show"): self._show,
            ("POST", "/api/create"): self._create,
            ("POST", "/api/copy"): self._copy,
            ("DELETE", "/api/delete"): self._delete,
            ("POST", "/api/pull"): self._pull,
            ("POST", "/api/push"): self._push,
            ("GET", "/v1/models"): self._v1_models,
            ("POST", "/api/chat"): self._chat,
        }
        handler = table.get((method, route.rstrip("/") or "/"))
        if handler is not None:
            try:
                return handler(request)
            except _BadRequest as err:
                return _json({"error": err.message}, err.status)
        if route.startswith("/api/blobs/") and method in ("HEAD", "POST"):
            return self._blob(request, route[len("/api/blobs/") :])
        if any(path == route.rstrip("/") for _, path in table):
            return Response.text("405 method not allowed", status=405)
        return Response.text("404 page not found", status=404)

    @staticmethod
    def _body(request: Request, struct: str, strings: Iterable[str] = ()) -> dict[str, Any]:
        """Decode like gin's ShouldBindJSON: empty → "missing request body", Go-style errors."""
        if not request.body.strip():
            raise _BadRequest("missing request body")
        try:
            body = json.loads(request.body)
        except json.JSONDecodeError as exc:
            if exc.pos >= len(request.body.strip()):
                raise _BadRequest("unexpected EOF") from None
            char = request.body.decode(errors="replace")[exc.pos]
            raise _BadRequest(
                f"invalid character '{char}' looking for beginning of value"
            ) from None
        if not isinstance(body, dict):
            kind = "array" if isinstance(body, list) else type(body).__name__
            raise _BadRequest(f"json: cannot unmarshal {kind} into Go value of type api.{struct}")
        for key in strings:
            value = body.get(key)
            if value is not None and not isinstance(value, str):
                kind = {bool: "bool", int: "number", float: "number", list: "array", dict: "object"}
                raise _BadRequest(
                    f"json: cannot unmarshal {kind.get(type(value), 'value')} into Go struct "
                    f"field {struct}.{key} of type string"
                )
        return body

    def _chat(self, request: Request) -> Response:
        """``POST /api/chat`` without streaming (``"stream": false``), as Ollama answers it."""
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            return _json({"error": "invalid character in request body"}, 400)
        name = str(body.get("model") or "")
        if self.model(name) is None:
            return _json({"error": f'model "{name}" not found, try pulling it first'}, 404)
        if body.get("stream", True) is not False:
            return _json({"error": "the fake answers only non-streaming chats"}, 400)
        delay, fail = self._chat_draw()
        if not self._chat_pause(delay):
            return StreamResponse(reset=True)
        if fail:
            return _json({"error": "llama runner process has terminated: exit status 2"}, 500)
        prompt_tokens = self._count_tokens(body.get("messages"))
        content = "This is a fake answer from " + name + "."
        return _json(
            {
                "model": name,
                "created_at": _go_time(self._now()),
                "message": {"role": "assistant", "content": content},
                "done_reason": "stop",
                "done": True,
                "total_duration": int(delay * 1e9),
                "load_duration": 1_000_000,
                "prompt_eval_count": prompt_tokens,
                "prompt_eval_duration": 1_000_000,
                "eval_count": len(content.split()),
                "eval_duration": int(delay * 1e9),
            }
        )

    def _tags(self, request: Request) -> Response:
        with self._state:
            models = sorted(self._models.values(), key=lambda m: m.modified_at, reverse=True)
            items = [
                {
                    "name": m.name,
                    "model": m.name,
                    "modified_at": _go_time(m.modified_at),
                    "size": m.total_size,
                    "digest": m.digest,
                    "details": m.details(),
                }
                for m in models
            ]
        return _json({"models": items})

    def _v1_models(self, request: Request) -> Response:
        with self._state:
            models = sorted(self._models.values(), key=lambda m: m.modified_at, reverse=True)
            data = [
                {
                    "id": m.name,
                    "object": "model",
                    "created": int(m.modified_at.timestamp()),
                    "owned_by": (parse_model_name(m.name) or ("", "library", "", ""))[1],
                }
                for m in models
            ]
        # Go marshals the empty slice it never appended to as null.
        return _json({"object": "list", "data": data or None})

    def _ps(self, request: Request) -> Response:
        with self._state:
            items = []
            for key, info in self._running.items():
                model = self._models.get(key)
                if model is None:
                    continue
                items.append(
                    {
                        "name": model.name,
                        "model": model.name,
                        "size": model.total_size,
                        "digest": model.digest,
                        "details": model.details() | {"parent_model": ""},
                        "expires_at": _go_time(info["expires_at"]),
                        "size_vram": info["size_vram"],
                        "context_length": info["context_length"],
                    }
                )
        items.sort(key=lambda i: i["expires_at"], reverse=True)
        return _json({"models": items})

    def _show(self, request: Request) -> Response:
        body = self._body(request, "ShowRequest", ("model", "name", "system"))
        name = body.get("model") or body.get("name") or ""
        if not name:
            raise _BadRequest("model is required")
        if parse_model_name(name) is None:
            raise _BadRequest("invalid model name")
        model = self.model(name)
        if model is None:
            return _json({"error": f"model '{short_name(name)}' not found"}, 404)
        system = body.get("system") or model.system
        params = []
        for k, v in model.parameters.items():
            for item in v if isinstance(v, list) else [v]:
                params.append(f"{k:<30} {_go_quoted(item)}")
        assert model.model_layer is not None
        lines = [f"FROM {BLOBS_DIR}/{model.model_layer.digest.replace(':', '-')}"]
        lines += [f"ADAPTER {BLOBS_DIR}/{a.digest.replace(':', '-')}" for a in model.adapters]
        lines.append(f"TEMPLATE {_mf_quote(model.template)}")
        if system:
            lines.append(f"SYSTEM {_mf_quote(system)}")
        if model.renderer:
            lines.append(f"RENDERER {_mf_quote(model.renderer)}")
        if model.parser:
            lines.append(f"PARSER {_mf_quote(model.parser)}")
        for k, v in model.parameters.items():
            for item in v if isinstance(v, list) else [v]:
                lines.append(f"PARAMETER {k} {_mf_quote(_go_value(item))}")
        lines += [f"LICENSE {_mf_quote(text)}" for text in model.license]
        lines += [
            f"MESSAGE {m.get('role', '')} {_mf_quote(str(m.get('content', '')))}"
            for m in model.messages
        ]
        modelfile = (
            '# Modelfile generated by "ollama show"\n'
            "# To build a new Modelfile based on this, replace FROM with:\n"
            f"# FROM {model.name}\n\n" + "".join(line + "\n" for line in lines)
        )
        resp: dict[str, Any] = {
            "license": "\n".join(model.license),
            "modelfile": modelfile,
            "parameters": "\n".join(params),
            "template": model.template,
            "system": system,
            "renderer": model.renderer,
            "parser": model.parser,
            "details": model.details(),
            "messages": [
                {"role": m.get("role"), "content": m.get("content")} for m in model.messages
            ],
            "model_info": dict(model.model_info),
            "capabilities": list(model.capabilities),
            "modified_at": _go_time(model.modified_at),
            "requires": model.requires,
        }
        return _json(
            {k: v for k, v in resp.items() if v not in ("", [], None) or k == "model_info"}
        )

    def _copy(self, request: Request) -> Response:
        body = self._body(request, "CopyRequest", ("source", "destination"))
        src, dst = body.get("source") or "", body.get("destination") or ""
        if parse_model_name(src) is None:
            raise _BadRequest(f'source "{src}" is invalid')
        if parse_model_name(dst) is None:
            raise _BadRequest(f'destination "{dst}" is invalid')
        with self._state:
            model = self._models.get(self._key(src))
            if model is None:
                return _json({"error": f'model "{src}" not found'}, 404)
            self._models[self._key(dst)] = _clone(model, dst, self._now())
        return Response(status=200)

    def _delete(self, request: Request) -> Response:
        body = self._body(request, "DeleteRequest", ("model", "name"))
        name = body.get("model") or body.get("name") or ""
        if parse_model_name(name) is None:
            raise _BadRequest(f'name "{name}" is invalid')
        with self._state:
            if self._models.pop(self._key(name), None) is None:
                return _json({"error": f"model '{name}' not found"}, 404)
            self._running.pop(self._key(name), None)
        return Response(status=200)

    def _blob(self, request: Request, digest: str) -> Response:
        if not re.fullmatch(r"sha256[:-][0-9a-f]{64}", digest):
            return _json({"error": "invalid digest format"}, 400)
        digest = digest.replace("-", ":", 1)
        if request.method == "HEAD":
            with self._state:
                known = digest in self.blobs
            return Response(200) if known else _json({"error": f'blob "{digest}" not found'}, 404)
        got = _sha256(request.body)
        if got != digest:
            return _json({"error": f'digest mismatch, expected "{digest}", got "{got}"'}, 400)
        with self._state:
            self.blobs[digest] = len(request.body)
        return Response(201)

    # -- streamed operations ------------------------------------------------------------------
    def _stream(self, body: Mapping[str, Any], events: Iterator[_Event]) -> Response:
        """gin's streamResponse / waitForStream over an event generator."""
        if body.get("stream") is False:
            last: dict[str, Any] = {}
            for event in events:
                if isinstance(event, _Err):
                    return _json({"error": event.message}, event.status or 500)
                last = event
            return _json(last)
        first = next(events, None)
        if first is None:
            return Response(200, b"", {"Content-Type": "application/x-ndjson"})
        if isinstance(first, _Err):
            return _json({"error": first.message}, first.status or 500)

        def lines() -> Iterator[bytes]:
            yield _encode(first) + b"\n"
            for event in events:
                if isinstance(event, _Err):
                    yield _encode({"error": event.message}) + b"\n"
                    return
                yield _encode(event) + b"\n"

        return StreamResponse(200, lines(), {"Content-Type": "application/x-ndjson"})

    def _paced(self, events: Iterable[_Event]) -> Iterator[_Event]:
        """Space events by ``pull_delay``; end the stream if the server stops."""
        for i, event in enumerate(events):
            if i and not self._pause(self.pull_delay):
                return
            yield event

    def _pull(self, request: Request) -> Response:
        body = self._body(request, "PullRequest", ("model", "name"))
        name = body.get("model") or body.get("name") or ""
        if parse_model_name(name) is None:
            raise _BadRequest("invalid model name")
        return self._stream(body, self._paced(self._pull_events(name)))

    def _pull_events(self, name: str) -> Iterator[_Event]:
        yield {"status": "pulling manifest"}
        with self._state:
            remote = self._remote.get(self._key(name))
            existed = self._key(name) in self._models
        if remote is None:
            yield _Err("pull model manifest: file does not exist")
            return
        for i, layer in enumerate(remote.layers()):
            steps = max(1, self.pull_steps) if layer.media_type == _MT_MODEL else 1
            for k in range(steps + 1):
                event: dict[str, Any] = {
                    "status": f"pulling {layer.digest[7:19]}",
                    "digest": layer.digest,
                    "total": layer.size,
                }
                if k:
                    event["completed"] = layer.size * k // steps
                yield event
            if i == 0 and remote.pull_error:
                yield _Err(remote.pull_error)
                return
        yield {"status": "verifying sha256 digest"}
        yield {"status": "writing manifest"}
        with self._state:
            self._models[self._key(name)] = _clone(remote, remote.name, self._now())
        if existed:
            yield {"status": "removing unused layers"}
        yield {"status": "success"}

    def _push(self, request: Request) -> Response:
        body = self._body(request, "PushRequest", ("model", "name"))
        name = body.get("model") or body.get("name") or ""
        if not name:
            raise _BadRequest("model is required")
        return self._stream(body, self._paced(self._push_events(name)))

    def _push_events(self, name: str) -> Iterator[_Event]:
        yield {"status": "retrieving manifest"}
        model = self.model(name)
        parsed = parse_model_name(name)
        if model is None or parsed is None:
            yield {"status": "couldn't retrieve manifest"}
            host, ns, m, tag = parsed or ("registry.ollama.ai", "library", name, "latest")
            yield _Err(
                f"open /root/.ollama/models/manifests/{host}/{ns}/{m}/{tag}: "
                "no such file or directory"
            )
            return
        for layer in model.layers():
            steps = max(1, self.pull_steps) if layer.media_type == _MT_MODEL else 1
            for k in range(steps + 1):
                event: dict[str, Any] = {
                    "status": f"pushing {layer.digest[7:19]}",
                    "digest": layer.digest,
                    "total": layer.size,
                }
                if k:
                    event["completed"] = layer.size * k // steps
                yield event
        yield {"status": "pushing manifest"}
        yield {"status": "success"}

    def _create(self, request: Request) -> Response:
        strings = ("model", "name", "from", "template", "system", "quantize", "quantization")
        body = self._body(request, "CreateRequest", (*strings, "renderer", "parser", "requires"))
        for key in ("files", "adapters"):
            for path, digest in (body.get(key) or {}).items():
                if key == "files" and not _valid_fs_path(path):
                    raise _BadRequest("file path must be relative")
                if not digest:
                    raise _BadRequest("invalid digest format")
        name = body.get("model") or body.get("name") or ""
        if parse_model_name(name) is None:
            raise _BadRequest("invalid model name")
        return self._stream(body, self._paced(self._create_events(name, body)))

    def _create_events(self, name: str, req: Mapping[str, Any]) -> Iterator[_Event]:
        source = req.get("from") or ""
        base: OllamaModel | None = None
        if source:
            if parse_model_name(source) is None:
                yield _Err("invalid model name", 400)
                return
            base = self.model(source)
            if base is None:
                for event in self._pull_events(source):
                    yield event
                    if isinstance(event, _Err):
                        return
                base = self.model(source)
                assert base is not None
        elif req.get("files"):
            files: Mapping[str, str] = req["files"]
            if any(p.endswith(".safetensors") for p in files):
                kind, status = "safetensors", "converting model"
            elif any(p.endswith(".gguf") for p in files):
                kind, status = "gguf", "parsing GGUF"
            else:
                yield _Err("unknown type", 400)
                return
            yield {"status": status}
            with self._state:
                missing = [d for d in files.values() if d not in self.blobs]
                size = sum(self.blobs.get(d, 0) for d in files.values())
            if missing:
                yield _Err(
                    f"open {BLOBS_DIR}/{missing[0].replace(':', '-')}: no such file or directory"
                )
                return
            digest = _sha256(json.dumps(sorted(files.values())))
            base = OllamaModel(
                name=name,
                format=kind,
                parameter_size="",
                quantization_level="F16",
                model_layer=_Layer(_MT_MODEL, digest, size),
                template=DEFAULT_TEMPLATE,
            )
        else:
            yield _Err("neither 'from' or 'files' was specified", 400)
            return

        new = _clone(base, name, None)
        new.parent_model = base.name if source else ""
        with self._state:
            known = {layer.digest for m in self._models.values() for layer in m.layers()}
            known |= set(self.blobs)
        assert base.model_layer is not None
        base_digests = {layer.digest for layer in base.layers()}
        quantize = str(req.get("quantize") or req.get("quantization") or "").upper()
        if quantize:
            if quantize not in _QUANTS:
                yield _Err(
                    f"unsupported quantization type {quantize} - supported types are "
                    "F32, F16, Q4_K_S, Q4_K_M, Q8_0"
                )
                return
            if base.quantization_level.upper() not in ("F16", "BF16", "F32"):
                yield _Err("quantization is only supported for F16, BF16 and F32 models")
                return
            label = f"quantizing {base.quantization_level.upper()} model to {quantize}"
            total = base.model_layer.size
            yield {"status": label, "digest": "0", "total": total, "completed": 0}
            yield {"status": label, "digest": "0", "total": total, "completed": total}
            yield {"status": "verifying conversion"}
            new.quantization_level = "Q4_K_M" if quantize == "Q4_K" else quantize
            new.model_layer = _Layer(
                _MT_MODEL, _sha256(f"{base.model_layer.digest}:{quantize}"), total // 2
            )
        if req.get("adapters"):
            with self._state:
                missing = [d for d in req["adapters"].values() if d not in self.blobs]
            if missing:
                yield _Err(
                    f"open {BLOBS_DIR}/{missing[0].replace(':', '-')}: no such file or directory",
                    400,
                )
                return
            new.adapters = [_Layer(_MT_ADAPTER, d, self.blobs[d]) for d in req["adapters"].values()]
        template = req.get("template") or ""
        if template:
            if error := _template_error(template):
                yield _Err(f"template error: {error}", 400)
                return
            new.template = template
        if req.get("system"):
            new.system = req["system"]
        licenses = req.get("license")
        if isinstance(licenses, str):
            licenses = [licenses] if licenses else []
        if licenses is not None:
            if not isinstance(licenses, list) or not all(isinstance(x, str) for x in licenses):
                yield _Err("json: cannot unmarshal number into Go value of type string")
                return
            new.license = [*base.license, *licenses]
        params = req.get("parameters") or {}
        if params:
            new.parameters = {
                **params,
                **{k: v for k, v in base.parameters.items() if k not in params},
            }
        if req.get("messages"):
            new.messages = [dict(m) for m in req["messages"]]
        for key in ("renderer", "parser", "requires"):
            if req.get(key):
                setattr(new, key, req[key])
        for layer in new.layers():
            seen = layer.digest in known or layer.digest in base_digests
            yield {"status": f"{'using existing' if seen else 'creating new'} layer {layer.digest}"}
        yield {"status": "writing manifest"}
        with self._state:
            new.modified_at = self._now()
            self._models[self._key(name)] = new
        yield {"status": "success"}


def _clone(model: OllamaModel, name: str, modified_at: datetime | None) -> OllamaModel:
    """A deep copy of ``model`` under another name."""
    copy = OllamaModel(
        name=name,
        size=model.size,
        format=model.format,
        family=model.family,
        families=list(model.families or []),
        parameter_size=model.parameter_size,
        quantization_level=model.quantization_level,
        parent_model=model.parent_model,
        template=model.template,
        system=model.system,
        parameters=json.loads(json.dumps(model.parameters)),
        license=list(model.license),
        messages=json.loads(json.dumps(model.messages)),
        model_info=json.loads(json.dumps(model.model_info)),
        capabilities=list(model.capabilities),
        renderer=model.renderer,
        parser=model.parser,
        requires=model.requires,
        modified_at=modified_at or model.modified_at,
        model_layer=model.model_layer,
        adapters=list(model.adapters),
    )
    return copy


def _valid_fs_path(path: str) -> bool:
    """Go's ``fs.ValidPath``: unrooted, slash-separated, no ``.``/``..``/empty elements."""
    if path == ".":
        return True
    return all(part not in ("", ".", "..") for part in path.split("/"))


# ---------------------------------------------------------------------------------------------
# OpenAI-compatible
# ---------------------------------------------------------------------------------------------
def _openai_error(
    status: int, message: str, etype: str, code: str | None = None, param: str | None = None
) -> Response:
    return _json(
        {"error": {"message": message, "type": etype, "param": param, "code": code}}, status
    )


class OpenAIApi(_Behaviour):
    """``GET /v1/models`` of an OpenAI-compatible server (vLLM, TGI, llama.cpp, OpenAI).

    ``api_key`` (None: no auth) is required as ``Authorization: Bearer <key>``; ``models`` is the
    served list, changeable with :meth:`set_models`/:meth:`add_model`/:meth:`remove_model`.
    """

    def __init__(
        self,
        *,
        models: Iterable[str] = (),
        api_key: str | None = None,
        owned_by: str = "system",
        mode: str = "healthy",
        slow_delay: float = 0.5,
    ) -> None:
        super().__init__(mode=mode, slow_delay=slow_delay)
        self.api_key = api_key
        self.owned_by = owned_by
        self._served: dict[str, dict[str, Any]] = {}
        self.set_models(models)

    def set_models(self, models: Iterable[str]) -> None:
        """Replace the served model ids."""
        with self._state:
            self._served = {}
        for model_id in models:
            self.add_model(model_id)

    def add_model(self, model_id: str, **extra: Any) -> None:
        """Serve ``model_id``; ``extra`` fields (e.g. vLLM's ``max_model_len``) are reported."""
        with self._state:
            self._served[model_id] = {
                "id": model_id,
                "object": "model",
                "created": 1_700_000_000 + len(self._served),
                "owned_by": self.owned_by,
                **extra,
            }

    def remove_model(self, model_id: str) -> None:
        with self._state:
            self._served.pop(model_id, None)

    @property
    def models(self) -> list[str]:
        with self._state:
            return list(self._served)

    def _failure(self) -> Response:
        return _openai_error(
            500,
            "The server had an error while processing your request. Sorry about that!",
            "server_error",
        )

    def _route(self, request: Request, route: str) -> Response:
        route = route.rstrip("/")
        if not route.startswith(("/v1/models", "/v1/chat/completions")):
            return _openai_error(
                404, f"Invalid URL ({request.method} {route})", "invalid_request_error"
            )
        if self.api_key is not None:
            auth = request.headers.get("authorization", "")
            scheme, _, key = auth.partition(" ")
            if not auth or scheme.lower() != "bearer" or not key.strip():
                return _openai_error(
                    401,
                    "You didn't provide an API key. You need to provide your API key in an "
                    "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), "
                    "or as the password field (with blank username) if you're accessing the API "
                    "from your browser and are prompted for a username and password. You can "
                    "obtain an API key from https://platform.openai.com/account/api-keys.",
                    "invalid_request_error",
                )
            if key.strip() != self.api_key:
                shown = key[:3] + "*" * max(0, len(key) - 7) + key[-4:] if len(key) > 7 else "***"
                return _openai_error(
                    401,
                    f"Incorrect API key provided: {shown}. You can find your API key at "
                    "https://platform.openai.com/account/api-keys.",
                    "invalid_request_error",
                    code="invalid_api_key",
                )
        if route == "/v1/chat/completions":
            if request.method != "POST":
                return _openai_error(405, "Method not allowed", "invalid_request_error")
            return self._chat(request)
        if request.method != "GET":
            return _openai_error(405, "Method not allowed", "invalid_request_error")
        with self._state:
            served = [dict(m) for m in self._served.values()]
        if route == "/v1/models":
            return _json({"object": "list", "data": served})
        model_id = route[len("/v1/models/") :]
        for item in served:
            if item["id"] == model_id:
                return _json(item)
        return _openai_error(
            404,
            f"The model '{model_id}' does not exist",
            "invalid_request_error",
            code="model_not_found",
            param="model",
        )

    def _chat(self, request: Request) -> Response:
        """``POST /v1/chat/completions`` (no streaming), as vLLM and OpenAI answer it."""
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            return _openai_error(400, "We could not parse the JSON body of your request.",
                                 "invalid_request_error")  # fmt: skip
        model_id = str(body.get("model") or "")
        with self._state:
            known = model_id in self._served
        if not known:
            return _openai_error(404, f"The model `{model_id}` does not exist.",
                                 "invalid_request_error", code="model_not_found")  # fmt: skip
        delay, fail = self._chat_draw()
        if not self._chat_pause(delay):
            return StreamResponse(reset=True)
        if fail:
            return self._failure()
        prompt_tokens = self._count_tokens(body.get("messages"))
        content = "This is a fake answer from " + model_id + "."
        completion_tokens = len(content.split())
        with self._state:
            number = self.chats
        return _json(
            {
                "id": f"chatcmpl-{number:08d}",
                "object": "chat.completion",
                "created": 1_700_000_000 + number,
                "model": model_id,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            }
        )


# ---------------------------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------------------------
class FakeOllama(StreamingFakeServer, OllamaApi):
    """An Ollama server on 127.0.0.1 (arguments: see :class:`OllamaApi`)."""

    def __init__(self, *, host: str = "127.0.0.1", **options: Any) -> None:
        StreamingFakeServer.__init__(self, host)
        OllamaApi.__init__(self, **options)
        self._halt = self.stopping

    def handle(self, request: Request) -> Response:
        return self.handle_at(request, request.route)

    def _wake(self) -> None:
        self._wake_all()


class FakeOpenAI(StreamingFakeServer, OpenAIApi):
    """An OpenAI-compatible server on 127.0.0.1 (arguments: see :class:`OpenAIApi`).

    ``prefix`` serves the API under a path, as KServe's Hugging Face runtime does (``/openai``:
    ``POST /openai/v1/chat/completions``).
    """

    def __init__(self, *, host: str = "127.0.0.1", prefix: str = "", **options: Any) -> None:
        StreamingFakeServer.__init__(self, host)
        OpenAIApi.__init__(self, **options)
        self._halt = self.stopping
        self.prefix = prefix.rstrip("/")

    def handle(self, request: Request) -> Response:
        route = request.route
        if self.prefix:
            if not route.startswith(self.prefix + "/"):
                return _openai_error(404, f"Invalid URL ({request.method} {route})",
                                     "invalid_request_error")  # fmt: skip
            route = route[len(self.prefix) :]
        return self.handle_at(request, route)

    def _wake(self) -> None:
        self._wake_all()


class VirtualOllama(OllamaApi):
    """An Ollama endpoint of a :class:`FakeEndpointFarm`; ``url`` is its base URL."""

    kind = "ollama"
    url: str
    index: int


class VirtualOpenAI(OpenAIApi):
    """An OpenAI-compatible endpoint of a :class:`FakeEndpointFarm`; ``url`` is its base URL."""

    kind = "openai"
    url: str
    index: int


_FARM_ROUTE = re.compile(r"^/e/(\d+)(/.*)?$")


class FakeEndpointFarm(StreamingFakeServer):
    """Many virtual Ollama/OpenAI endpoints on one port: ``/e/<n>/…`` is endpoint ``n``.

    Each endpoint keeps its own mode, models and key, so a benchmark can run 1,000 endpoints
    (some failing, hanging or slow) with one listening socket and no per-endpoint thread.

    A benchmark should run the farm in another process (``python -m tests.fakes.ollama``):
    in-process, its handler threads and the measured client share one GIL. The farm is then
    steered over HTTP: ``GET /_farm`` lists endpoints, ``POST /_farm/add`` with
    ``{"kind", "count", "mode", "models", "api_key"}`` adds some, ``PUT /_farm/e/<n>`` with
    ``{"mode", "slow_delay", "models", "api_key"}`` changes one.
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self._endpoints: list[VirtualOllama | VirtualOpenAI] = []

    def add(self, kind: str = "ollama", **options: Any) -> VirtualOllama | VirtualOpenAI:
        """Add an endpoint (``kind`` ``"ollama"`` or ``"openai"``; options as for the fakes)."""
        endpoint: VirtualOllama | VirtualOpenAI
        if kind == "ollama":
            endpoint = VirtualOllama(**options)
        elif kind == "openai":
            endpoint = VirtualOpenAI(**options)
        else:
            raise ValueError("kind must be 'ollama' or 'openai'")
        endpoint._halt = self.stopping
        with self._lock:
            endpoint.index = len(self._endpoints)
            self._endpoints.append(endpoint)
        endpoint.url = f"{self.url}/e/{endpoint.index}"
        return endpoint

    def add_many(self, count: int, kind: str = "ollama", **options: Any) -> list[Any]:
        return [self.add(kind, **options) for _ in range(count)]

    @property
    def endpoints(self) -> list[VirtualOllama | VirtualOpenAI]:
        with self._lock:
            return list(self._endpoints)

    def __getitem__(self, index: int) -> VirtualOllama | VirtualOpenAI:
        with self._lock:
            return self._endpoints[index]

    def __len__(self) -> int:
        with self._lock:
            return len(self._endpoints)

    def describe(self, endpoint: VirtualOllama | VirtualOpenAI) -> dict[str, Any]:
        return {
            "index": endpoint.index,
            "kind": endpoint.kind,
            "url": endpoint.url,
            "mode": endpoint.mode,
            "models": endpoint.models,
        }

    def _control(self, request: Request) -> Response:
        """The ``/_farm`` API, for a farm running in another process."""
        route = request.route.rstrip("/")
        try:
            body = request.json() or {}
        except ValueError:
            return _json({"error": "invalid JSON"}, 400)
        if request.method == "GET" and route == "/_farm":
            return _json({"endpoints": [self.describe(e) for e in self.endpoints]})
        if request.method == "POST" and route == "/_farm/add":
            options = {k: body[k] for k in ("mode", "slow_delay", "api_key") if k in body}
            if body.get("kind", "ollama") == "openai" and "models" in body:
                options["models"] = body["models"]
            added = []
            for _ in range(int(body.get("count", 1))):
                endpoint = self.add(body.get("kind", "ollama"), **options)
                if isinstance(endpoint, VirtualOllama):
                    for name in body.get("models", []):
                        endpoint.add_model(name)
                added.append(self.describe(endpoint))
            return _json({"endpoints": added})
        m = re.fullmatch(r"/_farm/e/(\d+)", route)
        if request.method == "PUT" and m and int(m.group(1)) < len(self):
            endpoint = self[int(m.group(1))]
            if "mode" in body or "slow_delay" in body:
                endpoint.set_mode(
                    body.get("mode", endpoint.mode), slow_delay=body.get("slow_delay")
                )
            if "api_key" in body and isinstance(endpoint, VirtualOpenAI):
                endpoint.api_key = body["api_key"]
            if "models" in body:
                if isinstance(endpoint, VirtualOpenAI):
                    endpoint.set_models(body["models"])
                else:
                    for name in endpoint.models:
                        endpoint.remove_model(name)
                    for name in body["models"]:
                        endpoint.add_model(name)
            return _json(self.describe(endpoint))
        return _json({"error": "unknown farm control request"}, 404)

    def handle(self, request: Request) -> Response:
        if request.route.startswith("/_farm"):
            return self._control(request)
        m = _FARM_ROUTE.match(request.route)
        with self._lock:
            index = int(m.group(1)) if m else -1
            endpoint = self._endpoints[index] if 0 <= index < len(self._endpoints) else None
        if m is None or endpoint is None:
            return Response.text("404 page not found", status=404)
        return endpoint.handle_at(request, m.group(2) or "/")

    def _wake(self) -> None:
        for endpoint in self.endpoints:
            endpoint._wake_all()


# ---------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------
def _check(fake: StreamingFakeServer) -> None:
    if fake.errors:
        raise AssertionError(f"{type(fake).__name__} handler crashed: {fake.errors!r}")


@pytest.fixture
def fake_ollama() -> Iterator[FakeOllama]:
    """A running, healthy :class:`FakeOllama` with no models."""
    with FakeOllama() as fake:
        yield fake
        _check(fake)


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    """A running, healthy :class:`FakeOpenAI` with no key and no models."""
    with FakeOpenAI() as fake:
        yield fake
        _check(fake)


@pytest.fixture
def fake_endpoint_farm() -> Iterator[FakeEndpointFarm]:
    """A running, empty :class:`FakeEndpointFarm`."""
    with FakeEndpointFarm() as farm:
        yield farm
        _check(farm)


def main(argv: list[str] | None = None) -> None:
    """Serve a farm until interrupted (``python -m tests.fakes.ollama --ollama 500``)."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ollama", type=int, default=0, help="Ollama endpoints to add")
    parser.add_argument("--openai", type=int, default=0, help="OpenAI endpoints to add")
    parser.add_argument("--models", nargs="*", default=["llama3.2"], help="models per endpoint")
    args = parser.parse_args(argv)
    farm = FakeEndpointFarm(host=args.host, port=args.port).start()
    for _ in range(args.ollama):
        endpoint = farm.add("ollama")
        for name in args.models:
            endpoint.add_model(name)  # type: ignore[union-attr]
    for _ in range(args.openai):
        farm.add("openai", models=args.models)
    print(farm.url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        farm.stop()


if __name__ == "__main__":
    main()
