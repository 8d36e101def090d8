"""Hostile requests to ``POST /slack/events``: oversized, slow to redact, malformed (issue 13).

Nobody needs a signature to send these, so none of them may cost the bot more than a quick
refusal, and none may delay the acks of the signed commands arriving at the same time.
"""

from __future__ import annotations

import io
import json
import logging
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import structlog

from modelarium.core.logging import configure_logging
from tests.integration.slack.conftest import ADMIN_A, ADMIN_B, CHANNEL, Harness, shown


@pytest.fixture
def production_logging() -> Iterator[io.StringIO]:
    """Logging as `modelarium bot` configures it (INFO, JSON, redaction), into a buffer."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    stream = io.StringIO()
    configure_logging("info", "json", stream=stream)
    yield stream
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


def _refused(reason: str) -> float:
    from prometheus_client import REGISTRY

    value = REGISTRY.get_sample_value("modelarium_slack_refused_total", {"reason": reason})
    return value or 0.0


def _raw_exchange(url: str, head: bytes, body_chunks: Iterator[bytes], timeout: float) -> bytes:
    """Send ``head`` and then body chunks from a thread; return what the server answers first."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=timeout)

    def send() -> None:
        try:
            for chunk in body_chunks:
                sock.sendall(chunk)
        except OSError:
            pass  # the server refused and closed: what we expect

    try:
        sock.sendall(head)
        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        answer = b""
        while b"\r\n\r\n" not in answer:
            data = sock.recv(65536)
            if not data:
                break
            answer += data
        return answer
    finally:
        sock.close()


def _head(url: str, extra: str) -> bytes:
    path = urlsplit(url).path
    return (
        f"POST {path} HTTP/1.1\r\nHost: slack\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"X-Slack-Request-Timestamp: {int(time.time())}\r\nX-Slack-Signature: v0={'0' * 64}\r\n"
        f"{extra}\r\n"
    ).encode()


def test_oversized_body_is_refused_with_413_before_it_is_read(slack: Harness) -> None:
    """A declared 100 MB body gets its 413 at once: the server does not wait for the bytes."""
    started = time.monotonic()
    answer = _raw_exchange(
        slack.url,
        _head(slack.url, "Content-Length: 104857600\r\n"),
        iter([b"a" * 1024]),
        timeout=5,
    )
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert time.monotonic() - started < 5
    assert slack.command("whoami").status == 200  # the bot still answers


def test_chunked_body_over_the_limit_is_refused_while_streaming(slack: Harness) -> None:
    """Without a Content-Length, reading stops as soon as the limit is passed."""
    limit = slack.core.settings.slack_max_body
    chunk = b"a" * 65536
    total = 4 * limit

    def chunks() -> Iterator[bytes]:
        for _ in range(total // len(chunk)):
            yield f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        # never the final 0-length chunk: a server that waits for it hangs

    answer = _raw_exchange(
        slack.url, _head(slack.url, "Transfer-Encoding: chunked\r\n"), chunks(), timeout=5
    )
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def test_unsigned_body_is_refused_quickly_and_signed_commands_keep_their_ack(
    production_logging: io.StringIO, slack: Harness
) -> None:
    """The refused body is logged (redacted, truncated): that must stay cheap."""
    body = b"token=x&text=" + b"a" * 40_000  # 40 KB, no signature
    results: dict[str, float] = {}
    refused = _refused("unsigned")

    def attack() -> None:
        started = time.monotonic()
        request = urllib.request.Request(slack.url, data=body, method="POST")
        try:
            urllib.request.urlopen(request, timeout=20)
            status = 200
        except urllib.error.HTTPError as err:
            status = err.code
        results["attack"] = time.monotonic() - started
        results["status"] = status

    thread = threading.Thread(target=attack)
    thread.start()
    time.sleep(0.05)
    started = time.monotonic()
    cmd = slack.fake.slash_command("/model", "whoami", user_id=ADMIN_A)
    reply = slack.signer.post(slack.url, cmd, timeout=20)
    results["ack"] = time.monotonic() - started
    thread.join(30)
    assert reply.status == 200 and results["status"] == 401
    assert results["attack"] < 3.0, results
    assert results["ack"] < 3.0, results  # Slack gives up after 3 s
    assert _refused("unsigned") == refused + 1  # before bolt parses (and logs) the body
    logged = production_logging.getvalue()
    assert "aaaaaaaaaa" not in logged
    assert max(len(line) for line in logged.splitlines()) < 20_000


@pytest.mark.parametrize("timestamp", ["¹²³", "²³", " ¹ ", "12³", "1700000000²"])
def test_timestamp_of_non_ascii_digits_is_401(slack: Harness, timestamp: str) -> None:
    """``"¹²³".isdigit()`` is true but ``int("¹²³")`` fails: bolt answered 500 with a traceback."""
    cmd = slack.fake.slash_command("/model", "whoami", user_id=ADMIN_A)
    reply = slack.signer.post(slack.url, cmd, timestamp=timestamp)
    assert reply.status == 401
    assert b"Traceback" not in reply.body
    assert slack.command("whoami").status == 200


def test_a_typed_note_cannot_notify_the_whole_channel(slack: Harness) -> None:
    """Slack sends a typed @channel as ``<!channel>``; the card quoting the note must not."""
    slack.command("role grant <@U0BOB|bob> admin", user=ADMIN_A)
    slack.deliver()
    note = "<!channel> <!here> <!everyone> <!subteam^S0ONCALL|@oncall> look"
    reply = slack.command(f"reject 1 --note '{note}'", user=ADMIN_B)
    assert reply.status == 200
    slack.deliver()
    posted = [*slack.fake.messages(CHANNEL), *slack.fake.responses()]
    assert any("look" in shown(item) for item in posted)
    for item in posted:
        raw = json.dumps({"text": item.text, "blocks": item.blocks})
        assert "<!" not in raw, raw
