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
from modelarium.bot.reply import Reply
from modelarium.core.app import Core
from modelarium.core.errors import ModelariumError, PermissionDeniedError, UsageError
from modelarium.core.logging import get_logger
from modelarium.core.metrics import COMMAND_LATENCY

log = get_logger(__name__)

_SECRET_FLAG = re.compile(
    r"(--(?:api-key|token|secret|password|key)(?:=|\s+))(\"[^\"]*\"|'[^']*'|\S+)", re.IGNORECASE
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
    ) -> Reply:
        started = time.perf_counter()
        name = "?"
        outcome = "ok"
        reply: Reply
        try:
            words = tokenize(text, verbatim=verbatim)
            if not words:
                words = ["help"]
            command, consumed = self.registry.resolve(words)
            if command is None:
                outcome = "unknown"
                return (reply := self._unknown(words))
            name = command.name
            role = self.core.rbac.role_of(user)
            if role < command.role:
                outcome = "denied"
                error = PermissionDeniedError(
                    f"`{command.name}` needs the {command.role} role; you are {role}. "
                    f"Ask an admin: `{self.prefix} role grant <@{user}> {command.role}`"
                )
                self._audit(command.audit, user, name, text, "denied", str(error))
                return (reply := Reply.error(str(error)))
            try:
                kwargs = bind(command, words[consumed:])
            except UsageError as exc:
                outcome = "usage"
                self._audit(command.audit, user, name, text, "usage", str(exc))
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
            except PermissionDeniedError as exc:
                outcome = "denied"
                reply = Reply.error(str(exc))
            except ModelariumError as exc:
                outcome = "error"
                reply = Reply.error(str(exc))
            self._audit(
                command.audit,
                user,
                name,
                text,
                _result(outcome, reply),
                None if reply.ok else reply.data.get("error"),
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
                )
            except Exception:
                log.exception("command.audit_failed", ref=ref)
            return (
                reply := Reply.error(
                    f"Something went wrong on our side (ref {ref}); it has been logged."
                )
            )
        finally:
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
                f"`{words[0]}` needs a subcommand: {options}",
                usage=f"{self.prefix} help {words[0]}",
            )
        suggestions = self.registry.suggest(words)
        hint = (
            " Did you mean " + " or ".join(f"`{s}`" for s in suggestions) + "?"
            if suggestions
            else ""
        )
        return Reply.error(f"Unknown command `{words[0]}`.{hint}", usage=f"{self.prefix} help")

    def _audit(
        self, enabled: bool, user: str, name: str, text: str, result: str, detail: str | None
    ) -> None:
        if enabled:
            self.core.audit.record(
                user,
                f"command.{name.replace(' ', '.')}",
                params={"text": redact_command(text)},
                result=result,
                detail=detail,
            )


def _result(outcome: str, reply: Reply) -> str:
    if outcome in ("denied", "usage"):
        return outcome
    return "ok" if reply.ok else "error"
