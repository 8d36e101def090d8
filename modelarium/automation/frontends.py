"""Process wiring for `modelarium up|bot|daemon|shell` (filled in as fronts land)."""

from __future__ import annotations

from modelarium.core.app import Core
from modelarium.core.errors import NotBuiltError


def run_shell(core: Core, user: str, *, with_daemon: bool) -> int:
    from modelarium.bot.dispatch import CommandRunner
    from modelarium.bot.shell.console import Console

    console = Console(CommandRunner(core), user)
    console.loop(core.settings.data_dir / ".shell_history")
    return 0


def run_up(core: Core, user: str) -> int:
    return run_shell(core, user, with_daemon=True)


def run_bot(core: Core) -> int:
    raise NotBuiltError("the Slack front is not built yet")


def run_daemon(core: Core) -> int:
    raise NotBuiltError("the daemon is not built yet")
