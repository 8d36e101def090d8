"""The Socket Mode fake speaks RFC 6455 as a raw client sees it, and refuses what Slack would."""

from __future__ import annotations

import base64
import io
import json
import os
import socket
import struct
from collections.abc import Iterator
from typing import BinaryIO
from urllib.parse import urlsplit

import pytest

from tests.fakes.slack_socket import (
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    SocketModeServer,
    accept_key,
    encode_frame,
    read_frame,
)


@pytest.fixture
def server() -> Iterator[SocketModeServer]:
    server = SocketModeServer(ping_interval=None).start()
    yield server
    server.stop()


Opened = tuple[socket.socket, BinaryIO, bytes, dict[str, str]]


def _open(url: str, key: str | None = None) -> Opened:
    """A raw client handshake: (socket, reader, status line, response headers)."""
    parts = urlsplit(url)
    key = key or base64.b64encode(os.urandom(16)).decode()
    sock = socket.create_connection((parts.hostname, parts.port), timeout=5)
    sock.sendall(
        f"GET {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.hostname}\r\n"
        f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    stream = sock.makefile("rb")
    status = stream.readline()
    headers = {}
    while (line := stream.readline().strip()) != b"":
        name, _, value = line.decode().partition(":")
        headers[name.lower()] = value.strip()
    return sock, stream, status, headers


def _send(sock: socket.socket, opcode: int, payload: bytes) -> None:
    sock.sendall(encode_frame(opcode, payload, mask=os.urandom(4)))


def test_accept_key_is_the_rfc_6455_example() -> None:
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_masked_frames_of_every_length_class_read_back() -> None:
    for size in (0, 125, 126, 70_000):
        payload = os.urandom(size)
        frame = encode_frame(OP_TEXT, payload, mask=b"\x01\x02\x03\x04")
        assert frame[1] & 0x80, "client frames carry the mask bit"
        assert payload == b"" or frame[-size:] != payload, "and the payload is masked"
        assert read_frame(io.BytesIO(frame), require_mask=True) == (OP_TEXT, payload)
    with pytest.raises(ValueError, match="unmasked"):
        read_frame(io.BytesIO(encode_frame(OP_TEXT, b"{}")), require_mask=True)


def test_handshake_hello_ping_ack_and_close(server: SocketModeServer) -> None:
    key = base64.b64encode(os.urandom(16)).decode()
    sock, stream, status, headers = _open(server.issue_url(), key)
    assert status.startswith(b"HTTP/1.1 101")
    assert headers["sec-websocket-accept"] == accept_key(key)
    opcode, hello = read_frame(stream)
    assert opcode == OP_TEXT and json.loads(hello)["type"] == "hello"

    _send(sock, OP_PING, b"s1:123.0")
    assert read_frame(stream) == (OP_PONG, b"s1:123.0")

    envelope = server.send_envelope("slash_commands", {"command": "/model"})
    pushed = json.loads(read_frame(stream)[1])
    assert pushed["envelope_id"] == envelope and pushed["accepts_response_payload"] is True
    _send(sock, OP_TEXT, json.dumps({"envelope_id": envelope}).encode())
    assert server.wait_ack(envelope) == {"envelope_id": envelope}

    _send(sock, OP_CLOSE, struct.pack("!H", 1000))
    assert read_frame(stream) == (OP_CLOSE, struct.pack("!H", 1000))
    assert server.wait_for(lambda: server.connected == 0)
    sock.close()
    assert server.errors == []


def test_an_unmasked_client_frame_is_a_protocol_error(server: SocketModeServer) -> None:
    sock, stream, _, _ = _open(server.issue_url())
    read_frame(stream)  # hello
    sock.sendall(encode_frame(OP_TEXT, b'{"envelope_id": "x"}'))  # no mask
    assert read_frame(stream) == (OP_CLOSE, struct.pack("!H", 1002))
    assert server.errors == ["unmasked client frame"]
    sock.close()


def test_only_issued_tickets_and_real_upgrades_connect(server: SocketModeServer) -> None:
    url = server.issue_url()
    forged = url.split("?")[0] + "?ticket=forged"
    assert _open(forged)[2].startswith(b"HTTP/1.1 401")
    plain = socket.create_connection((server.host, server.port), timeout=5)
    plain.sendall(f"GET {urlsplit(url).path}?{urlsplit(url).query} HTTP/1.1\r\n\r\n".encode())
    assert plain.makefile("rb").readline().startswith(b"HTTP/1.1 400")
    plain.close()
    assert len(server.errors) == 2 and server.handshakes == 0


def test_disconnect_drops_the_old_link_once_the_client_reconnects(
    server: SocketModeServer,
) -> None:
    old, old_stream, _, _ = _open(server.issue_url())
    read_frame(old_stream)  # hello
    server.disconnect("refresh_requested")
    assert json.loads(read_frame(old_stream)[1]) == {
        "type": "disconnect",
        "reason": "refresh_requested",
        "debug_info": {"host": "fake"},
    }
    new, new_stream, _, _ = _open(server.issue_url())
    read_frame(new_stream)  # hello
    with pytest.raises(EOFError):
        read_frame(old_stream)
    envelope = server.send_envelope("events_api", {"event": {}})
    assert json.loads(read_frame(new_stream)[1])["envelope_id"] == envelope
    old.close()
    new.close()
