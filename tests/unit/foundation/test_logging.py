"""Secrets never reach log output, whatever key or text they hide in."""

from __future__ import annotations

import io
import json

from modelarium.core.logging import configure_logging, get_logger, redact, redact_text


def test_token_shapes_are_redacted_in_free_text():
    text = (
        "slack xoxb-1234567890-abcdefghij hf hf_abcdefghijklmnopqrstuvwxyz12 "
        "gh ghp_abcdefghijklmnopqrstuvwxyz0123 key sk-abcdefghijklmnop1234 "
        "url postgresql://app:hunter2@db/x auth Bearer abc.def.ghi12345"
    )
    out = redact_text(text)
    for secret in (
        "xoxb-1234567890",
        "hf_abcdef",
        "ghp_abcdef",
        "sk-abcdef",
        "hunter2",
        "abc.def.ghi12345",
    ):
        assert secret not in out
    assert out.count("[REDACTED]") == 6


def test_secret_keys_hide_whole_values_recursively():
    event = {
        "headers": {"Authorization": "whatever", "X-Other": "fine"},
        "api_key": "plain",
        "nested": [{"token": "t"}],
        "count": 3,
    }
    out = redact(event)
    assert out["headers"]["Authorization"] == "[REDACTED]"
    assert out["headers"]["X-Other"] == "fine"
    assert out["api_key"] == "[REDACTED]"
    assert out["nested"][0]["token"] == "[REDACTED]"
    assert out["count"] == 3


def test_structlog_json_output_is_redacted():
    stream = io.StringIO()
    configure_logging("info", "json", stream=stream)
    get_logger("t").info("calling slack", token="xoxb-999-secret", note="key hf_" + "a" * 30)
    line = json.loads(stream.getvalue().strip().splitlines()[-1])
    assert line["event"] == "calling slack"
    assert line["token"] == "[REDACTED]"
    assert "hf_aaaa" not in line["note"]
