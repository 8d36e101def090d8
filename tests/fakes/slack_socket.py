"""Slack's Socket Mode server side: an RFC 6455 WebSocket that pushes envelopes and takes acks.

``apps.connections.open`` on :class:`tests.fakes.slack.FakeSlack` hands out a ``ws://`` URL with
a fresh ticket from :meth:`SocketModeServer.issue_url` (slack_sdk's builtin client uses a plain
socket when the port is not 443). Like Slack it says ``hello`` first, sends envelopes as text
frames, expects ``{"envelope_id": ...}`` acks, pings and answers pings, and asks the client to
reconnect with a ``disconnect`` message, dropping the old link once the client has reconnected.

It is strict where a client bug would hide: unmasked client frames, unknown tickets, acks of
envelopes never sent and unexpected messages are recorded in :attr:`SocketModeServer.errors`.
Standard library only.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import itertools
import json
import secrets
import socket
import struct
import threading
from collections.abc import Callable
from typing import Any, BinaryIO, Self
from urllib.parse import parse_qs, urlsplit

__all__ = [
    "OP_CLOSE",
    "OP_PING",
    "OP_PONG",
    "OP_TEXT",
    "SocketModeServer",
    "accept_key",
    "encode_frame",
    "read_frame",
]

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_TEXT, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x8, 0x9, 0xA
CLOSE_PROTOCOL_ERROR = 1002


def accept_key(client_key: str) -> str:
    """``Sec-WebSocket-Accept`` for a client's ``Sec-WebSocket-Key`` (RFC 6455 §4.2.2)."""
    digest = hashlib.sha1((client_key + GUID).encode(), usedforsecurity=False).digest()
    return base64.b64encode(digest).decode()


def encode_frame(opcode: int, payload: bytes, mask: bytes | None = None) -> bytes:
    """One final frame; servers send unmasked, clients masked."""
    head = bytes([0x80 | opcode])
    mask_bit = 0x80 if mask else 0
    size = len(payload)
    if size < 126:
        head += bytes([mask_bit | size])
    elif size < 1 << 16:
        head += bytes([mask_bit | 126]) + struct.pack("!H", size)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", size)
    if mask:
        return head + mask + _unmask(payload, mask)
    return head + payload


def _unmask(payload: bytes, mask: bytes) -> bytes:
    """XOR with the 4-byte key (its own inverse), a word at a time: 70 kB frames stay fast."""
    key = int.from_bytes((mask * (len(payload) // 4 + 1))[: len(payload)], "big")
    return (int.from_bytes(payload, "big") ^ key).to_bytes(len(payload), "big")


def read_frame(stream: BinaryIO, *, require_mask: bool = False) -> tuple[int, bytes]:
    """(opcode, unmasked payload) of the next frame; raises EOFError when the peer is gone.

    ``require_mask`` is the server's view: RFC 6455 §5.1 says a client frame without a mask is a
    protocol error (ValueError), which is how a client that forgot to mask gets caught.
    """

    def exact(n: int) -> bytes:
        data = stream.read(n)
        if data is None or len(data) < n:
            raise EOFError
        return bytes(data)

    b1, b2 = exact(2)
    size = b2 & 0x7F
    if size == 126:
        (size,) = struct.unpack("!H", exact(2))
    elif size == 127:
        (size,) = struct.unpack("!Q", exact(8))
    if require_mask and not b2 & 0x80:
        raise ValueError("unmasked client frame")
    if not b1 & 0x80:
        raise ValueError("fragmented frame (the fake does not reassemble)")
    mask = exact(4) if b2 & 0x80 else None
    payload = exact(size)
    return b1 & 0x0F, _unmask(payload, mask) if mask else payload


class _Connection:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.lock = threading.Lock()
        self.open = True
        self.retiring = False  # told to reconnect; dropped once the client has reconnected

    def send(self, opcode: int, payload: bytes) -> None:
        with self.lock:
            self.sock.sendall(encode_frame(opcode, payload))

    def drop(self) -> None:
        """Close the TCP connection without a close frame, as Slack does after ``disconnect``."""
        self.open = False
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self.sock.close()


class SocketModeServer:
    """Accepts Socket Mode connections, pushes envelopes and records what clients send back.

    ``ping_interval``: Slack pings its clients; the fake pings often (default 0.2 s) because
    slack_sdk's builtin client holds its receive lock during a blocking ``recv`` (up to 3 s), and
    only traffic lets a closing client take it promptly.
    """

    def __init__(self, host: str = "127.0.0.1", *, ping_interval: float | None = 0.2) -> None:
        self._listener = socket.create_server((host, 0))
        self.host = host
        self.port: int = self._listener.getsockname()[1]
        self.ping_interval = ping_interval
        self._lock = threading.Condition()
        self._connections: list[_Connection] = []
        self._tickets: set[str] = set()
        self._acks: dict[str, list[dict[str, Any]]] = {}
        self._sent: dict[str, int] = {}
        self._ids = itertools.count(1)
        self._stopped = threading.Event()
        self.handshakes = 0
        self.pings_received = 0
        self.pongs_received = 0
        self.errors: list[str] = []

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> Self:
        threading.Thread(target=self._accept_loop, name="fake-socket-mode", daemon=True).start()
        if self.ping_interval:
            threading.Thread(target=self._ping_loop, name="fake-socket-ping", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            conn.drop()

    def issue_url(self) -> str:
        """A WebSocket URL with a fresh ticket (what ``apps.connections.open`` returns)."""
        ticket = secrets.token_hex(8)
        with self._lock:
            self._tickets.add(ticket)
        return f"ws://{self.host}:{self.port}/link/?ticket={ticket}&app_id=A0FAKE"

    # -- what a test does ---------------------------------------------------------------------
    @property
    def connected(self) -> int:
        """How many links are open right now."""
        with self._lock:
            return sum(c.open for c in self._connections)

    def wait_connected(self, count: int = 1, timeout: float = 5.0) -> None:
        """Until ``count`` handshakes have happened and a client is connected."""
        with self._lock:
            ok = self._lock.wait_for(
                lambda: self.handshakes >= count and any(c.open for c in self._connections),
                timeout,
            )
        if not ok:
            raise AssertionError(f"no Socket Mode connection #{count} within {timeout}s")

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Wait until ``predicate()`` (checked on every frame the server receives) holds."""
        with self._lock:
            return self._lock.wait_for(predicate, timeout)

    def send_envelope(
        self,
        type: str,
        payload: dict[str, Any],
        *,
        envelope_id: str | None = None,
        retry_attempt: int = 0,
        retry_reason: str = "",
        accepts_response_payload: bool | None = None,
    ) -> str:
        """Push an envelope to the newest link; returns its id (pass it back to redeliver).

        Slack lets the ack carry a response only for slash commands and modal interactions.
        """
        if accepts_response_payload is None:
            accepts_response_payload = type == "slash_commands" or (
                type == "interactive"
                and payload.get("type") in ("view_submission", "block_suggestion")
            )
        envelope_id = envelope_id or f"env-{next(self._ids)}-{secrets.token_hex(4)}"
        envelope = {
            "envelope_id": envelope_id,
            "type": type,
            "payload": payload,
            "accepts_response_payload": accepts_response_payload,
            "retry_attempt": retry_attempt,
            "retry_reason": retry_reason,
        }
        conn = self._newest()
        with self._lock:
            self._sent[envelope_id] = self._sent.get(envelope_id, 0) + 1
        conn.send(OP_TEXT, json.dumps(envelope).encode())
        return envelope_id

    def wait_ack(self, envelope_id: str, timeout: float = 5.0) -> dict[str, Any]:
        """The ack of the latest delivery of ``envelope_id`` (a redelivery needs its own ack)."""
        with self._lock:
            sent = self._sent.get(envelope_id, 0)
            if not self._lock.wait_for(
                lambda: len(self._acks.get(envelope_id, [])) >= sent, timeout
            ):
                raise AssertionError(f"envelope {envelope_id} was not acknowledged in {timeout}s")
            return self._acks[envelope_id][-1]

    def acks(self, envelope_id: str) -> list[dict[str, Any]]:
        """Every ack received for ``envelope_id``, oldest first."""
        with self._lock:
            return list(self._acks.get(envelope_id, []))

    def disconnect(self, reason: str = "refresh_requested", drop_after: float = 10.0) -> None:
        """Slack's "please reconnect": the link is dropped once the client has opened a new one
        (or after ``drop_after`` seconds if it never does)."""
        conn = self._newest()
        conn.retiring = True
        message = {"type": "disconnect", "reason": reason, "debug_info": {"host": "fake"}}
        conn.send(OP_TEXT, json.dumps(message).encode())
        timer = threading.Timer(drop_after, conn.drop)
        timer.daemon = True
        timer.start()

    def _newest(self, timeout: float = 5.0) -> _Connection:
        with self._lock:
            self._lock.wait_for(
                lambda: any(c.open and not c.retiring for c in self._connections), timeout
            )
            live = [c for c in self._connections if c.open and not c.retiring]
        if not live:
            raise AssertionError("no Socket Mode client is connected")
        return live[-1]

    # -- the server ---------------------------------------------------------------------------
    def _error(self, message: str) -> None:
        with self._lock:
            self.errors.append(message)
            self._lock.notify_all()

    def _accept_loop(self) -> None:
        while not self._stopped.is_set():
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _ping_loop(self) -> None:
        assert self.ping_interval
        while not self._stopped.wait(self.ping_interval):
            with self._lock:
                live = [c for c in self._connections if c.open]
            for conn in live:
                with contextlib.suppress(OSError):
                    conn.send(OP_PING, b"fake-ping")

    def _serve(self, sock: socket.socket) -> None:
        stream = sock.makefile("rb")
        conn = _Connection(sock)
        try:
            if not self._handshake(sock, stream):
                return
            with self._lock:
                retiring = [c for c in self._connections if c.retiring and c.open]
                self._connections.append(conn)
                self.handshakes += 1
                self._lock.notify_all()
            for old in retiring:  # the client has moved over: Slack drops the old link
                old.drop()
            hello = {
                "type": "hello",
                "num_connections": 1,
                "debug_info": {"host": "fake", "approximate_connection_time": 18060},
                "connection_info": {"app_id": "A0FAKE"},
            }
            conn.send(OP_TEXT, json.dumps(hello).encode())
            self._receive(conn, stream)
        except (EOFError, OSError):
            pass
        except ValueError as exc:  # a protocol violation by the client
            self._error(str(exc))
            with contextlib.suppress(OSError):
                conn.send(OP_CLOSE, struct.pack("!H", CLOSE_PROTOCOL_ERROR))
        finally:
            conn.drop()
            with self._lock:
                self._lock.notify_all()

    def _receive(self, conn: _Connection, stream: BinaryIO) -> None:
        while True:
            opcode, data = read_frame(stream, require_mask=True)
            if opcode == OP_PING:
                conn.send(OP_PONG, data)
                with self._lock:
                    self.pings_received += 1
                    self._lock.notify_all()
            elif opcode == OP_PONG:
                with self._lock:
                    self.pongs_received += 1
                    self._lock.notify_all()
            elif opcode == OP_TEXT:
                self._on_text(json.loads(data))
            elif opcode == OP_CLOSE:
                with contextlib.suppress(OSError):
                    conn.send(OP_CLOSE, data[:2])
                return
            else:
                raise ValueError(f"unexpected opcode {opcode:#x}")

    def _on_text(self, message: Any) -> None:
        envelope_id = message.get("envelope_id") if isinstance(message, dict) else None
        with self._lock:
            if envelope_id is None:
                self.errors.append(f"unexpected message from the client: {message!r}")
            elif envelope_id not in self._sent:
                self.errors.append(f"ack of an envelope never sent: {envelope_id!r}")
            else:
                self._acks.setdefault(envelope_id, []).append(message)
            self._lock.notify_all()

    def _handshake(self, sock: socket.socket, stream: BinaryIO) -> bool:
        request_line = stream.readline().decode("latin-1").split()
        headers: dict[str, str] = {}
        while True:
            line = stream.readline().decode("latin-1").strip()
            if not line:
                break
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        target = urlsplit(request_line[1] if len(request_line) == 3 else "")
        ticket = (parse_qs(target.query).get("ticket") or [""])[0]
        key = headers.get("sec-websocket-key", "")
        try:
            key_ok = len(base64.b64decode(key, validate=True)) == 16
        except binascii.Error:
            key_ok = False
        problem = None
        if request_line[:1] != ["GET"] or target.path != "/link/":
            problem = "404 Not Found"
        elif ticket not in self._tickets:  # only URLs from apps.connections.open work
            problem = "401 Unauthorized"
        elif (
            headers.get("upgrade", "").lower() != "websocket"
            or "upgrade" not in headers.get("connection", "").lower()
            or headers.get("sec-websocket-version") != "13"
            or not key_ok
        ):
            problem = "400 Bad Request"
        if problem:
            self._error(f"handshake refused ({problem}): {' '.join(request_line)}")
            sock.sendall(f"HTTP/1.1 {problem}\r\nContent-Length: 0\r\n\r\n".encode())
            return False
        sock.sendall(
            (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept_key(key)}\r\n\r\n"
            ).encode()
        )
        return True
