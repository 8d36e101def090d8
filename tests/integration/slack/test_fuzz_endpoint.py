"""Fuzzing ``POST /slack/events``: random bodies, headers and signatures, never a 500.

Hypothesis sends what an attacker (unsigned) or a confused Slack (signed, but odd) could send to
the running bot: random bytes, form fields and JSON, ``payload=`` documents shaped like Slack's
and not, content types, timestamps (stale, future, superscript digits, garbage) and signatures
(right, wrong, empty, missing). Every answer must be a 2xx/4xx without a traceback, and the bot
must still answer a genuine command afterwards.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.slack.conftest import ADMIN_A, Harness

LATIN1 = st.characters(max_codepoint=255, blacklist_categories=("Cc",))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
slack_keys = st.sampled_from(
    ["type", "command", "text", "user_id", "user", "team_id", "channel_id", "response_url",
     "trigger_id", "actions", "view", "event", "payload", "token", "api_app_id", "challenge",
     "ssl_check", "container", "message", "state", "callback_id", "private_metadata"]
)  # fmt: skip
slackish = st.dictionaries(slack_keys, json_values, max_size=8)
interaction_types = st.sampled_from(
    ["block_actions", "view_submission", "view_closed", "shortcut", "message_action", "x", ""]
)


@st.composite
def bodies(draw: Any) -> tuple[bytes, str]:
    kind = draw(st.sampled_from(["bytes", "form", "json", "payload", "command", "event"]))
    if kind == "bytes":
        return draw(st.binary(max_size=2000)), draw(content_types)
    if kind == "form":
        fields = draw(st.dictionaries(st.text(max_size=12), st.text(max_size=40), max_size=6))
        return urlencode(fields).encode(), "application/x-www-form-urlencoded"
    if kind == "json":
        return json.dumps(draw(json_values)).encode(), "application/json"
    if kind == "payload":
        document = draw(slackish)
        if draw(st.booleans()):
            document["type"] = draw(interaction_types)
        raw = json.dumps(document) if draw(st.booleans()) else draw(st.text(max_size=60))
        return urlencode({"payload": raw}).encode(), "application/x-www-form-urlencoded"
    if kind == "command":
        fields = {
            "command": draw(st.sampled_from(["/model", "/other", "", "model"])),
            "text": draw(st.text(max_size=80)),
            "user_id": draw(st.sampled_from([ADMIN_A, "", "U0NOBODY", "<!channel>"])),
            "channel_id": draw(st.sampled_from(["C0GENERAL", "", "D1"])),
            "response_url": draw(st.sampled_from(["", "http://127.0.0.1:9/x", "not a url"])),
            "trigger_id": draw(st.text(max_size=10)),
            "team_id": "T0",
        }
        return urlencode(fields).encode(), "application/x-www-form-urlencoded"
    event = {"type": draw(st.sampled_from(["event_callback", "url_verification", "x"]))}
    event["event"] = draw(slackish)
    event["challenge"] = draw(json_values)
    event["event_id"] = draw(st.text(max_size=10))
    return json.dumps(event).encode(), "application/json"


content_types = st.sampled_from(
    [
        "application/x-www-form-urlencoded",
        "application/json",
        "text/plain",
        "multipart/form-data; boundary=x",
        "application/json; charset=utf-16",
        "",
    ]
)
timestamps = st.one_of(
    st.just("now"),
    st.sampled_from(["", " ", "0", "-1", "¹²³", "12³", "1e9", "99999999999999999999", "now-400"]),
    st.text(alphabet=LATIN1, max_size=12),
)
signatures = st.sampled_from(["right", "wrong", "empty", "missing", "garbage"])


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=bodies(), timestamp=timestamps, signature=signatures, ctype=content_types)
def test_no_request_gets_a_500(
    slack: Harness, body: tuple[bytes, str], timestamp: str, signature: str, ctype: str
) -> None:
    raw, natural = body
    now = int(time.time())
    ts = {"now": str(now), "now-400": str(now - 400)}.get(timestamp, timestamp).strip()
    headers = {"Content-Type": natural if signature == "right" else ctype}
    headers["X-Slack-Request-Timestamp"] = ts
    if signature == "right":
        headers["X-Slack-Signature"] = slack.signer.signature(ts, raw)
    elif signature == "wrong":
        headers["X-Slack-Signature"] = slack.signer.signature(str(now), raw + b"x")
    elif signature == "empty":
        headers["X-Slack-Signature"] = ""
    elif signature == "garbage":
        headers["X-Slack-Signature"] = "v0=" + "z" * 64
    if signature == "missing":
        headers.pop("X-Slack-Signature", None)
    encoded = {name: value.encode("latin-1") for name, value in headers.items()}  # as sent
    response = httpx.post(slack.url, content=raw, headers=encoded, timeout=10)
    assert response.status_code < 500, (raw[:300], headers, response.text[:300])
    assert "Traceback" not in response.text


def test_the_bot_still_answers_after_the_fuzzing(slack: Harness) -> None:
    """A separate check that the fuzzing harness talks to a live bot at all."""
    for raw in (b"\xff\xfe\x00", b"payload=%7B", b"payload=null", b'{"type": 1}'):
        assert httpx.post(slack.url, content=raw, timeout=10).status_code < 500
    reply = slack.command("whoami")
    assert reply.status == 200


@pytest.fixture(autouse=True)
def _drain(slack: Harness):
    yield
    slack.drain()
