"""The HTTP API alone on a free port (no Slack), for capability tests that read its routes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from modelarium.bot.api import ApiFront
from modelarium.bot.dispatch import CommandRunner
from modelarium.core.app import Core
from modelarium.entrypoints.web import HttpServer, build_app


@contextmanager
def api_client(core: Core, user: str, scopes: str) -> Iterator[httpx.Client]:
    """An httpx client for ``/api/v1`` carrying a new token of ``user`` with ``scopes``."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    reply = CommandRunner(core).execute(f"token create {name} --scope {scopes}", user=user)
    assert reply.ok, reply.text
    server = HttpServer(build_app(core, routes=ApiFront(core).routes), "127.0.0.1", 0)
    server.start()
    try:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{server.port}/api/v1",
            headers={"Authorization": f"Bearer {reply.data['token']}"},
            timeout=30,
        ) as client:
            yield client
    finally:
        server.stop()
