"""Shared base for the local fake servers in ``tests/fakes``.

Each fake is a real HTTP server on ``127.0.0.1`` (port 0, so parallel tests never collide) run by
a background thread, so the real client libraries talk to it over sockets exactly as they would
to the real service: no patching of library internals.

Subclasses implement :meth:`FakeHTTPServer.handle`, mapping a :class:`Request` to a
:class:`Response`. The base records every request (thread-safely) before dispatching it, turns
handler exceptions into HTTP 500 (and keeps them in :attr:`FakeHTTPServer.errors` so a test can
fail loudly instead of seeing a confusing client error), and omits bodies for ``HEAD``.
"""

from __future__ import annotations

import json
import threading
import traceback
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, NamedTuple, Self
from urllib.parse import parse_qs, urlsplit

__all__ = ["FakeHTTPServer", "Request", "Response"]


class Request(NamedTuple):
    """One request as received: unpacks as ``(method, path, headers, body)``.

    ``path`` is the raw request target including the query string; ``headers`` has lower-cased
    names (HTTP header names are case-insensitive, and clients differ in how they spell them).
    """

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def route(self) -> str:
        """The path without the query string."""
        return urlsplit(self.path).path

    @property
    def query(self) -> dict[str, list[str]]:
        """Query parameters; repeated keys keep every value (``?filter=a&filter=b``)."""
        return parse_qs(urlsplit(self.path).query, keep_blank_values=True)

    def json(self) -> Any:
        """The body decoded as JSON, or ``None`` for an empty body."""
        return json.loads(self.body) if self.body.strip() else None


@dataclass
class Response:
    """What a fake answers.

    ``abort_after`` sends the headers and only that many body bytes, then drops the connection:
    it simulates a transfer cut mid-stream (for clients that resume or retry).
    """

    status: int = 200
    body: bytes | Iterable[bytes] = b""
    headers: dict[str, str] = field(default_factory=dict)
    abort_after: int | None = None

    @classmethod
    def json(
        cls, data: Any, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> Response:
        """A JSON response (``Content-Type: application/json; charset=utf-8``)."""
        hdrs = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
        return cls(status=status, body=json.dumps(data).encode(), headers=hdrs)

    @classmethod
    def text(
        cls, text: str, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> Response:
        """A plain-text response."""
        hdrs = {"Content-Type": "text/plain; charset=utf-8", **(headers or {})}
        return cls(status=status, body=text.encode(), headers=hdrs)


class _Handler(BaseHTTPRequestHandler):
    """Routes every HTTP method to the owning fake; HTTP/1.1 so keep-alive clients behave."""

    protocol_version = "HTTP/1.1"
    server: _Server
    # An idle keep-alive connection must not pin a handler thread forever.
    timeout = 30
    # Without TCP_NODELAY, Nagle + delayed ACK stall every keep-alive response by ~40 ms.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: pytest output is for test failures, not access logs."""

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _serve(self) -> None:
        fake = self.server.fake
        request = Request(
            method=self.command,
            path=self.path,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=self._read_body(),
        )
        fake._record(request)
        try:
            response = fake.handle(request)
        except Exception as exc:  # a fake bug must surface, not hang the client
            fake._record_error(exc)
            response = Response.text(traceback.format_exc(), status=500)
        self._send(response)

    def _send(self, response: Response) -> None:
        body = (
            response.body
            if isinstance(response.body, bytes)
            else b"".join(bytes(chunk) for chunk in response.body)
        )
        self.send_response(response.status)
        names = {k.lower() for k in response.headers}
        for name, value in response.headers.items():
            self.send_header(name, value)
        if "content-length" not in names:
            # HEAD keeps the length of the body it would have sent, as real servers do.
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command == "HEAD":
            return
        if response.abort_after is not None:
            self.wfile.write(body[: response.abort_after])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default of 5 refuses bursts of concurrent test clients
    fake: FakeHTTPServer


class FakeHTTPServer:
    """Threaded local HTTP server base: subclass and implement :meth:`handle`.

    Use as a context manager (``with FakeX() as fake:``) or call :meth:`start` / :meth:`stop`.
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.RLock()
        self._requests: list[Request] = []
        self.errors: list[BaseException] = []

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> Self:
        """Bind a free port and serve in a daemon thread; idempotent."""
        if self._server is None:
            server = _Server((self.host, 0), _Handler)
            server.fake = self
            self._server = server
            self._thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"{type(self).__name__}:{server.server_address[1]}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port; idempotent."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port (only while running)."""
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, e.g. ``http://127.0.0.1:54321``."""
        return f"http://{self.host}:{self.port}"

    # -- recording ---------------------------------------------------------------------------
    @property
    def requests(self) -> list[Request]:
        """A snapshot of every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        """Forget recorded requests and errors."""
        with self._lock:
            self._requests.clear()
            self.errors.clear()

    def _record(self, request: Request) -> None:
        with self._lock:
            self._requests.append(request)

    def _record_error(self, exc: BaseException) -> None:
        with self._lock:
            self.errors.append(exc)

    # -- to implement ------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        """Answer one request; runs on a server thread (guard shared state with ``self._lock``)."""
        return Response.json({"error": "not found"}, status=404)
