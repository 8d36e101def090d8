"""Process wiring for ``modelarium up|bot|daemon|shell``: which fronts and loops run where."""

from __future__ import annotations

import gc
import signal
import threading
from collections.abc import Callable
from typing import Any

from modelarium.core.app import Core
from modelarium.core.db.watch import SchemaWatch
from modelarium.core.logging import get_logger

log = get_logger(__name__)

EXIT_SCHEMA_LOST = 3
"""The database's schema went away under the process (recreated empty) and may not be
migrated again here (``MODELARIUM_AUTO_UPGRADE=false``): exit, to be restarted."""


class _Exit:
    """The code a process returns; a watch that gives up sets it and wakes the main thread."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.code = 0

    def fatal(self, reason: str) -> None:
        log.error("process.exit", reason=reason, code=EXIT_SCHEMA_LOST)
        self.code = EXIT_SCHEMA_LOST
        self.stop.set()


def _schema_watch(
    core: Core, ending: _Exit, after_migrate: list[Callable[[], None]] | None = None
) -> SchemaWatch:
    watch = SchemaWatch(core, on_fatal=ending.fatal, after_migrate=after_migrate or [])
    watch.start()
    return watch


def freeze_startup_objects() -> None:
    """Exempt everything loaded at start-up from garbage collection.

    A process imports large libraries (bolt, SQLAlchemy, the Hub, Kubernetes and GitHub
    clients); a full collection walks all of their objects and stopped every thread for
    100-200 ms in bench/slack_ack.py, longer than the whole ack budget, and took half the time of
    logger-event ingestion in bench/groups.py. Frozen, a full collection takes a few
    milliseconds. Called once per long-running process, after start-up.
    """
    gc.collect()
    gc.freeze()


def _stop_on_signals(stop: threading.Event) -> None:
    def handler(signum: int, _frame: object) -> None:
        log.info("process.signal", signal=signal.Signals(signum).name)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)


def _health_server(core: Core, daemon: object | None, *, api: bool = False) -> object | None:
    """/healthz and /metrics on MODELARIUM_PORT (and, for ``up`` with the terminal front, the
    HTTP API); a busy port is reported, not fatal."""
    from modelarium.entrypoints.web import HttpServer, build_app

    checks = {}
    if daemon is not None:
        from modelarium.automation.daemon import Daemon

        assert isinstance(daemon, Daemon)
        checks["scheduler"] = daemon.scheduler.health
    routes = []
    if api:
        from modelarium.bot.api import ApiFront

        routes = ApiFront(core).routes
    app = build_app(core, routes=routes, checks=checks)
    server = HttpServer(app, core.settings.host, core.settings.port)
    try:
        server.start()
    except (RuntimeError, OSError) as exc:
        log.warning("http.unavailable", port=core.settings.port, error=str(exc))
        return None
    log.info("http.listening", host=core.settings.host, port=server.port)
    return server


def daemon_fronts(core: Core) -> Any:
    """What the chat front lends the daemon's tasks (Slack user groups for role sync)."""
    from modelarium.automation.tasks import Fronts

    if not core.settings.slack_enabled:
        return Fronts()
    from modelarium.bot.slack.client import web_client
    from modelarium.bot.slack.groups import members_of

    client = web_client(core.settings)
    return Fronts(group_members=lambda group: members_of(client, group))


def run_daemon(core: Core) -> int:
    from modelarium.automation.daemon import Daemon

    sender = None
    if core.settings.slack_enabled:
        from modelarium.bot.slack.sender import SlackSender

        sender = SlackSender.from_settings(core.settings)
    daemon = Daemon(core, sender=sender, fronts=daemon_fronts(core))
    stop = threading.Event()
    _stop_on_signals(stop)
    ending = _Exit(stop)
    daemon.start()
    watch = _schema_watch(core, ending, [core.tasks.sync])
    server = _health_server(core, daemon)
    freeze_startup_objects()
    try:
        stop.wait()
    finally:
        watch.stop()
        daemon.stop()
        if server is not None:
            server.stop()  # type: ignore[attr-defined]
    return ending.code


def run_shell(core: Core, user: str, *, with_daemon: bool) -> int:
    """The terminal front; with ``with_daemon`` the daemon runs in-process and posts here."""
    from modelarium.bot.dispatch import CommandRunner
    from modelarium.bot.shell.console import Console, TerminalSender

    console = Console(CommandRunner(core), user)
    sender = TerminalSender(console)
    if not core.settings.slack_enabled:
        console.after_command = lambda: core.notify.deliver_pending(sender)
    daemon = None
    server = None
    stop = threading.Event()
    watch = _schema_watch(core, _Exit(stop), [core.tasks.sync])
    if with_daemon:
        from modelarium.automation.daemon import Daemon

        daemon = Daemon(core, sender=sender, fronts=daemon_fronts(core))
        daemon.start()
        server = _health_server(core, daemon, api=True)
    else:
        # Without Slack nobody else shows the outbox: display it here.
        def deliver() -> None:
            while not stop.wait(0.5):
                try:
                    core.notify.deliver_pending(sender)
                except Exception:
                    log.exception("shell.delivery_failed")

        if not core.settings.slack_enabled:
            threading.Thread(target=deliver, name="outbox", daemon=True).start()
    freeze_startup_objects()
    try:
        console.loop(core.settings.data_dir / ".shell_history")
    finally:
        stop.set()
        watch.stop()
        if daemon is not None:
            daemon.stop()
        if server is not None:
            server.stop()  # type: ignore[attr-defined]
    return 0


def run_up(core: Core, user: str) -> int:
    if core.settings.slack_enabled:
        return run_bot(core, with_daemon=True)
    return run_shell(core, user, with_daemon=True)


def run_bot(core: Core, *, with_daemon: bool = False) -> int:
    """The Slack front (HTTP or Socket Mode) until SIGTERM/SIGINT.

    Without the daemon this process delivers the outbox itself; with it, the daemon's delivery
    loop does, through the same Slack sender.
    """
    from modelarium.entrypoints.web import BotServer

    bot = BotServer(core, deliver_outbox=not with_daemon)
    daemon = None
    if with_daemon:
        from modelarium.automation.daemon import Daemon

        daemon = Daemon(core, sender=bot.sender, fronts=daemon_fronts(core))
        bot.checks["scheduler"] = daemon.scheduler.health
        daemon.start()
    stop = threading.Event()
    _stop_on_signals(stop)
    ending = _Exit(stop)
    watch = _schema_watch(core, ending, [core.tasks.sync])
    try:
        bot.start()
        freeze_startup_objects()
        try:
            stop.wait()
        finally:
            bot.stop()
    finally:
        watch.stop()
        if daemon is not None:
            daemon.stop()
    return ending.code
