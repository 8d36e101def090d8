"""One shape for every error the API answers, and the HTTP status each outcome gets.

``{"ok": false, "text": "<one line>", "data": {"error": "<one line>", "code": "<code>"}}``:
the same envelope as a failed command, so a client reads every answer the same way.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

STATUS: dict[str, int] = {
    "ok": 200,
    "usage": 400,
    "unauthorized": 401,
    "denied": 403,
    "unknown": 404,
    "not_found": 404,
    "method_not_allowed": 405,
    "conflict": 409,
    "too_large": 413,
    "invalid": 422,
    "invalid_request": 422,
    "error": 422,
    "rate_limited": 429,
    "crash": 500,
    "not_built": 501,
    "upstream": 502,
}
"""Outcome or error code -> HTTP status. ``error`` is a command that failed for a reason of its
own (an approval whose change could not be queued, a proposal refused at once)."""


class ApiError(Exception):
    """Raised inside a route: answered as the error envelope with ``code``'s status."""

    def __init__(self, code: str, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.headers = headers or {}


def json_response(
    payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """JSON as ``modelarium cmd --json`` writes it (``default=str`` for dates and the like)."""
    body = json.dumps(payload, default=str, ensure_ascii=False)
    return Response(body, status_code=status, headers=headers, media_type="application/json")


def error_payload(code: str, message: str, **data: Any) -> dict[str, Any]:
    return {"ok": False, "text": f"⚠️ {message}", "data": {"error": message, "code": code, **data}}


def error_response(
    code: str, message: str, *, headers: dict[str, str] | None = None, status: int | None = None
) -> Response:
    return json_response(error_payload(code, message), status or STATUS[code], headers)
