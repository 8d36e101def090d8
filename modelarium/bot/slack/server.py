"""The ``modelarium bot`` process: Slack over HTTP (or Socket Mode), /healthz, /metrics, outbox.

HTTP mode serves ``POST /slack/events`` on the shared Starlette app. Bolt is synchronous, so each
request is dispatched in a worker thread (the event loop only reads bodies and writes answers);
bolt verifies the signature (401 for forged, tampered or stale requests) before any listener
runs. With ``SLACK_APP_TOKEN`` set, Socket Mode receives the same requests over a websocket and
the port still answers /healthz and /metrics.

In the same process a thread delivers the outbox (approval cards, job progress, alerts) through
:class:`~modelarium.bot.slack.sender.SlackSender`, editing messages in place.
"""

from __future__ import annotations

import contextlib
import gc
import threading
import time
from typing import Any

import anyio
import anyio.to_thread
from slack_bolt import App, BoltRequest, BoltResponse
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from modelarium.bot.slack.app import AckPriority, SlackFront
from modelarium.bot.slack.sender import SlackSender
from modelarium.core.app import Core
from modelarium.core.logging import get_logger
from modelarium.core.metrics import ACK_LATENCY
from modelarium.web import HealthCheck, HttpServer, build_app

log = get_logger(__name__)

EVENTS_PATH = "/slack/events"
DISPATCH_THREADS = 64
"""Concurrent bolt dispatches; each only verifies, acks and queues, so they are short."""
OUTBOX_INTERVAL = 0.5


def slack_route(
    app: App,
    path: str = EVENTS_PATH,
    *,
    threads: int = DISPATCH_THREADS,
    priority: AckPriority | None = None,
) -> Route:
    """``POST path`` handed to ``app.dispatch`` in a worker thread; observes ACK_LATENCY.

    With ``priority``, background command work waits while requests are in flight here.
    """
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
        raw = await request.body()
        timestamp = request.headers.get("x-slack-request-timestamp")
        if timestamp is not None and not timestamp.strip().isdigit():
            # bolt would crash on int("") (a 500); a malformed timestamp is simply unsigned
            return JSONResponse({"error": "invalid request"}, status_code=401)
        try:
            body = raw.decode("utf-8")
        except UnicodeDecodeError:
            return JSONResponse({"error": "invalid request"}, status_code=400)
        headers = dict(request.headers.items())
        bolt_response = await anyio.to_thread.run_sync(
            _dispatch, app, body, request.url.query, headers, limiter=limiter
        )
        response = Response(
            status_code=bolt_response.status,
            content=bolt_response.body,
            headers=bolt_response.first_headers_without_set_cookie(),
        )
        ACK_LATENCY.observe(time.perf_counter() - started)
        return response

    return Route(path, endpoint, methods=["POST"])


def _dispatch(app: App, body: str, query: str, headers: dict[str, str]) -> BoltResponse:
    """In a worker thread: parsing the body is part of bolt's work, kept off the event loop."""
    return app.dispatch(BoltRequest(body=body, query=query, headers=headers))


class SlackBot:
    """The Slack front as a process component: start() serves, stop() shuts down cleanly."""

    def __init__(
        self,
        core: Core,
        *,
        front: SlackFront | None = None,
        host: str | None = None,
        port: int | None = None,
        deliver_outbox: bool = True,
        outbox_interval: float = OUTBOX_INTERVAL,
    ) -> None:
        self.core = core
        self.front = front or SlackFront(core)
        self.sender = SlackSender(self.front.client)
        self.deliver_outbox = deliver_outbox
        self.outbox_interval = outbox_interval
        self.checks: dict[str, HealthCheck] = {"slack": self._health}
        self._host = host if host is not None else core.settings.host
        self._port = port if port is not None else core.settings.port
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._socket: Any = None
        self._last_outbox_error: str | None = None
        routes = (
            []
            if self.front.socket_mode
            else [slack_route(self.front.app, priority=self.front.priority)]
        )
        self.http = HttpServer(
            build_app(core, routes=routes, checks=self.checks), self._host, self._port
        )

    @property
    def mode(self) -> str:
        return "socket_mode" if self.front.socket_mode else "http"

    @property
    def url(self) -> str:
        """Base URL of the HTTP server (``127.0.0.1`` when listening on all interfaces)."""
        host = "127.0.0.1" if self._host in ("0.0.0.0", "::", "") else self._host
        return f"http://{host}:{self.http.port}"

    @property
    def events_url(self) -> str:
        return self.url + EVENTS_PATH

    def start(self) -> None:
        if self.front.socket_mode:
            from slack_bolt.adapter.socket_mode import SocketModeHandler

            token = self.core.settings.slack_app_token
            assert token is not None
            self._socket = SocketModeHandler(self.front.app, token.get_secret_value())
            self._socket.connect()
        self.http.start()
        # Old delivery keys are pruned by the daemon's housekeeping task.
        if self.deliver_outbox:
            thread = threading.Thread(target=self._outbox_loop, name="slack-outbox", daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info("slack.started", mode=self.mode, port=self.http.port, outbox=self.deliver_outbox)

    def stop(self) -> None:
        self._stop.set()
        if self._socket is not None:
            try:
                self._socket.close()
            except Exception:
                log.exception("slack.socket_close_failed")
        self.http.stop()
        for thread in self._threads:
            thread.join(5)
        self.front.close()

    def __enter__(self) -> SlackBot:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

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
            return True, f"http; outbox: {self._last_outbox_error[:200]}"
        return True, self.mode


def freeze_startup_objects() -> None:
    """Exempt everything loaded at start-up from garbage collection.

    The bot imports large libraries (bolt, SQLAlchemy, the Hub, Kubernetes and GitHub clients);
    a full collection walks all of their objects and stopped every thread for 100-200 ms in
    bench/slack_ack.py, longer than our whole ack budget. Frozen, a full collection takes a few
    milliseconds. Call it once per process, after start-up.
    """
    gc.collect()
    gc.freeze()


def serve(bot: SlackBot, stop: threading.Event) -> None:
    """Run ``bot`` until ``stop`` is set (the ``modelarium bot`` / ``up`` process)."""
    bot.start()
    freeze_startup_objects()
    try:
        stop.wait()
    finally:
        bot.stop()


__all__ = ["EVENTS_PATH", "SlackBot", "freeze_startup_objects", "serve", "slack_route"]
