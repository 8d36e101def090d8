"""The HTTP server shared by the bot and the daemon: /healthz, /metrics, a uvicorn runner, and the
bot's port (Slack events and the HTTP API under /api/v1)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from modelarium.bot.api import PREFIX as API_PREFIX
from modelarium.bot.api import ApiFront
from modelarium.bot.inference import InferenceEvents
from modelarium.bot.slack.server import EVENTS_PATH, SlackBot
from modelarium.core.app import Core
from modelarium.core.db.engine import database_health, schema_health
from modelarium.core.logging import get_logger

log = get_logger(__name__)

HealthCheck = Callable[[], tuple[bool, str]]


def build_app(
    core: Core,
    *,
    routes: list[BaseRoute] | None = None,
    checks: dict[str, HealthCheck] | None = None,
) -> Starlette:
    """A Starlette app with ``/healthz`` (database, schema + extra checks) and ``/metrics``.

    ``/healthz`` is unauthenticated: details say what is wrong in a few words, never an
    exception's text (the log has it).
    """
    all_checks: dict[str, HealthCheck] = {
        "database": lambda: database_health(core.db.engine),
        "schema": lambda: schema_health(core.db.engine),
    }
    all_checks.update(checks or {})

    def healthz(_request: Request) -> JSONResponse:
        results = {}
        for name, check in all_checks.items():
            try:
                ok, detail = check()
            except Exception as exc:  # a failing check is a result, not a crash
                log.warning("health.check_crashed", check=name, error=type(exc).__name__)
                ok, detail = False, "check failed"
            results[name] = {"ok": ok, "detail": detail}
        healthy = all(r["ok"] for r in results.values())
        return JSONResponse({"ok": healthy, "checks": results}, status_code=200 if healthy else 503)

    def metrics(_request: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    base: list[BaseRoute] = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    return Starlette(routes=base + list(routes or []))


class HttpServer:
    """uvicorn in a background thread, so a process can serve HTTP beside its other work."""

    def __init__(self, app: Any, host: str, port: int) -> None:
        self._config = uvicorn.Config(
            app, host=host, port=port, log_config=None, access_log=False, lifespan="off"
        )
        self._server = uvicorn.Server(self._config)
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.run, name="http", daemon=True)
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"HTTP server failed to start on port {self._config.port}")
            threading.Event().wait(0.02)

    @property
    def port(self) -> int:
        servers = getattr(self._server, "servers", [])
        for server in servers:
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        return self._config.port

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)

    def serve_forever(self) -> None:
        self._server.run()


class BotServer:
    """The bot process's port: the Slack front's routes, the HTTP API (``/api/v1``) and KServe's
    inference logger (``/inference/events``) beside /healthz and /metrics."""

    def __init__(
        self,
        core: Core,
        bot: SlackBot | None = None,
        *,
        host: str | None = None,
        port: int | None = None,
        api: ApiFront | None = None,
        **bot_options: Any,
    ) -> None:
        self.core = core
        self.bot = bot or SlackBot(core, **bot_options)
        self.api = api or ApiFront(core)
        self.inference = InferenceEvents(core)
        self._host = host if host is not None else core.settings.host
        port = port if port is not None else core.settings.port
        app = build_app(
            core,
            routes=self.bot.routes + self.api.routes + self.inference.routes,
            checks=self.bot.checks,
        )
        self.http = HttpServer(app, self._host, port)

    @property
    def checks(self) -> dict[str, HealthCheck]:
        return self.bot.checks

    @property
    def sender(self) -> Any:
        return self.bot.sender

    @property
    def front(self) -> Any:
        return self.bot.front

    @property
    def mode(self) -> str:
        return self.bot.mode

    def deliver_once(self) -> None:
        self.bot.deliver_once()

    @property
    def url(self) -> str:
        """Base URL of the HTTP server (``127.0.0.1`` when listening on all interfaces)."""
        host = "127.0.0.1" if self._host in ("0.0.0.0", "::", "") else self._host
        return f"http://{host}:{self.http.port}"

    @property
    def events_url(self) -> str:
        return self.url + EVENTS_PATH

    @property
    def api_url(self) -> str:
        return self.url + API_PREFIX

    def start(self) -> None:
        self.bot.start()
        self.http.start()

    def stop(self) -> None:
        self.http.stop()
        self.inference.close()
        self.bot.stop()

    def __enter__(self) -> BotServer:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
