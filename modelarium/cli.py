"""The ``modelarium`` command: one entry point for every process and admin task.

Errors a user can cause (a wrong setting, an unreachable database) print one line and exit
non-zero; tracebacks are for bugs only.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Callable
from typing import Any

from modelarium import __version__
from modelarium.config import ConfigError, LoadedSettings, Settings, env_name, load_settings
from modelarium.config.settings import SECRET_FIELDS, field_group
from modelarium.core.errors import ModelariumError
from modelarium.core.logging import configure_logging, get_logger

EXIT_USAGE = 2
EXIT_FAILURE = 1

log = get_logger("modelarium.cli")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelarium", description="Chat-ops for an LLM fleet: Slack bot and daemon."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    sub.add_parser("version", help="print the version")

    config = sub.add_parser("config", help="inspect configuration")
    config_sub = config.add_subparsers(dest="config_command", metavar="ACTION")
    show = config_sub.add_parser("show", help="effective settings, secrets redacted, with sources")
    show.add_argument("--json", action="store_true", help="machine-readable output")

    db = sub.add_parser("db", help="database schema")
    db_sub = db.add_subparsers(dest="db_command", metavar="ACTION")
    db_sub.add_parser("upgrade", help="apply all migrations")
    db_sub.add_parser("current", help="show applied and available revisions")

    def server(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--port", type=int, help="HTTP port (MODELARIUM_PORT)")
        p.add_argument("--host", help="bind address (MODELARIUM_HOST)")
        p.add_argument("--no-migrate", action="store_true", help="do not upgrade the schema")
        return p

    up = server("up", "front (Slack, else the terminal shell) and daemon in one process")
    up.add_argument("--user", help="terminal user when there is no Slack (default: $USER)")
    server("bot", "the Slack front: POST /slack/events, or Socket Mode with SLACK_APP_TOKEN")
    server("daemon", "scheduler (leader-elected) and job workers")

    shell = sub.add_parser("shell", help="interactive terminal front")
    shell.add_argument("--user", help="act as this user (default: $USER)")
    shell.add_argument("--no-migrate", action="store_true")

    cmd = sub.add_parser("cmd", help="run one command: modelarium cmd [--user U] [--json] -- TEXT")
    cmd.add_argument("--user", help="act as this user (default: $USER)")
    cmd.add_argument("--json", action="store_true", help='print {"ok", "text", "data"}')
    cmd.add_argument("--no-migrate", action="store_true")
    cmd.add_argument("text", nargs=argparse.REMAINDER, help="the command text")

    commands = sub.add_parser("commands", help="print the chat command reference (Markdown)")
    commands.add_argument(
        "--update-readme",
        metavar="PATH",
        help="rewrite the reference section of this README in place",
    )

    audit = sub.add_parser("audit", help="audit log tools")
    audit_sub = audit.add_subparsers(dest="audit_command", metavar="ACTION")
    audit_sub.add_parser("verify", help="check the hash chain and signatures")

    keys = sub.add_parser("keys", help="encryption keys for secrets at rest")
    keys_sub = keys.add_subparsers(dest="keys_command", metavar="ACTION")
    keys_sub.add_parser("generate", help="print a new key for MODELARIUM_ENCRYPTION_KEYS")
    keys_sub.add_parser("rotate", help="re-encrypt every stored secret under the newest key")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    if args.command == "version":
        print(f"modelarium {__version__}")
        return 0
    if args.command == "commands":
        return _commands(args)
    try:
        overrides: dict[str, Any] = {}
        if getattr(args, "port", None) is not None:
            overrides["port"] = args.port
        if getattr(args, "host", None):
            overrides["host"] = args.host
        loaded = load_settings(**overrides)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ModelariumError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    settings = loaded.settings
    interactive_log = args.command in ("shell", "cmd", "config", "db", "audit", "keys")
    if args.command in ("up", "shell") and not settings.slack_enabled:
        # The terminal is the shell's: logs go to a file so they do not interleave with it.
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        log_path = settings.data_dir / "modelarium.log"
        configure_logging(settings.log_level, "json", stream=log_path.open("a", encoding="utf-8"))
        print(f"(logs: {log_path})", file=sys.stderr)
    else:
        configure_logging("warning" if interactive_log else settings.log_level, settings.log_format)
    handler = _HANDLERS.get(args.command)
    if handler is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return handler(args, loaded)
    except ModelariumError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130


# -- handlers -------------------------------------------------------------------------------------


def _commands(args: argparse.Namespace) -> int:
    from pathlib import Path

    from modelarium.bot.reference import markdown_reference, render_into

    reference = markdown_reference()
    if args.update_readme:
        path = Path(args.update_readme)
        path.write_text(render_into(path.read_text(), reference))
        print(f"updated {path}")
    else:
        print(reference, end="")
    return 0


def _config(args: argparse.Namespace, loaded: LoadedSettings) -> int:
    if args.config_command != "show":
        print("usage: modelarium config show [--json]", file=sys.stderr)
        return EXIT_USAGE
    rows = describe_settings(loaded)
    if args.json:
        import json

        print(json.dumps(rows, indent=2, default=str))
        return 0
    current = None
    for row in rows:
        if row["group"] != current:
            current = row["group"]
            print(f"\n[{current}]")
        print(f"  {row['name']:<28} = {row['value']:<40}  ({row['source']}; {row['env']})")
    return 0


def describe_settings(loaded: LoadedSettings) -> list[dict[str, str]]:
    """Every setting with its redacted value, source and variable name (``config show``)."""
    settings = loaded.settings
    rows = []
    for name in Settings.model_fields:
        value = getattr(settings, name)
        rows.append(
            {
                "group": field_group(name),
                "name": name,
                "value": _display(name, value),
                "source": loaded.origins[name],
                "env": env_name(name),
            }
        )
    rows.append(
        {
            "group": "database",
            "name": "effective_database_url",
            "value": _redact_url(settings.effective_database_url),
            "source": "derived",
            "env": "-",
        }
    )
    rows.sort(key=lambda r: (r["group"], r["name"]))
    return rows


def _display(name: str, value: Any) -> str:
    from pydantic import BaseModel, SecretStr

    if isinstance(value, SecretStr):
        return "********" if name != "database_url" else _redact_url(value.get_secret_value())
    if value is None:
        return "(unset)"
    if isinstance(value, list) and value and isinstance(value[0], SecretStr):
        return f"[{len(value)} key(s), ********]"
    if name in SECRET_FIELDS and isinstance(value, list):
        return str([{**v.model_dump(mode="json"), "secret": "********"} for v in value])
    if isinstance(value, list) and value and isinstance(value[0], BaseModel):
        return str([v.model_dump(mode="json") for v in value])
    return str(value)


def _redact_url(url: str) -> str:
    from modelarium.core.logging import redact_text

    return redact_text(url)


def _db(args: argparse.Namespace, loaded: LoadedSettings) -> int:
    from modelarium.core.db import migrate
    from modelarium.core.db.engine import create_engine

    engine = create_engine(loaded.settings.effective_database_url)
    try:
        if args.db_command == "upgrade":
            migrate.upgrade(engine)
            print(f"database at {', '.join(sorted(migrate.current_revisions(engine)))}")
            return 0
        if args.db_command == "current":
            print(f"applied:   {', '.join(sorted(migrate.current_revisions(engine))) or '(none)'}")
            print(f"available: {', '.join(sorted(migrate.head_revisions()))}")
            return 0
    except Exception as exc:  # connection problems are user errors here
        raise ModelariumError(f"database: {_first_line(exc)}") from None
    finally:
        engine.dispose()
    print("usage: modelarium db upgrade|current", file=sys.stderr)
    return EXIT_USAGE


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def build_core(settings: Settings, *, migrate: bool = True) -> Any:
    from modelarium.core.app import Core
    from modelarium.core.db import migrate as migrations

    try:
        core = Core(settings)
        if migrate and settings.auto_upgrade:
            core.migrate()
        elif not migrations.is_up_to_date(core.db.engine):
            raise ModelariumError(
                "the database schema is not up to date; run `modelarium db upgrade`"
            )
    except ModelariumError:
        raise
    except Exception as exc:
        raise ModelariumError(f"cannot open the database: {_first_line(exc)}") from None
    return core


def local_user(explicit: str | None) -> str:
    return explicit or os.environ.get("MODELARIUM_USER") or getpass.getuser() or "local"


def _trust_local_operator(settings: Settings, user: str) -> Settings:
    """With no admins configured, the person at the terminal is the bootstrap admin.

    Only for terminal fronts on a fresh install: whoever can run them can already read the
    database and the key file, so this grants nothing new; Slack users never get it.
    """
    if settings.admins:
        return settings
    print(f"(no MODELARIUM_ADMINS set: treating the local user {user!r} as admin)", file=sys.stderr)
    return settings.model_copy(update={"admins": [user]})


def _cmd(args: argparse.Namespace, loaded: LoadedSettings) -> int:
    from modelarium.bot.dispatch import CommandRunner
    from modelarium.bot.shell.oneshot import run_once

    words = list(args.text)
    if words and words[0] == "--":
        words = words[1:]
    if not words:
        print("usage: modelarium cmd [--user U] [--json] -- TEXT", file=sys.stderr)
        return EXIT_USAGE
    user = local_user(args.user)
    settings = loaded.settings if args.user else _trust_local_operator(loaded.settings, user)
    core = build_core(settings, migrate=not args.no_migrate)
    try:
        import shlex

        text = words[0] if len(words) == 1 else shlex.join(words)
        return run_once(CommandRunner(core), text, user=user, as_json=args.json)
    finally:
        core.close()


def _shell(args: argparse.Namespace, loaded: LoadedSettings) -> int:
    from modelarium.automation.frontends import run_shell

    user = local_user(args.user)
    settings = _trust_local_operator(loaded.settings, user)
    core = build_core(settings, migrate=not args.no_migrate)
    try:
        return run_shell(core, user, with_daemon=False)
    finally:
        core.close()


def _up(args: argparse.Namespace, loaded: LoadedSettings) -> int:
    from modelarium.automation.frontends import run_up

    settings = loaded.settings
    user = local_user(getattr(args, "user", None))
    if not settings.slack_enabled:
        settings = _trust_local_operator(settings, user)
    core = build_core(settings, migrate=not args.no_migrate)
    try:
        return run_up(core, user)
    finally:
        core.close()


def _bot(args: argparse.Namespace, loaded: LoadedSettings) -> int:
    from modelarium.automation.frontends import run_bot

    core = build_core(loaded.settings, migrate=not args.no_migrate)
    try:
        return run_bot(core)
    finally:
        core.close()


def _daemon(args: argparse.Namespace, loaded: LoadedSettings) -> int:
    from modelarium.automation.frontends import run_daemon

    core = build_core(loaded.settings, migrate=not args.no_migrate)
    try:
        return run_daemon(core)
    finally:
        core.close()


def _audit(args: argparse.Namespace, loaded: LoadedSettings) -> int:
    if args.audit_command != "verify":
        print("usage: modelarium audit verify", file=sys.stderr)
        return EXIT_USAGE
    core = build_core(loaded.settings)
    try:
        report = core.audit.verify()
    finally:
        core.close()
    if report.ok:
        print(f"audit log intact: {report.checked} entries verified")
        return 0
    print(f"audit log TAMPERED: {report.problem}", file=sys.stderr)
    return EXIT_FAILURE


def _keys(args: argparse.Namespace, loaded: LoadedSettings) -> int:
    from modelarium.core.secrets import generate_key

    if args.keys_command == "generate":
        print(generate_key())
        return 0
    if args.keys_command == "rotate":
        from modelarium.core.keys import rotate_all

        core = build_core(loaded.settings)
        try:
            report = rotate_all(core)
        finally:
            core.close()
        print(report)
        return 0
    print("usage: modelarium keys generate|rotate", file=sys.stderr)
    return EXIT_USAGE


_HANDLERS: dict[str, Callable[[argparse.Namespace, LoadedSettings], int]] = {
    "config": _config,
    "db": _db,
    "cmd": _cmd,
    "shell": _shell,
    "up": _up,
    "bot": _bot,
    "daemon": _daemon,
    "audit": _audit,
    "keys": _keys,
}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
