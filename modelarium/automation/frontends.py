"""Process wiring for ``modelarium up|bot|daemon|shell``: which fronts and loops run where."""

from __future__ import annotations

import signal
import threading

from modelarium.core.app import Core
from modelarium.core.logging import get_logger

log = get_logger(__name__)


def _stop_on_signals(stop: threading.Event) -> None:
    def handler(signum: int, _frame: object) -> None:
        log.info("process.signal", signal=signal.Signals(signum).name)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)


def _health_server(core: Core, daemon: object | None) -> object | None:
    """/healthz and /metrics on MODELARIUM_PORT; a busy port is reported, not fatal."""
    from modelarium.web import HttpServer, build_app

    checks = {}
    if daemon is not None:
        from modelarium.automation.daemon import Daemon

        assert isinstance(daemon, Daemon)
        checks["scheduler"] = lambda: (
            daemon.scheduler.started,
            "leader" if daemon.scheduler.is_leader else "standby",
        )
    server = HttpServer(build_app(core, checks=checks), core.settings.host, core.settings.port)
    try:
        server.start()
    except (RuntimeError, OSError) as exc:
        log.warning("http.unavailable", port=core.settings.port, error=str(exc))
        return None
    log.info("http.listening", host=core.settings.host, port=server.port)
    return server


def run_daemon(core: Core) -> int:
    from modelarium.automation.daemon import Daemon

    sender = None
    if core.settings.slack_enabled:
        from modelarium.bot.slack.sender import SlackSender

        sender = SlackSender.from_settings(core.settings)
    daemon = Daemon(core, sender=sender)
    stop = threading.Event()
    _stop_on_signals(stop)
    daemon.start()
    server = _health_server(core, daemon)
    try:
        stop.wait()
    finally:
        daemon.stop()
        if server is not None:
            server.stop()  # type: ignore[attr-defined]
    return 0


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
    if with_daemon:
        from modelarium.automation.daemon import Daemon

        daemon = Daemon(core, sender=sender)
        daemon.start()
        server = _health_server(core, daemon)
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
    try:
        console.loop(core.settings.data_dir / ".shell_history")
    finally:
        stop.set()
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
    from modelarium.bot.slack.server import SlackBot, serve

    bot = SlackBot(core, deliver_outbox=not with_daemon)
    daemon = None
    if with_daemon:
        from modelarium.automation.daemon import Daemon

        daemon = Daemon(core, sender=bot.sender)
        bot.checks["scheduler"] = lambda: (
            daemon.scheduler.started,
            "leader" if daemon.scheduler.is_leader else "standby",
        )
        daemon.start()
    stop = threading.Event()
    _stop_on_signals(stop)
    try:
        serve(bot, stop)
    finally:
        if daemon is not None:
            daemon.stop()
    return 0
