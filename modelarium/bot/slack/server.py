"""The Slack front as a process component: ``POST /slack/events`` (or Socket Mode) and the outbox.

HTTP mode contributes the ``POST /slack/events`` route to the shared Starlette app that
``modelarium.entrypoints.web`` serves. Bolt is synchronous, so each
request is dispatched in a worker thread (the event loop only reads bodies and writes answers);
bolt verifies the signature (401 for forged, tampered or stale requests) before any listener
runs. With ``SLACK_APP_TOKEN`` set, Socket Mode receives the same requests over a websocket and
the port still answers /healthz and /metrics.

In the same process a thread delivers the outbox (approval cards, job progress, alerts) through
:class:`~modelarium.bot.slack.sender.SlackSender`, editing messages in place.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import re
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import anyio
import anyio.to_thread
from slack_bolt import App, BoltRequest, BoltResponse
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from modelarium.bot.slack.app import AckPriority, SlackFront
from modelarium.bot.slack.sender import SlackSender
from modelarium.core import safejson
from modelarium.core.app import Core
from modelarium.core.logging import get_logger
from modelarium.core.metrics import ACK_LATENCY, SLACK_REFUSED

log = get_logger(__name__)

EVENTS_PATH = "/slack/events"
DISPATCH_THREADS = 64
"""Concurrent bolt dispatches; each only verifies, acks and queues, so they are short."""
_TIMESTAMP = re.compile(r"\s*[0-9]{1,15}\s*", re.ASCII)
"""Unix seconds as Slack sends them: ASCII digits only."""
MAX_BODY = 1024**2
"""Default body limit (``MODELARIUM_SLACK_MAX_BODY``); Slack's largest payloads (a modal's
state, a message's blocks) are well under it."""
OUTBOX_INTERVAL = 0.5


def slack_route(
    app: App,
    path: str = EVENTS_PATH,
    *,
    threads: int = DISPATCH_THREADS,
    priority: AckPriority | None = None,
    max_body: int = MAX_BODY,
    signing_secret: str | None = None,
) -> Route:
    """``POST path`` handed to ``app.dispatch`` in a worker thread; observes ACK_LATENCY.

    With ``priority``, background command work waits while requests are in flight here.
    Nobody needs a signature to send a body, so a body over ``max_body`` is refused (413)
    before it is read: at once when its Content-Length says so, else as soon as the stream
    passes the limit. With ``signing_secret``, a request without a valid signature gets its 401
    here, after one HMAC: bolt would first parse the whole body and log it.
    """
    verifier = _Verifier(signing_secret) if signing_secret else None
    limiter: anyio.CapacityLimiter | None = None
    inflight: contextlib.AbstractContextManager[Any] = priority or contextlib.nullcontext()

    async def endpoint(request: Request) -> Response:
        with inflight:
            return await handle(request)

    async def handle(request: Request) -> Response:
        nonlocal limiter
        started = time.perf_counter()
        if limiter is None:  # created lazily: it must belong to the server's event loop
            limiter = anyio.CapacityLimiter(threads)
        timestamp = request.headers.get("x-slack-request-timestamp")
        signature = request.headers.get("x-slack-signature")
        if timestamp is not None and not _TIMESTAMP.fullmatch(timestamp):
            # bolt would crash on int("") or int("¹²³") (a 500: str.isdigit() accepts
            # superscripts); a malformed timestamp is simply unsigned
            return _refuse("bad timestamp", 401)
        if verifier is not None and not _may_be_signed(timestamp, signature, request):
            # No fresh timestamp and well-formed signature: 401 without reading the body (only
            # Slack's tiny unsigned SSL check is read, for bolt to answer).
            return _refuse("unsigned", 401)
        raw = await _read_limited(request, max_body)
        if raw is None:
            return _refuse("too large", 413, {"Connection": "close"})
        try:
            body = raw.decode("utf-8")
        except UnicodeDecodeError:
            return _refuse("not UTF-8", 400)
        if (
            verifier is not None
            and not verifier.is_valid(raw, timestamp, signature)
            and not _ssl_check(raw)
        ):
            return _refuse("bad signature", 401)
        headers = dict(request.headers.items())
        bolt_response = await anyio.to_thread.run_sync(
            _dispatch, app, body, request.url.query, headers, limiter=limiter
        )
        if bolt_response is None:
            return _refuse("not Slack's shape", 400)
        response = Response(
            status_code=bolt_response.status,
            content=bolt_response.body,
            headers=bolt_response.first_headers_without_set_cookie(),
        )
        ACK_LATENCY.observe(time.perf_counter() - started)
        return response

    return Route(path, endpoint, methods=["POST"])


async def _read_limited(request: Request, limit: int) -> bytes | None:
    """The body, or ``None`` when it is (or claims to be) longer than ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _dispatch(app: App, body: str, query: str, headers: dict[str, str]) -> BoltResponse | None:
    """In a worker thread: parsing the body is part of bolt's work, kept off the event loop.

    ``None`` for a request bolt cannot handle at all: a body that is not the object Slack
    sends (JSON ``null``, a list, ``payload=`` that is not an object) made bolt raise, which
    answered 500 with a traceback in the log for anyone who could reach the port.
    """
    if not _shaped_like_slack(body, headers.get("content-type", "")):
        return None
    try:
        response = app.dispatch(BoltRequest(body=body, query=query, headers=headers))
    except Exception:
        log.warning("slack.bad_request", error="bolt could not handle the request", exc_info=True)
        return None
    if response.status >= 500:
        # Bolt caught its own failure on a body of the wrong shape inside (a ``view`` that is
        # null, say): our listeners only ack and queue, so the request is what was wrong.
        log.warning("slack.bad_request", error="bolt failed on the request", status=response.status)
        return None
    return response


_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}", re.ASCII)


class _Verifier:
    """Slack's v0 signature over the raw bytes, fed to HMAC piece by piece (slack_sdk's
    verifier builds a second copy of the whole body in a string first)."""

    def __init__(self, secret: str) -> None:
        self._secret = secret.encode()

    def is_valid(self, raw: bytes, timestamp: str | None, signature: str | None) -> bool:
        if timestamp is None or signature is None:
            return False
        if abs(time.time() - int(timestamp)) > 300:
            return False
        mac = hmac.new(self._secret, b"v0:" + timestamp.strip().encode() + b":", hashlib.sha256)
        mac.update(raw)
        return hmac.compare_digest("v0=" + mac.hexdigest(), signature)


_SSL_CHECK_BYTES = 1024
_refusals = 0
_refusals_logged_at = 0.0


def _refuse(reason: str, status: int, headers: dict[str, str] | None = None) -> Response:
    """A refused request: counted, and logged at most every 10 s (an attack must not turn into
    a flood of log lines)."""
    global _refusals, _refusals_logged_at
    SLACK_REFUSED.labels(reason=reason).inc()
    _refusals += 1
    now = time.monotonic()
    if now - _refusals_logged_at >= 10.0:
        log.info("slack.refused", reason=reason, status=status, refused_since_last=_refusals)
        _refusals, _refusals_logged_at = 0, now
    error = "request body too large" if status == 413 else "invalid request"
    return JSONResponse({"error": error}, status_code=status, headers=headers)


def _may_be_signed(timestamp: str | None, signature: str | None, request: Request) -> bool:
    """Whether the headers leave it possible that Slack signed this request (fresh timestamp,
    well-formed signature), or it is small enough to be Slack's unsigned SSL check."""
    if (
        timestamp is not None
        and signature is not None
        and _SIGNATURE.fullmatch(signature)
        and abs(time.time() - int(timestamp)) <= 300
    ):
        return True
    length = request.headers.get("content-length", "")
    return length.isascii() and length.isdigit() and int(length) <= _SSL_CHECK_BYTES


def _ssl_check(raw: bytes) -> bool:
    """Slack's unsigned SSL check (``ssl_check=1&token=...``), which bolt itself answers."""
    if len(raw) > _SSL_CHECK_BYTES or b"ssl_check=" not in raw:
        return False
    return dict(parse_qsl(raw.decode("utf-8", "replace"))).get("ssl_check") == "1"


def _shaped_like_slack(body: str, content_type: str) -> bool:
    """Slack sends a JSON object, or form fields whose ``payload`` (if any) is a JSON object.

    Decided the way bolt's ``parse_body`` reads a body, so only what would make it fail (or
    hand a non-object to its middleware) is refused.
    """
    if not body:
        return True
    try:
        if content_type.split(";")[0] == "application/json" or body.startswith("{"):
            return isinstance(safejson.loads(body), dict)
        if "payload" in body:
            payload = dict(parse_qsl(body, keep_blank_values=True)).get("payload")
            return payload is None or isinstance(safejson.loads(payload), dict)
    except ValueError:
        return False
    return True


HealthCheck = Callable[[], tuple[bool, str]]


class SlackBot:
    """The Slack front: its HTTP routes, Socket Mode, the outbox loop and a health check.

    The HTTP server itself belongs to the process (``entrypoints.web.BotServer``), which also
    serves the other routes of the bot's port.
    """

    def __init__(
        self,
        core: Core,
        *,
        front: SlackFront | None = None,
        deliver_outbox: bool = True,
        outbox_interval: float = OUTBOX_INTERVAL,
    ) -> None:
        self.core = core
        self.front = front or SlackFront(core)
        self.sender = SlackSender(self.front.client, self.front.names)
        self.deliver_outbox = deliver_outbox
        self.outbox_interval = outbox_interval
        self.checks: dict[str, HealthCheck] = {"slack": self._health}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._socket: Any = None
        self._last_outbox_error: str | None = None

    @property
    def routes(self) -> list[BaseRoute]:
        if self.front.socket_mode:
            return []
        secret = self.core.settings.slack_signing_secret
        return [
            slack_route(
                self.front.app,
                priority=self.front.priority,
                max_body=self.core.settings.slack_max_body,
                signing_secret=secret.get_secret_value() if secret else None,
            )
        ]

    @property
    def mode(self) -> str:
        return "socket_mode" if self.front.socket_mode else "http"

    def start(self) -> None:
        if self.front.socket_mode:
            from slack_bolt.adapter.socket_mode import SocketModeHandler

            token = self.core.settings.slack_app_token
            assert token is not None
            self._socket = SocketModeHandler(self.front.app, token.get_secret_value())
            self._socket.connect()
        # Old delivery keys are pruned by the daemon's housekeeping task.
        if self.deliver_outbox:
            thread = threading.Thread(target=self._outbox_loop, name="slack-outbox", daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info("slack.started", mode=self.mode, outbox=self.deliver_outbox)

    def stop(self) -> None:
        self._stop.set()
        if self._socket is not None:
            try:
                self._socket.close()
            except Exception:
                log.exception("slack.socket_close_failed")
        for thread in self._threads:
            thread.join(5)
        self.front.close()

    # -- loops ------------------------------------------------------------------------------
    def deliver_once(self) -> None:
        self.core.notify.deliver_pending(self.sender)

    def _outbox_loop(self) -> None:
        while not self._stop.wait(self.outbox_interval):
            try:
                self.deliver_once()
                self._last_outbox_error = None
            except Exception as exc:  # the database may be briefly unavailable
                self._last_outbox_error = f"{type(exc).__name__}: {exc}"
                log.exception("slack.outbox_failed")

    def _health(self) -> tuple[bool, str]:
        if self._socket is not None:
            client = getattr(self._socket, "client", None)
            connected = bool(client and client.is_connected())
            return connected, "socket mode " + ("connected" if connected else "disconnected")
        if self._last_outbox_error:
            return True, "http; outbox failing (see the log)"
        return True, self.mode


__all__ = ["EVENTS_PATH", "HealthCheck", "SlackBot", "slack_route"]
