"""The Socket Mode fake speaks RFC 6455 as a raw client sees it."""

from __future__ import annotations

import base64
import json
import os
import socket

from tests.fakes.slack_socket import (
    OP_PING,
    OP_PONG,
    OP_TEXT,
    SocketModeServer,
    accept_key,
    encode_frame,
    read_frame,
)


def test_accept_key_is_the_rfc_6455_example() -> None:
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_masked_frames_of_every_length_class_read_back() -> None:
    for size in (0, 125, 126, 70_000):
        payload = os.urandom(size)
        frame = encode_frame(OP_TEXT, payload, mask=b"\x01\x02\x03\x04")
        assert frame[1] & 0x80, "client frames carry the mask bit"
        reader = socket.socketpair()
        reader[0].sendall(frame)
        reader[0].close()
        assert read_frame(reader[1].makefile("rb")) == (OP_TEXT, payload)
        reader[1].close()


def test_handshake_hello_ping_and_ack() -> None:
    server = SocketModeServer().start()
    try:
        key = base64.b64encode(os.urandom(16)).decode()
        sock = socket.create_connection((server.host, server.port), timeout=5)
        sock.sendall(
            f"GET /link/?ticket=t HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        stream = sock.makefile("rb")
        assert stream.readline().startswith(b"HTTP/1.1 101")
        headers = {}
        while (line := stream.readline().strip()) != b"":
            name, _, value = line.decode().partition(":")
            headers[name.lower()] = value.strip()
        assert headers["sec-websocket-accept"] == accept_key(key)
        opcode, hello = read_frame(stream)
        assert opcode == OP_TEXT and json.loads(hello)["type"] == "hello"

        sock.sendall(encode_frame(OP_PING, b"s1:123.0", mask=os.urandom(4)))
        assert read_frame(stream) == (OP_PONG, b"s1:123.0")

        envelope = server.send_envelope("slash_commands", {"command": "/model"})
        opcode, pushed = read_frame(stream)
        assert json.loads(pushed)["envelope_id"] == envelope
        ack = json.dumps({"envelope_id": envelope}).encode()
        sock.sendall(encode_frame(OP_TEXT, ack, mask=os.urandom(4)))
        assert server.wait_ack(envelope) == {"envelope_id": envelope}
        sock.close()
    finally:
        server.stop()


def test_a_non_websocket_request_is_refused() -> None:
    server = SocketModeServer().start()
    try:
        sock = socket.create_connection((server.host, server.port), timeout=5)
        sock.sendall(b"GET /link/ HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.makefile("rb").readline().startswith(b"HTTP/1.1 400")
        sock.close()
    finally:
        server.stop()
