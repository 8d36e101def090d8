"""The one path every front takes: text in -> parse -> role check -> handler -> Reply.

Bad input becomes one line plus the usage; a denial says which role is needed; anything
unexpected is logged with a reference id and never shown as a traceback. Every command and its
outcome is written to the audit log and timed for ``/metrics``.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable

from modelarium.bot.commands import registry as _registry_module
from modelarium.bot.commands.context import CommandContext, Front
from modelarium.bot.commands.parsing import bind, tokenize
from modelarium.bot.commands.registry import Registry
from modelarium.bot.commands.spec import Command
from modelarium.bot.reply import Outcome, Reply
from modelarium.core.app import Core
from modelarium.core.echo import shown
from modelarium.core.errors import (
    ConflictError,
    ModelariumError,
    NotBuiltError,
    NotFoundError,
    PermissionDeniedError,
    UpstreamError,
    UsageError,
    ValidationError,
)
from modelarium.core.logging import get_logger
from modelarium.core.metrics import COMMAND_LATENCY

log = get_logger(__name__)

MAX_COMMAND_CHARS = 20_000
"""Longer command text is refused before it is parsed, logged or audited. Slack's own inputs
are far shorter (a modal field holds 3,000 characters); Modelfiles longer than this are read
with ``--file``."""

# Linear in the text (it is user input): possessive quantifiers, and a quoted value that is
# never closed runs to the end of the text instead of being retried from every later quote.
_SECRET_FLAG = re.compile(
    r"(--(?:api-key|token|secret|password|key)(?:=|\s++))"
    r"(\"[^\"]*+(?:\"|\Z)|'[^']*+(?:'|\Z)|\S++)",
    re.IGNORECASE,
)


def redact_command(text: str) -> str:
    """Hide values of secret-bearing flags before the text is logged or audited."""
    return _SECRET_FLAG.sub(
        lambda m: m.group(1) + ("-" if m.group(2) == "-" else "[REDACTED]"), text
    )


class CommandRunner:
    def __init__(
        self, core: Core, registry: Registry | None = None, *, prefix: str | None = None
    ) -> None:
        import modelarium.bot.commands  # noqa: F401  (registers every command module)

        self.core = core
        self.registry = registry or _registry_module.registry
        self.prefix = prefix or core.settings.slack_command

    def execute(
        self,
        text: str,
        *,
        user: str,
        channel: str | None = None,
        front: Front = "cmd",
        read_secret: Callable[[str], str] | None = None,
        verbatim: bool = False,
        authorize: Callable[[Command], None] | None = None,
        via: str | None = None,
    ) -> Reply:
        """Run ``text`` as ``user``. ``authorize`` may refuse a command the caller's role allows
        (an API token's scopes) by raising PermissionDeniedError; ``via`` names the credential
        in the audit log (``api mdl_ab12cd34``)."""
        started = time.perf_counter()
        name = "?"
        outcome: Outcome = "ok"
        reply: Reply | None = None
        try:
            if len(text) > MAX_COMMAND_CHARS:
                outcome = "too_long"
                log.warning("command.too_long", user=user, chars=len(text), front=front)
                return (
                    reply := Reply.error(
                        f"That command is too long ({len(text)} characters; the limit is "
                        f"{MAX_COMMAND_CHARS}); in a terminal, `--file` reads long text.",
                        usage=f"{self.prefix} help",
                    )
                )
            words = tokenize(text, verbatim=verbatim)
            if words and words[0].lower() == self.prefix.lower():
                # the usage lines show the prefix; text copied from them (Slack, the API, `cmd`)
                # runs as if typed after it
                words = words[1:]
            if not words:
                words = ["help"]
            command, consumed = self.registry.resolve(words)
            if command is None:
                # a group word alone (`endpoint`) is a usage error; anything else is unknown
                outcome = "usage" if self.registry.group(words[0]) else "unknown"
                return (reply := self._unknown(words))
            name = command.name
            role = self.core.rbac.role_of(user)
            if role < command.role:
                outcome = "denied"
                error = PermissionDeniedError(
                    f"`{command.name}` needs the {command.role} role; you are {role}. "
                    f"Ask an admin: `{self.prefix} role grant <@{user}> {command.role}`"
                )
                self._audit(command.audit, user, name, text, "denied", str(error), via=via)
                return (reply := Reply.error(str(error)))
            if authorize is not None:
                try:
                    authorize(command)
                except PermissionDeniedError as exc:
                    outcome = "denied"
                    self._audit(True, user, name, text, "denied", str(exc), via=via)
                    return (reply := Reply.error(str(exc)))
            try:
                kwargs = bind(command, words[consumed:])
            except UsageError as exc:
                outcome = "usage"
                self._audit(command.audit, user, name, text, "usage", str(exc), via=via)
                return (reply := Reply.error(str(exc), usage=command.usage(self.prefix)))
            context = CommandContext(
                core=self.core,
                user=user,
                role=role,
                command=command,
                front=front,
                channel=channel,
                read_secret=read_secret,
                command_prefix=self.prefix,
            )
            try:
                reply = command.handler(context, **kwargs)
            except UsageError as exc:
                outcome = "usage"
                reply = Reply.error(str(exc), usage=command.usage(self.prefix))
            except ModelariumError as exc:
                outcome = outcome_of(exc)
                reply = Reply.error(str(exc))
            if not reply.ok and outcome == "ok":
                outcome = "error"
            self._audit(
                command.audit,
                user,
                name,
                text,
                _result(outcome, reply),
                None if reply.ok else reply.data.get("error"),
                target=_target(command, kwargs, reply),
                via=via,
            )
            return reply
        except UsageError as exc:
            outcome = "usage"
            return (reply := Reply.error(str(exc), usage=f"{self.prefix} help"))
        except Exception as exc:
            outcome = "crash"
            ref = uuid.uuid4().hex[:8]
            log.exception(
                "command.crashed", ref=ref, user=user, command=name, text=redact_command(text)
            )
            try:
                self._audit(
                    True,
                    user,
                    name,
                    text,
                    "error",
                    f"internal error ref {ref}: {type(exc).__name__}",
                    via=via,
                )
            except Exception:
                log.exception("command.audit_failed", ref=ref)
            return (
                reply := Reply.error(
                    f"Something went wrong on our side (ref {ref}); it has been logged."
                )
            )
        finally:
            if reply is not None:
                reply.outcome = outcome
            elapsed = time.perf_counter() - started
            COMMAND_LATENCY.labels(command=name, outcome=outcome).observe(elapsed)
            log.info(
                "command",
                user=user,
                command=name,
                outcome=outcome,
                ms=round(elapsed * 1000, 1),
                front=front,
            )

    def _unknown(self, words: list[str]) -> Reply:
        group = self.registry.group(words[0])
        if group:
            options = ", ".join(f"`{' '.join(c.path)}`" for c in group)
            return Reply.error(
                f"`{shown(words[0], quote=False)}` needs a subcommand: {options}",
                usage=f"{self.prefix} help {words[0]}",
            )
        suggestions = self.registry.suggest(words)
        hint = (
            " Did you mean " + " or ".join(f"`{s}`" for s in suggestions) + "?"
            if suggestions
            else ""
        )
        return Reply.error(
            f"Unknown command `{shown(words[0], quote=False)}`.{hint}", usage=f"{self.prefix} help"
        )

    def _audit(
        self,
        enabled: bool,
        user: str,
        name: str,
        text: str,
        result: str,
        detail: str | None,
        *,
        target: str | None = None,
        via: str | None = None,
    ) -> None:
        if enabled:
            params = {"text": redact_command(text)}
            if via:
                params["via"] = via
            self.core.audit.record(
                user,
                f"command.{name.replace(' ', '.')}",
                target=target,
                params=params,
                result=result,
                detail=detail,
            )


_OUTCOMES: tuple[tuple[type[ModelariumError], Outcome], ...] = (
    (UsageError, "usage"),
    (PermissionDeniedError, "denied"),
    (NotFoundError, "not_found"),
    (ConflictError, "conflict"),
    (ValidationError, "invalid"),
    (NotBuiltError, "not_built"),
    (UpstreamError, "upstream"),
)


def outcome_of(exc: ModelariumError) -> Outcome:
    """The outcome a user-facing error stands for (the HTTP API's status follows it)."""
    for kind, outcome in _OUTCOMES:
        if isinstance(exc, kind):
            return outcome
    return "error"


def _result(outcome: str, reply: Reply) -> str:
    if outcome in ("denied", "usage"):
        return outcome
    if reply.ok and reply.data.get("status") == "pending_approval":
        return "pending"  # it asked for an approval; nothing has happened yet
    return "ok" if reply.ok else "error"


def _target(command: Command, kwargs: dict[str, object], reply: Reply) -> str | None:
    """What a command acted on, for the audit view: its positional arguments (secrets hidden),
    and the change it proposed."""
    values = [kwargs.get(arg.key) for arg in command.args]
    words = redact_command(" ".join(str(v) for v in values if v not in (None, "", [])))[:120]
    change = reply.data.get("change")
    if isinstance(change, int):
        words = f"{words} (change #{change})".strip()
    return words or None
