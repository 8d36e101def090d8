"""The HTTP API front: ``/api/v1`` on the bot's port, for scripts and CI.

Every route runs a command through the same :class:`~modelarium.bot.dispatch.CommandRunner` as
Slack and the shell, as the token's owner: the same role checks, the same changes and approvals,
the same audit entries (marked ``via: api mdl_...``). ``POST /commands`` answers the envelope
of ``modelarium cmd --json``; the typed routes answer the command's structured data. The token's
scopes narrow what it may run (``scopes.py``, one table).

A request costs one hop to a worker thread (authenticate, rate limit, run the command);
``?wait=`` parks on the event loop (``waiting.py``) and holds no thread or connection meanwhile.
"""

from __future__ import annotations

import base64
import shlex
import uuid
from collections.abc import Callable
from typing import Annotated, Any, Literal

import anyio
import anyio.to_thread
from fastapi import Body, FastAPI, Path, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount

from modelarium import __version__
from modelarium.bot.api import docs
from modelarium.bot.api.errors import STATUS, ApiError, error_response, json_response
from modelarium.bot.api.limits import BodyLimit, RateLimiter, retry_after
from modelarium.bot.api.schemas import (
    Approvals,
    Catalog,
    Change,
    CommandRequest,
    Decision,
    DecisionRequest,
    Deployments,
    Envelope,
    ErrorEnvelope,
    Job,
    RejectRequest,
    Weights,
)
from modelarium.bot.api.scopes import authorizer
from modelarium.bot.api.waiting import Watcher
from modelarium.bot.commands.parsing import MAX_ID
from modelarium.bot.dispatch import CommandRunner
from modelarium.bot.reply import Reply
from modelarium.bot.shell.oneshot import envelope
from modelarium.config.units import parse_duration
from modelarium.core.app import Core
from modelarium.core.catalog.service import LIST_STATUSES
from modelarium.core.changes.kinds import FINAL as CHANGE_FINAL
from modelarium.core.errors import AuthenticationError
from modelarium.core.jobs.service import TERMINAL as JOB_FINAL
from modelarium.core.logging import get_logger
from modelarium.core.tokens import TokenView

log = get_logger(__name__)

PREFIX = "/api/v1"
SQLITE_THREADS = 2
"""API requests running at once on SQLite, where one transaction writes at a time and waiting
writers poll with growing sleeps: more threads only lengthen the tail (bench/api.py, 50
concurrent: p99 0.2-0.5 s with 1-4 threads, 1.5 s with 32). On PostgreSQL: the pool's size."""
WAIT_PATTERN = r"^\d{1,6}(\.\d{1,3})?(ms|s|m|h)?$"
WeightStatus = Literal["installing", "installed", "failed", "orphaned"]
CatalogStatus = Literal[LIST_STATUSES]  # type: ignore[valid-type]

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="token",
    description="An API token from `/model token create` (`mdl_...`).",
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]
Id = Annotated[int, Path(ge=1, le=MAX_ID, examples=[1])]
Wait = Annotated[
    str | None,
    Query(
        pattern=WAIT_PATTERN,
        description="Answer when it ends, or after this long at most (`30s`, `2m`; capped by "
        "MODELARIUM_API_WAIT_MAX). Without it, answer at once.",
    ),
]


def _words(*command: str, **flags: object) -> list[str]:
    """A command's words from an endpoint's parameters: ``--flag value`` for each one given,
    a bare ``--flag`` for True, nothing for None or False."""
    words = list(command)
    for name, value in flags.items():
        if value is True:
            words.append(f"--{name}")
        elif value is not None and value is not False and value != "":
            words += [f"--{name}", str(value)]
    return words


def _responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    described = {
        400: "The command was called wrongly (one line and its usage).",
        401: "Missing, unknown, expired or revoked token (one line saying which).",
        403: "The owner's role or the token's scopes do not allow it.",
        404: "No such command, or no such thing.",
        409: "Conflicts with the current state (already decided, another change under way).",
        413: "Request body over MODELARIUM_API_MAX_BODY.",
        422: "The request or its input is invalid.",
        429: "Rate limit of the token reached; retry after `Retry-After` seconds.",
        500: "A bug on our side; the answer carries a reference to the log.",
        501: "That capability is not built yet.",
        502: "An external system (the Hub, an endpoint, Kubernetes) failed.",
    }
    responses: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        entry: dict[str, Any] = {"model": ErrorEnvelope, "description": described[code]}
        if code == 429:
            entry["headers"] = {
                "Retry-After": {
                    "description": "Seconds until the token may send again.",
                    "schema": {"type": "string"},
                }
            }
        if code == 401:
            entry["headers"] = {
                "WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}}
            }
        responses[code] = entry
    return responses


COMMON = (400, 401, 403, 404, 409, 422, 429, 500)


class ApiFront:
    """The API's routes, to be composed into the bot's Starlette app (``BotServer``)."""

    def __init__(
        self, core: Core, runner: CommandRunner | None = None, *, threads: int | None = None
    ) -> None:
        self.core = core
        sqlite = core.db.dialect == "sqlite"
        self.threads = threads or (SQLITE_THREADS if sqlite else core.settings.database_pool_size)
        """Requests running commands at once (each on a worker thread); the rest wait, fairly."""
        self.runner = runner or CommandRunner(core)
        settings = core.settings
        self.rate = RateLimiter(settings.api_rate_limit, settings.api_rate_burst)
        self.jobs = Watcher(core.jobs.finished)
        self.changes = Watcher(core.changes.finished)
        self.wait_max = settings.api_wait_max
        self.channel = core.approvals.approvals_channel or core.notify.route("change")
        """Where the cards of changes proposed here go: a request has no channel of its own."""
        self._threads: anyio.CapacityLimiter | None = None
        self.fastapi = self._build()
        self.max_body = settings.api_max_body
        app: Any = BodyLimit(self.fastapi, self.max_body, self._too_large)
        if settings.api_cors_origins:
            app = CORSMiddleware(
                app,
                allow_origins=list(settings.api_cors_origins),
                allow_methods=["GET", "POST"],
                allow_headers=["Authorization", "Content-Type"],
                max_age=600,
            )
        self.asgi = app

    @property
    def routes(self) -> list[BaseRoute]:
        return [Mount(PREFIX, app=self.asgi)]

    # -- running commands -------------------------------------------------------------------

    async def run(
        self,
        credentials: HTTPAuthorizationCredentials | None,
        text: str,
        *,
        stdin: str | None = None,
        verbatim: bool = False,
        count: bool = True,
    ) -> Reply:
        """Authenticate, rate-limit and run ``text`` as the token's owner, in one thread hop."""
        if credentials is None or not credentials.credentials:
            raise ApiError(
                "unauthorized",
                "missing API token: send `Authorization: Bearer mdl_...` "
                "(create one with `/model token create <name>`)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        secret = credentials.credentials
        lines = iter((stdin or "").splitlines())

        def work() -> Reply:
            token = self._authenticate(secret)
            if count:
                delay = self.rate.take(token.id)
                if delay:
                    raise ApiError(
                        "rate_limited",
                        f"token {token.prefix} is over its rate limit; retry in "
                        f"{retry_after(delay)} s",
                        headers={"Retry-After": retry_after(delay)},
                    )
            return self.runner.execute(
                text,
                user=token.user,
                channel=self.channel,
                front="api",
                read_secret=lambda _prompt: next(lines, ""),
                verbatim=verbatim,
                authorize=authorizer(token),
                via=f"api {token.prefix}",
            )

        if self._threads is None:  # created lazily: it must belong to the server's event loop
            self._threads = anyio.CapacityLimiter(self.threads)
        return await anyio.to_thread.run_sync(work, limiter=self._threads)

    def _authenticate(self, secret: str) -> TokenView:
        try:
            return self.core.tokens.authenticate(secret)
        except AuthenticationError as exc:
            log.info("api.unauthorized", reason=str(exc))
            raise ApiError(
                "unauthorized",
                str(exc),
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            ) from None

    @staticmethod
    def failure(reply: Reply) -> Response | None:
        """The error envelope for a reply that failed, with the status of how it ended."""
        ok, text, data = envelope(reply)
        if ok:
            return None
        status = STATUS.get(str(data["code"]), 422)
        return json_response({"ok": False, "text": text, "data": data}, status)

    async def typed(
        self, credentials: HTTPAuthorizationCredentials | None, *words: str, count: bool = True
    ) -> tuple[Reply, Response | None]:
        """Run a command the route built itself (quoted here, so read verbatim)."""
        reply = await self.run(credentials, shlex.join(words), verbatim=True, count=count)
        return reply, self.failure(reply)

    async def waited(
        self,
        credentials: HTTPAuthorizationCredentials | None,
        words: tuple[str, ...],
        wait: str | None,
        watcher: Watcher,
        key: int,
        final: frozenset[str],
    ) -> Response:
        """The command's data, after waiting (parked, no thread) until ``status`` is final."""
        reply, failed = await self.typed(credentials, *words)
        if failed is not None:
            return failed
        if wait and str(reply.data.get("status")) not in final:
            await watcher.wait(key, min(parse_duration(wait), self.wait_max))
            reply, failed = await self.typed(credentials, *words, count=False)
            if failed is not None:
                return failed
        return json_response(reply.data)

    # -- the application --------------------------------------------------------------------

    def _build(self) -> FastAPI:
        app = FastAPI(
            title="Modelarium API",
            version=__version__,
            description=(
                "The commands of `/model`, for scripts and CI. Every call acts as the owner of "
                "its token (`/model token create`), with their role, narrowed by the token's "
                "scopes. Proposals wait for the same approvals as in Slack.\n\n"
                'Errors, on every route: `{"ok": false, "text": ..., "data": '
                '{"error": "<one line>", "code": "<kind>"}}`.'
            ),
            openapi_url="/openapi.json",
            docs_url=None,
            redoc_url=None,
        )
        self._handlers(app)
        app.mount(docs.STATIC_PATH, docs.static_files(), name="docs-static")

        @app.get("/docs", include_in_schema=False)
        def api_docs(request: Request) -> Response:
            return docs.docs_page(request, "Modelarium API")

        @app.post(
            "/commands",
            response_model=Envelope,
            responses=_responses(*COMMON, 413, 501, 502),
            summary="Run a command",
            tags=["commands"],
        )
        async def commands(body: CommandRequest, credentials: Credentials) -> Response:
            """Any `/model` command, as `modelarium cmd --json -- TEXT` runs it: the answer is
            its envelope (`ok`, `text`, `data`, `files`), the status follows how it ended.
            Commands that propose a change carry `change`, `approval`, `job` and `digest`."""
            reply = await self.run(credentials, body.text, stdin=body.stdin)
            failed = self.failure(reply)
            if failed is not None:
                return failed
            ok, text, data = envelope(reply)
            files = [
                {
                    "filename": f.filename,
                    "title": f.title,
                    "content_base64": base64.b64encode(f.content).decode(),
                }
                for f in reply.files
            ]
            return json_response({"ok": ok, "text": text, "data": data, "files": files})

        @app.get(
            "/jobs/{id}",
            response_model=Job,
            responses=_responses(*COMMON),
            summary="One job",
            tags=["jobs"],
        )
        async def job(id: Id, credentials: Credentials, wait: Wait = None) -> Response:
            """What `/model jobs <id>` shows. With `?wait=30s`, answers as soon as the job has
            ended, or when the wait is over (then `status` is still `queued` or `running`)."""
            return await self.waited(credentials, ("jobs", str(id)), wait, self.jobs, id, JOB_FINAL)

        @app.get(
            "/changes/{id}",
            response_model=Change,
            responses=_responses(*COMMON),
            summary="One change",
            tags=["changes"],
        )
        async def change(id: Id, credentials: Credentials, wait: Wait = None) -> Response:
            """What `/model change <id>` shows: plan, diff, approval, job and outcome. With
            `?wait=`, answers when the change is final (succeeded, failed, rejected, expired,
            cancelled) or the wait is over: one call waits for the approval and the job."""
            return await self.waited(
                credentials, ("change", str(id)), wait, self.changes, id, CHANGE_FINAL
            )

        @app.get(
            "/approvals",
            response_model=Approvals,
            responses=_responses(*COMMON),
            summary="Pending approval requests",
            tags=["approvals"],
        )
        async def approvals(credentials: Credentials) -> Response:
            """What `/model approvals` lists."""
            reply, failed = await self.typed(credentials, "approvals")
            return failed or json_response(reply.data)

        @app.post(
            "/approvals/{id}/approve",
            response_model=Decision,
            responses=_responses(*COMMON, 413),
            summary="Approve a request",
            tags=["approvals"],
        )
        async def approve(
            id: Id, credentials: Credentials, body: Annotated[DecisionRequest | None, Body()] = None
        ) -> Response:
            """`/model approve <id>`, as the token's owner: they need the approver role and may
            not approve their own request. Give `digest` to refuse if the change differs from
            the one you reviewed."""
            words = _words("approve", str(id), digest=body and body.digest,
                           note=body and body.note)  # fmt: skip
            reply, failed = await self.typed(credentials, *words)
            return failed or json_response(reply.data)

        @app.post(
            "/approvals/{id}/reject",
            response_model=Decision,
            responses=_responses(*COMMON, 413),
            summary="Reject a request",
            tags=["approvals"],
        )
        async def reject(
            id: Id, credentials: Credentials, body: Annotated[RejectRequest | None, Body()] = None
        ) -> Response:
            """`/model reject <id>`, as the token's owner."""
            words = _words("reject", str(id), note=body and body.note)
            reply, failed = await self.typed(credentials, *words)
            return failed or json_response(reply.data)

        @app.get(
            "/weights",
            response_model=Weights,
            responses=_responses(*COMMON),
            summary="Installed model weights",
            tags=["weights"],
        )
        async def weights(
            credentials: Credentials,
            location: Annotated[str | None, Query(max_length=63)] = None,
            status: WeightStatus | None = None,
            pinned: bool = False,
            page: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
        ) -> Response:
            """What `/model weights` lists, one page at a time."""
            words = _words("weights", location=location, status=status, page=page, pinned=pinned)
            reply, failed = await self.typed(credentials, *words)
            return failed or json_response(reply.data)

        @app.get(
            "/deployments",
            response_model=Deployments,
            responses=_responses(*COMMON),
            summary="Deployments",
            tags=["deployments"],
        )
        async def deployments(
            credentials: Credentials,
            namespace: Annotated[str | None, Query(max_length=63)] = None,
            page: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
        ) -> Response:
            """What `/model deployments` lists: model@commit, ready, URL, GPUs, traffic."""
            words = _words("deployments", namespace=namespace, page=page)
            reply, failed = await self.typed(credentials, *words)
            return failed or json_response(reply.data)

        @app.get(
            "/catalog",
            response_model=Catalog,
            responses=_responses(*COMMON),
            summary="Catalog entries",
            tags=["catalog"],
        )
        async def catalog(
            credentials: Credentials,
            status: CatalogStatus | None = None,
            page: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
        ) -> Response:
            """What `/model catalog list` lists: Git's entries and drafts, status and PR."""
            words = _words("catalog", "list", status=status, page=page)
            reply, failed = await self.typed(credentials, *words)
            return failed or json_response(reply.data)

        return app

    # -- errors -----------------------------------------------------------------------------

    @staticmethod
    def _handlers(app: FastAPI) -> None:
        def api_error(_request: Request, exc: Exception) -> Response:
            assert isinstance(exc, ApiError)
            return error_response(exc.code, exc.message, headers=exc.headers)

        def invalid(_request: Request, exc: Exception) -> Response:
            assert isinstance(exc, RequestValidationError)
            first = exc.errors()[0] if exc.errors() else {}
            where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "request"
            return error_response("invalid_request", f"{where}: {first.get('msg', 'invalid')}")

        def http_error(_request: Request, exc: Exception) -> Response:
            assert isinstance(exc, StarletteHTTPException)
            if exc.status_code == 404:
                return error_response("not_found", "no such API route", headers=exc.headers)
            if exc.status_code == 405:
                return error_response(
                    "method_not_allowed", "method not allowed here", headers=exc.headers
                )
            code = "invalid_request" if exc.status_code < 500 else "crash"
            return error_response(
                code, str(exc.detail), headers=exc.headers, status=exc.status_code
            )

        def crash(_request: Request, exc: Exception) -> Response:
            ref = uuid.uuid4().hex[:8]
            log.error("api.crashed", ref=ref, error=type(exc).__name__, exc_info=exc)
            return error_response(
                "crash", f"Something went wrong on our side (ref {ref}); it has been logged."
            )

        app.add_exception_handler(ApiError, api_error)
        app.add_exception_handler(RequestValidationError, invalid)
        app.add_exception_handler(StarletteHTTPException, http_error)
        app.add_exception_handler(Exception, crash)

    async def _too_large(self, scope: Any, receive: Callable[..., Any], send: Any) -> None:
        response = error_response(
            "too_large", f"request body over {self.max_body} bytes (MODELARIUM_API_MAX_BODY)"
        )
        await response(scope, receive, send)


__all__ = ["PREFIX", "ApiFront"]
