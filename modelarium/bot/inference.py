"""``POST /inference/events/<group>/<member>``: KServe's inference logger, on the bot's port.

Thin: authenticate the group's token (``?token=``, ``X-Modelarium-Token`` or
``Authorization: Bearer``), read the body within a limit, let core parse the CloudEvents, and
wait until the batch they joined is committed. Refusals are counted by reason
(``modelarium_inference_events_rejected_total``); a malformed event gets 400 and one line.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from modelarium.core.errors import NotFoundError
from modelarium.core.groups import EVENTS_PATH
from modelarium.core.groups.ingest import EVENTS, REJECTED, Ingestor, MalformedEvent, parse
from modelarium.core.logging import get_logger

log = get_logger(__name__)

MAX_BODY = 8 * 1024 * 1024
"""KServe logs whole request and response bodies; a long chat is well below this."""
AUTH_TTL = 2.0
"""Seconds a group found for a token is reused: every request and response is a POST, and one
database read per event would cost more than storing it. Short, so a new challenger's events
are accepted within seconds and a deleted group's are refused."""


def _token(request: Request) -> str | None:
    token = request.query_params.get("token") or request.headers.get("x-modelarium-token")
    if token:
        return token
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _refuse(reason: str, status: int, message: str) -> JSONResponse:
    REJECTED.labels(reason).inc()
    return JSONResponse({"ok": False, "error": message}, status_code=status)


class InferenceEvents:
    """The route and its ingestor (one per process; closed with the server)."""

    def __init__(self, core: Any) -> None:
        self.core = core
        self.ingestor = Ingestor(core.groups)
        self._groups: dict[tuple[str, str], tuple[float, Any]] = {}

    @property
    def routes(self) -> list[BaseRoute]:
        return [
            Route(EVENTS_PATH + "/{group}/{member:path}", self.receive, methods=["POST"]),
        ]

    async def receive(self, request: Request) -> Response:
        received = self.core.clock.now().timestamp()
        started = time.perf_counter()
        name = request.path_params["group"]
        member = request.path_params["member"]
        token = _token(request)
        key = (name, hashlib.sha256((token or "").encode()).hexdigest())
        cached = self._groups.get(key)
        if cached is not None and time.monotonic() - cached[0] < AUTH_TTL:
            group = cached[1]
        else:
            try:
                group = await asyncio.to_thread(self.core.groups.authenticate, name, token)
            except NotFoundError:
                self._groups.pop(key, None)
                return _refuse("auth", 401, "unknown group or wrong token")
            if len(self._groups) > 1000:
                self._groups.clear()
            self._groups[key] = (time.monotonic(), group)
        if group.member(member) is None:
            return _refuse("unknown_member", 404, f"{member[:100]!r} is not a member of {name}")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                return _refuse("too_large", 413, f"an event is at most {MAX_BODY} bytes")
        try:
            events = parse(request.headers, bytes(body))  # case-insensitive, lower-case keys
        except MalformedEvent as exc:
            return _refuse("malformed", 400, str(exc))
        future = self.ingestor.submit(group, member, events, received)
        try:
            await asyncio.wrap_future(future)
        except Exception as exc:
            log.warning("inference.events_not_stored", group=name, error=type(exc).__name__)
            return JSONResponse({"ok": False, "error": "not stored; send again"}, status_code=503)
        for event in events:
            EVENTS.labels(event.kind).inc()
        log.debug("inference.events", group=name, events=len(events),
                  ms=round((time.perf_counter() - started) * 1000, 1))  # fmt: skip
        return Response(status_code=202)

    def close(self) -> None:
        self.ingestor.close()
