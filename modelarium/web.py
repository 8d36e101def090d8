"""HTTP plumbing shared by the bot and the daemon: /healthz, /metrics and a uvicorn runner."""

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

from modelarium.core.app import Core
from modelarium.core.db.engine import database_health

HealthCheck = Callable[[], tuple[bool, str]]


def build_app(
    core: Core,
    *,
    routes: list[BaseRoute] | None = None,
    checks: dict[str, HealthCheck] | None = None,
) -> Starlette:
    """A Starlette app with ``/healthz`` (database + extra checks) and ``/metrics``."""
    all_checks: dict[str, HealthCheck] = {"database": lambda: database_health(core.db.engine)}
    all_checks.update(checks or {})

    def healthz(_request: Request) -> JSONResponse:
        results = {}
        for name, check in all_checks.items():
            try:
                ok, detail = check()
            except Exception as exc:  # a failing check is a result, not a crash
                ok, detail = False, f"{type(exc).__name__}: {exc}"
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
