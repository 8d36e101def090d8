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


def _fail_with_secrets_in_locals() -> None:
    password = "hunter2-plain-words"  # noqa: F841  (a local a rich traceback would print)
    key = "sk-" + "s" * 24  # noqa: F841
    raise RuntimeError("could not connect with sk-" + "s" * 24)


def test_console_tracebacks_show_no_locals_and_are_redacted():
    """On a terminal the console renderer drew rich tracebacks with every frame's locals, after
    redaction had run: a password in a local variable reached the log."""
    stream = io.StringIO()
    configure_logging("info", "console", stream=stream)
    try:
        _fail_with_secrets_in_locals()
    except RuntimeError:
        get_logger("t").exception("connect.failed")
    out = stream.getvalue()
    assert "connect.failed" in out and "RuntimeError" in out
    assert "_fail_with_secrets_in_locals" in out  # the traceback itself is still there
    assert "hunter2-plain-words" not in out
    assert "s" * 24 not in out


# -- hostile input: redaction must stay linear and bounded (issue 13, item 1) ----------------

_ADVERSARIAL = {
    # Each of these took minutes with the old URL-password expression (quadratic in length).
    "letters": "a" * 200_000,
    "slack-prefixes": "xoxb-" * 40_000,
    "openai-prefixes": "sk-" * 70_000,
    "schemes": "a://b:" * 35_000,
    "double-slash": "a://" * 50_000,
    "open-quotes": '--token "x ' * 20_000,
    "bearer-spaces": "token" + " " * 200_000,
    "form-body": "token=abc&text=" + "b" * 200_000,
}


def test_redaction_stays_fast_on_adversarial_text():
    """A generous bound: linear redaction does each of these in milliseconds."""
    import time

    from modelarium.bot.dispatch import redact_command

    for name, text in _ADVERSARIAL.items():
        started = time.perf_counter()
        redact_text(text)
        redact_command(text)
        redact({"body": text})
        elapsed = time.perf_counter() - started
        assert elapsed < 2.0, f"{name}: {elapsed:.1f} s"


def test_long_values_are_truncated_before_redaction():
    from modelarium.core.logging import MAX_LOGGED_CHARS

    out = redact({"body": "word " * 100_000})["body"]
    assert len(out) < MAX_LOGGED_CHARS + 100
    assert out.endswith("more characters]")
    # A secret cut by the truncation is dropped whole, not half shown.
    filler = "x " * ((MAX_LOGGED_CHARS - 20) // 2)
    text = filler + "postgresql://app:hunter2hunter2@db/x " + "y " * 1000
    out = redact_text(text)
    assert "hunter" not in out
