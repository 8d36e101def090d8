"""Slack's Socket Mode server side: an RFC 6455 WebSocket that pushes envelopes and takes acks.

``apps.connections.open`` on :class:`tests.fakes.slack.FakeSlack` hands out this server's
``ws://`` URL (slack_sdk's builtin client uses a plain socket when the port is not 443). Like
Slack it says ``hello`` first, sends envelopes as text frames, expects ``{"envelope_id": ...}``
acks, answers pings, and can ask the client to reconnect with a ``disconnect`` message.
Standard library only.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import itertools
import json
import socket
import struct
import threading
import time
from typing import Any, Self

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_TEXT, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x8, 0x9, 0xA


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
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        return head + mask + payload
    return head + payload


def read_frame(stream: Any) -> tuple[int, bytes]:
    """(opcode, unmasked payload) of the next frame; raises EOFError when the peer is gone."""

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
    mask = exact(4) if b2 & 0x80 else None
    payload = exact(size)
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return b1 & 0x0F, payload


class _Connection:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.lock = threading.Lock()
        self.open = True

    def send(self, opcode: int, payload: bytes) -> None:
        with self.lock:
            self.sock.sendall(encode_frame(opcode, payload))


class SocketModeServer:
    """Accepts Socket Mode connections and records what clients send back."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._listener = socket.create_server((host, 0))
        self.host = host
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Condition()
        self._connections: list[_Connection] = []
        self._acks: dict[str, list[dict[str, Any]]] = {}
        self._sent: dict[str, int] = {}
        self._ids = itertools.count(1)
        self.handshakes = 0
        self.pings = 0
        self._threads: list[threading.Thread] = []
        self._stopped = False

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}/link/?ticket=fake-ticket&app_id=A0FAKE"

    def start(self) -> Self:
        thread = threading.Thread(target=self._accept_loop, name="fake-socket-mode", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stopped = True
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.sock.close()

    # -- what a test does ---------------------------------------------------------------------
    def wait_connected(self, count: int = 1, timeout: float = 10.0) -> None:
        """Until ``count`` handshakes have happened and a client is connected."""
        with self._lock:
            ok = self._lock.wait_for(
                lambda: self.handshakes >= count and any(c.open for c in self._connections),
                timeout,
            )
        if not ok:
            raise AssertionError(f"no Socket Mode connection #{count} within {timeout}s")

    def send_envelope(
        self,
        type: str,
        payload: dict[str, Any],
        *,
        envelope_id: str | None = None,
        retry_attempt: int = 0,
        retry_reason: str = "",
    ) -> str:
        """Push an envelope to the newest connection; returns its id (reuse it to redeliver)."""
        envelope_id = envelope_id or f"env-{next(self._ids)}"
        envelope = {
            "envelope_id": envelope_id,
            "type": type,
            "payload": payload,
            "accepts_response_payload": type != "events_api",
            "retry_attempt": retry_attempt,
            "retry_reason": retry_reason,
        }
        with self._lock:
            self._sent[envelope_id] = self._sent.get(envelope_id, 0) + 1
        self._newest().send(OP_TEXT, json.dumps(envelope).encode())
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

    def disconnect(self, reason: str = "refresh_requested") -> None:
        """Slack's "please reconnect" message (it closes the link a few seconds later)."""
        self._newest().send(OP_TEXT, json.dumps({"type": "disconnect", "reason": reason}).encode())

    def _newest(self) -> _Connection:
        deadline = time.monotonic() + 5
        while True:
            with self._lock:
                live = [c for c in self._connections if c.open]
            if live:
                return live[-1]
            if time.monotonic() > deadline:
                raise AssertionError("no Socket Mode client is connected")
            time.sleep(0.02)

    # -- the server ---------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        while not self._stopped:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            thread.start()

    def _serve(self, sock: socket.socket) -> None:
        stream = sock.makefile("rb")
        conn = _Connection(sock)
        try:
            if not self._handshake(sock, stream):
                return
            with self._lock:
                self._connections.append(conn)
                self.handshakes += 1
                self._lock.notify_all()
            hello = {
                "type": "hello",
                "num_connections": 1,
                "debug_info": {"host": "fake", "approximate_connection_time": 3600},
                "connection_info": {"app_id": "A0FAKE"},
            }
            conn.send(OP_TEXT, json.dumps(hello).encode())
            while True:
                opcode, data = read_frame(stream)
                if opcode == OP_PING:
                    self.pings += 1
                    conn.send(OP_PONG, data)
                elif opcode == OP_TEXT:
                    message = json.loads(data)
                    if "envelope_id" in message:
                        with self._lock:
                            self._acks.setdefault(message["envelope_id"], []).append(message)
                            self._lock.notify_all()
                elif opcode == OP_CLOSE:
                    with contextlib.suppress(OSError):
                        conn.send(OP_CLOSE, data[:2])
                    return
        except (EOFError, OSError, ValueError):
            return
        finally:
            conn.open = False
            with contextlib.suppress(OSError):
                sock.close()

    @staticmethod
    def _handshake(sock: socket.socket, stream: Any) -> bool:
        request_line = stream.readline().decode("latin-1")
        headers: dict[str, str] = {}
        while True:
            line = stream.readline().decode("latin-1").strip()
            if not line:
                break
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        key = headers.get("sec-websocket-key")
        if (
            not request_line.startswith("GET /link/")
            or headers.get("upgrade", "").lower() != "websocket"
            or not key
        ):
            sock.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            return False
        sock.sendall(
            (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept_key(key)}\r\n\r\n"
            ).encode()
        )
        return True
