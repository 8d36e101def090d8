"""Streaming, fault-capable variant of the shared fake server (``tests/fakes/http.py``).

The base server buffers every body, which cannot serve a multi-GB model file, throttle a
download, stream NDJSON progress line by line, or cut a transfer and reset a socket. This module
keeps the base's :class:`Request`/:class:`Response` types, lifecycle and request recording, and
swaps in a handler that writes iterable bodies as they are produced:

- an iterable body with a ``Content-Length`` header is written raw; without one it is sent with
  ``Transfer-Encoding: chunked`` (what Go's and most real servers do for streams);
- :class:`StreamResponse` adds a bytes/s ``rate``, ``reset`` (answer with a TCP RST, as a crashed
  or overloaded peer would) and ``on_sent`` (so a fake can count the bytes it really delivered);
- :meth:`StreamingFakeServer.stop` wakes handlers blocked in :meth:`~StreamingFakeServer.sleep`
  and closes idle keep-alive connections, so a "hanging" fake never blocks shutdown and a
  stopped fake really refuses pooled connections too; :meth:`~StreamingFakeServer.start` after a
  stop binds the same port again, so a test can take a service down and bring it back.

Candidate to merge into ``tests/fakes/http.py``; kept apart so that file stays its owner's.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Self

from tests.fakes.http import FakeHTTPServer, Request, Response, _Handler, _Server

__all__ = ["Link", "Request", "Response", "StreamResponse", "StreamingFakeServer"]


class Link:
    """A shared link of ``rate`` bytes/s: every response that uses it takes turns, so parallel
    transfers share the bandwidth as they would on one network path (``rate`` on a
    :class:`StreamResponse` limits each transfer on its own)."""

    piece = 256 * 1024

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._lock = threading.Lock()
        self._next = time.monotonic()

    def reserve(self, nbytes: int) -> float:
        """The monotonic time at which ``nbytes`` may be sent."""
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + nbytes / self.rate
            return start


@dataclass
class StreamResponse(Response):
    """A :class:`Response` with streaming extras.

    ``rate`` throttles the body to that many bytes per second. ``reset`` answers nothing and
    resets the connection. ``close`` closes the connection after the response.
    ``on_sent(nbytes, complete)`` is called once the body is written or cut short.
    """

    rate: float | None = None
    link: Link | None = None
    reset: bool = False
    close: bool = False
    on_sent: Callable[[int, bool], None] | None = None


class _StreamingHandler(_Handler):
    server: _StreamingServer

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without NODELAY, Nagle + delayed ACK
        # stall every keep-alive response by ~40 ms.
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def _reset(self) -> None:
        """Close with SO_LINGER 0, so the peer sees a TCP RST (ECONNRESET), not a clean FIN."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()

    def _send(self, response: Response) -> None:
        extra = response if isinstance(response, StreamResponse) else StreamResponse()
        if extra.reset:
            self._reset()
            if extra.on_sent is not None:
                extra.on_sent(0, False)
            return
        body = response.body
        headers = dict(response.headers)
        names = {k.lower() for k in headers}
        chunks: Iterable[bytes]
        chunked = False
        if isinstance(body, bytes | bytearray | memoryview):
            chunks = [bytes(body)]
            if "content-length" not in names:
                headers["Content-Length"] = str(len(body))
        else:
            chunks = body
            no_body = self.command == "HEAD" or response.status in (204, 304)
            if "content-length" not in names and not no_body:
                chunked = True
                headers["Transfer-Encoding"] = "chunked"
        sent, complete = 0, False
        try:
            self.send_response(response.status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command == "HEAD":
                complete = True
                return
            sent, complete = self._write_body(
                chunks, chunked, response.abort_after, extra.rate, extra.link
            )
        except OSError:  # the client went away: its problem, not a fake bug
            self.close_connection = True
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
            if extra.close or not complete:
                self.close_connection = True
            if extra.on_sent is not None:
                extra.on_sent(sent, complete)

    def _write_body(
        self,
        chunks: Iterable[bytes],
        chunked: bool,
        abort_after: int | None,
        rate: float | None,
        link: Link | None = None,
    ) -> tuple[int, bool]:
        stopping = self.server.fake.stopping
        budget = abort_after
        sent = 0
        started = time.monotonic()
        piece = max(1, int(rate / 20)) if rate else 0
        for chunk in chunks:
            if stopping.is_set():
                return sent, False
            data = bytes(chunk)
            if not data:
                continue
            cut = budget is not None and len(data) >= budget
            if budget is not None:
                data = data[:budget]
                budget -= len(data)
            if chunked and data:
                self.wfile.write(b"%x\r\n" % len(data))
            if link is not None:
                view = memoryview(data)
                for i in range(0, len(data), link.piece):
                    part = view[i : i + link.piece]
                    delay = link.reserve(len(part)) - time.monotonic()
                    if delay > 0 and stopping.wait(delay):
                        return sent, False
                    self.wfile.write(part)
                    sent += len(part)
            elif rate:
                for i in range(0, len(data), piece):
                    delay = started + (sent + piece) / rate - time.monotonic()
                    if delay > 0 and stopping.wait(delay):
                        return sent, False
                    part = data[i : i + piece]
                    self.wfile.write(part)
                    sent += len(part)
            else:
                self.wfile.write(data)
                sent += len(data)
            if cut:
                self.wfile.flush()
                return sent, False
            if chunked:
                self.wfile.write(b"\r\n")
            self.wfile.flush()
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        return sent, True


class _StreamingServer(_Server):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 1024  # a benchmark opens hundreds of connections at once
    fake: StreamingFakeServer

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._conn_lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        super().__init__(*args, **kwargs)

    def track(self, conn: socket.socket) -> None:
        with self._conn_lock:
            self._connections.add(conn)

    def untrack(self, conn: socket.socket) -> None:
        with self._conn_lock:
            self._connections.discard(conn)

    def drop_connections(self) -> None:
        """Shut down every open connection, waking handlers blocked reading a keep-alive one."""
        with self._conn_lock:
            conns = list(self._connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class StreamingFakeServer(FakeHTTPServer):
    """:class:`FakeHTTPServer` with streamed bodies, stop-aware sleeps and restart on one port."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host)
        self._port = port
        self.stopping = threading.Event()
        """Set while stopped or stopping; long waits in handlers must watch it."""
        self.stopping.set()

    def start(self) -> Self:
        """Bind (the previous port again after a stop, else ``port``) and serve; idempotent."""
        with self._lock:
            if self._server is None:
                server = _StreamingServer((self.host, self._port), _StreamingHandler)
                server.fake = self
                self._port = int(server.server_address[1])
                self._server = server
                self.stopping.clear()
                self._thread = threading.Thread(
                    target=server.serve_forever,
                    kwargs={"poll_interval": 0.05},
                    name=f"{type(self).__name__}:{self._port}",
                    daemon=True,
                )
                self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving: wake sleeping handlers, release the port, close open connections."""
        self.stopping.set()
        self._wake()
        server = self._server
        super().stop()
        if server is not None:
            server.drop_connections()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        """The port, also while stopped after a first start (a "down" service keeps its URL)."""
        if not self._port:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return self._port

    def sleep(self, seconds: float) -> bool:
        """Sleep in a handler; ``False`` (early) if the server is stopping."""
        return not self.stopping.wait(seconds) if seconds > 0 else not self.stopping.is_set()

    def _wake(self) -> None:
        """Hook: wake handlers waiting on subclass conditions (called on stop)."""
