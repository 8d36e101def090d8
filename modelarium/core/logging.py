"""Structured logging with secrets redacted wherever they appear.

JSON lines when stderr is not a terminal (production, CI), a readable console rendering when it
is. Redaction runs last before rendering so no processor or caller can leak a token by accident.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from typing import Any

import structlog

REDACTED = "[REDACTED]"
MAX_LOGGED_CHARS = 8192
"""Strings longer than this are cut (at a word boundary) before they are redacted or logged."""
MAX_DEPTH = 32
"""Nested values deeper than this are not walked (hostile JSON must not cost a RecursionError)."""

# Every expression below runs on text an attacker controls (request bodies, command text), so
# each must be linear in the length of that text: a literal prefix, then possessive quantifiers
# (``++``, ``{n,}+``) that never give characters back, so no input makes the engine backtrack.

# Token shapes of the systems we talk to. Kept deliberately broad: a false positive costs a
# redacted log line; a false negative leaks a credential.
_TOKEN_PATTERNS = [
    r"xox[abposre]-[A-Za-z0-9-]{8,}+",  # Slack bot/user/app/config tokens
    r"xapp-\d-[A-Za-z0-9-]{8,}+",  # Slack app-level tokens
    r"xoxe(?:\.xox[bp])?-\d-[A-Za-z0-9-]{8,}+",  # Slack rotating tokens
    r"hf_[A-Za-z0-9]{20,}+",  # Hugging Face
    r"gh[pousr]_[A-Za-z0-9]{20,}+",  # GitHub classic
    r"github_pat_[A-Za-z0-9_]{20,}+",  # GitHub fine-grained
    r"sk-[A-Za-z0-9_-]{16,}+",  # OpenAI-style API keys
    r"gAAAAA[A-Za-z0-9_=-]{20,}+",  # Fernet tokens (encrypted secrets)
    r"mdl_[a-z0-9]{8}_[A-Za-z0-9_-]{8,}+",  # Modelarium API tokens
]
_TOKEN_RE = re.compile("|".join(f"(?:{p})" for p in _TOKEN_PATTERNS))
_BEARER_RE = re.compile(r"(?i)\b(bearer|basic|token)\s++[A-Za-z0-9._~+/=-]{8,}+")
# ``scheme://`` and then the rest of the word: the credentials, if any, end at its last ``@``
# (a password may itself contain ``@`` or ``/``; the URL parsers read it the same way).
_URL_AUTHORITY_RE = re.compile(r"://(\S++)")
_QUERY_SECRET_RE = re.compile(
    r"(?i)(?<![\w-])((?:password|passwd|pwd|secret|client[_-]?secret|token|access[_-]?token|"
    r"api[_-]?key|sslpassword)=)[^&\s#]++"
)
_SECRET_KEYS = re.compile(
    r"(?i)(^|_|-)(token|secret|password|passwd|api[_-]?key|authorization|signing|credential|cookie)s?($|_|-)"
)


def _url_credentials(match: re.Match[str]) -> str:
    rest = match.group(1)
    userinfo, at, host = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return match.group(0)
    user = userinfo.split(":", 1)[0]
    return f"://{user}:{REDACTED}@{host}"


def truncate(text: str, limit: int = MAX_LOGGED_CHARS) -> str:
    """``text`` cut to about ``limit`` characters at a whitespace, with a note of what was cut.

    The last, possibly cut word is dropped too: half a token or a URL cut before its ``@`` would
    no longer match its redaction pattern, and half a secret is still a leak.
    """
    if len(text) <= limit:
        return text
    head = text[:limit]
    cut = max(head.rfind(separator) for separator in " \t\r\n")
    head = head[: cut + 1] if cut >= 0 else ""
    return f"{head}…[{len(text) - len(head)} more characters]"


def redact_text(text: str, limit: int | None = MAX_LOGGED_CHARS) -> str:
    """Mask token shapes, bearer credentials and URL passwords inside free text.

    Long text is truncated first (``limit``; ``None`` keeps it whole), so the cost is bounded.
    """
    if limit is not None:
        text = truncate(text, limit)
    text = _TOKEN_RE.sub(REDACTED, text)
    text = _BEARER_RE.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    text = _URL_AUTHORITY_RE.sub(_url_credentials, text)
    return _QUERY_SECRET_RE.sub(lambda m: f"{m.group(1)}{REDACTED}", text)


def redact(value: Any, key: str | None = None, _depth: int = 0) -> Any:
    """Recursively redact a log value; keys that name a secret hide their whole value."""
    if key is not None and _SECRET_KEYS.search(key[:200]) and value not in (None, "", False):
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if _depth >= MAX_DEPTH and isinstance(value, Mapping | list | tuple):
        return "[nested too deep]"
    if isinstance(value, Mapping):
        return {k: redact(v, str(k), _depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        if isinstance(value, set):
            return value
        return type(value)(redact(v, None, _depth + 1) for v in value)
    if hasattr(value, "get_secret_value"):
        return REDACTED
    return value


def redact_processor(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    return {
        key: redact(value, key if key != "event" else None) for key, value in event_dict.items()
    }


def configure_logging(level: str = "info", fmt: str = "auto", stream: Any = None) -> None:
    """Configure structlog and route stdlib logging (bolt, uvicorn, alembic) through it."""
    stream = stream or sys.stderr
    use_json = fmt == "json" or (fmt == "auto" and not getattr(stream, "isatty", lambda: False)())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        # Tracebacks become text *before* redaction, on a terminal too: the console renderer's
        # own (rich) tracebacks print every frame's locals after redaction has run.
        structlog.processors.format_exc_info,
        redact_processor,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("httpx", "httpcore", "urllib3", "kubernetes", "apscheduler.executors"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    return structlog.stdlib.get_logger(name)
