"""Signed webhook deliveries.

Receivers verify a delivery like this (the same scheme as Slack's request signing)::

    body = raw request body (bytes)
    ts = headers["X-Modelarium-Timestamp"]            # unix seconds
    expected = "v1=" + hmac_sha256(secret, f"{ts}.".encode() + body).hexdigest()
    ok = hmac.compare_digest(expected, headers["X-Modelarium-Signature"])
         and abs(time.time() - int(ts)) <= 300
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import httpx

SIGNATURE_HEADER = "X-Modelarium-Signature"
TIMESTAMP_HEADER = "X-Modelarium-Timestamp"
EVENT_HEADER = "X-Modelarium-Event"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verify(
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    *,
    tolerance: int = 300,
    now: float | None = None,
) -> bool:
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs((now if now is not None else time.time()) - ts) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, ts, body), signature)


async def post_signed(
    client: httpx.AsyncClient, url: str, secret: str, event: dict[str, Any], delivery_id: int
) -> int:
    """POST the signed event; the receiver's status code. Only the status line and headers are
    read: nothing in a receiver's body matters, and a body may be slow to come."""
    body = json.dumps(event, sort_keys=True, separators=(",", ":")).encode()
    ts = int(time.time())
    headers = {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: str(ts),
        SIGNATURE_HEADER: sign(secret, ts, body),
        EVENT_HEADER: str(event.get("kind", "notice")),
        "X-Modelarium-Delivery": str(delivery_id),
        "User-Agent": "modelarium-webhooks/1",
    }
    async with client.stream("POST", url, content=body, headers=headers) as response:
        return response.status_code
