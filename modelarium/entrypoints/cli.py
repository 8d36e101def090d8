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

log = get_logger("modelarium.entrypoints.cli")


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

    cmd = sub.add_parser(
        "cmd",
        help="run one command: modelarium cmd [--user U | --server URL] [--json] -- TEXT",
    )
    cmd.add_argument("--user", help="act as this user (default: $USER)")
    cmd.add_argument("--json", action="store_true", help='print {"ok", "text", "data"}')
    cmd.add_argument("--no-migrate", action="store_true")
    cmd.add_argument(
        "--server",
        metavar="URL",
        help="run it on a Modelarium server through its HTTP API (no database needed); the "
        "token comes from MODELARIUM_TOKEN or --token-file",
    )
    cmd.add_argument("--token-file", metavar="PATH", help="read the API token from this file")
    cmd.add_argument(
        "--timeout", type=float, default=300.0, help="seconds to wait for the server (--server)"
    )
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

    catalog = sub.add_parser("catalog", help="the model catalog in Git, offline (no database)")
    catalog_sub = catalog.add_subparsers(dest="catalog_command", metavar="ACTION")
    validate = catalog_sub.add_parser(
        "validate", help="check every entry of a checkout of the catalog; exit 1 on errors"
    )
    validate.add_argument("dir", help="the checkout (its models folder is found inside)")
    validate.add_argument(
        "--path", help="folder of the entries in the checkout (MODELARIUM_CATALOG_PATH)"
    )
    validate.add_argument(
        "--hub",
        action="store_true",
        help="also ask the Hub (HF_ENDPOINT) that each repo and commit exist and the licence "
        "matches; without it nothing goes over the network",
    )
    validate.add_argument("--json", action="store_true", help="machine-readable output")
    catalog_sub.add_parser("schema", help="print the JSON Schema of a catalog entry")

    backup = sub.add_parser("backup", help="verified backups of the database")
    backup_sub = backup.add_subparsers(dest="backup_command", metavar="ACTION")
    create = backup_sub.add_parser("create", help="write a verified, checksummed backup now")
    create.add_argument(
        "--to",
        metavar="LOCATION",
        help="a folder, or a storage location's name (default: MODELARIUM_BACKUP_LOCATION)",
    )
    create.add_argument("--json", action="store_true", help="machine-readable output")
    listing = backup_sub.add_parser("list", help="the backups in a location, newest first")
    listing.add_argument("--from", dest="source", metavar="LOCATION", help="where to look")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    restore = backup_sub.add_parser(
        "restore", help="replace the database with a verified backup (stop bot and daemon first)"
    )
    restore.add_argument("name", help="the backup's name (from `backup list`)")
    restore.add_argument("--from", dest="source", metavar="LOCATION", help="where it is")
    restore.add_argument(
        "--force", action="store_true", help="replace a database that is not empty"
    )

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
    if args.command == "cmd" and (args.server or args.token_file):
        return _remote_cmd(args)
    if args.command == "catalog" and args.catalog_command == "schema":
        from modelarium.core.catalog import schema_text

        print(schema_text(), end="")
        return 0
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
    missing = missing_settings(args.command, settings)
    if missing:
        # before anything touches the data dir: no database, no secrets file, no log lines
        print(f"error: {missing}", file=sys.stderr)
        return EXIT_USAGE
    interactive_log = args.command in (
        "shell",
        "cmd",
        "config",
        "db",
        "audit",
        "keys",
        "catalog",
        "backup",
    )
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


def missing_settings(command: str, settings: Settings) -> str | None:
    """What a server process cannot start without, as one line (None: it can start).

    Checked before the database, the secrets file or the logs are touched, so a wrong start
    leaves nothing behind and says only what to set.
    """
    if command not in ("bot", "up", "daemon"):
        return None
    token = settings.slack_bot_token is not None
    secret = settings.slack_signing_secret is not None
    socket = settings.slack_app_token is not None
    if command == "bot" and not token:
        return (
            "SLACK_BOT_TOKEN is not set: `modelarium bot` is the Slack front and needs "
            "SLACK_BOT_TOKEN with SLACK_SIGNING_SECRET (or SLACK_APP_TOKEN for Socket Mode); "
            "`modelarium up` runs without Slack"
        )
    if not token and (secret or socket):
        given = " and ".join(
            name
            for name, present in (("SLACK_SIGNING_SECRET", secret), ("SLACK_APP_TOKEN", socket))
            if present
        )
        return f"{given} set but SLACK_BOT_TOKEN is not: set it too, or unset {given}"
    if command in ("bot", "up") and token and not (secret or socket):
        return (
            "SLACK_SIGNING_SECRET is not set; the Slack front needs it, unless SLACK_APP_TOKEN "
            "selects Socket Mode"
        )
    return None


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
        from modelarium.core.logging import redact_text

        raise ModelariumError(
            f"cannot open the database: {redact_text(_first_line(exc))}"
        ) from None
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


def _remote_cmd(args: argparse.Namespace, out: Any = None) -> int:
    """``cmd --server URL``: the same command, output and exit code, through the HTTP API.

    Settings and the database are not touched: a CI job needs only the URL and a token.
    """
    import shlex
    from pathlib import Path

    import httpx

    from modelarium.bot.shell.oneshot import print_envelope

    out = out or sys.stdout
    words = list(args.text)
    if words and words[0] == "--":
        words = words[1:]
    if not args.server or not words:
        print(
            "usage: modelarium cmd --server URL [--token-file PATH] [--json] -- TEXT",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if args.user:
        print(
            "error: --user does not apply with --server: the token says who you are",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if args.token_file:
        try:
            token = Path(args.token_file).expanduser().read_text().strip()
        except OSError as exc:
            print(f"error: cannot read {args.token_file}: {exc.strerror or exc}", file=sys.stderr)
            return EXIT_USAGE
    else:
        token = os.environ.get("MODELARIUM_TOKEN", "").strip()
    if not token:
        print("error: no API token: set MODELARIUM_TOKEN or pass --token-file", file=sys.stderr)
        return EXIT_USAGE
    text = words[0] if len(words) == 1 else shlex.join(words)
    body: dict[str, str] = {"text": text}
    try:
        typed = shlex.split(text)
    except ValueError:
        typed = words
    if "-" in typed:  # `--api-key -`: the secret is on our standard input, sent in the body
        body["stdin"] = getpass.getpass("") if sys.stdin.isatty() else sys.stdin.read()
    base = args.server.rstrip("/")
    url = (base if base.endswith("/api/v1") else base + "/api/v1") + "/commands"
    try:
        response = httpx.post(
            url,
            json=body,
            headers={"Authorization": f"Bearer {token}", "User-Agent": f"modelarium/{__version__}"},
            timeout=args.timeout,
        )
    except httpx.HTTPError as exc:
        print(f"error: cannot reach {base}: {_first_line(exc)}", file=sys.stderr)
        return EXIT_FAILURE
    try:
        answer = response.json()
        ok, text_out, data = bool(answer["ok"]), str(answer["text"]), dict(answer["data"])
    except (ValueError, KeyError, TypeError):
        snippet = response.text.strip().splitlines()[0][:200] if response.text.strip() else ""
        print(
            f"error: {base} answered {response.status_code}, not Modelarium's API: {snippet}",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    saved = _save_files(answer.get("files") or [])
    return print_envelope(ok, text_out, data, saved, as_json=args.json, out=out)


def _save_files(files: list[dict[str, Any]]) -> list[str]:
    """Files a remote command produced, written to the current directory (names only)."""
    import base64
    from pathlib import Path

    saved = []
    for entry in files:
        name = Path(str(entry.get("filename") or "download")).name or "download"
        path = Path.cwd() / name
        path.write_bytes(base64.b64decode(str(entry.get("content_base64") or "")))
        saved.append(str(path.resolve()))
    return saved


def _shell(args: argparse.Namespace, loaded: LoadedSettings) -> int:
    from modelarium.entrypoints.processes import run_shell

    user = local_user(args.user)
    settings = _trust_local_operator(loaded.settings, user)
    core = build_core(settings, migrate=not args.no_migrate)
    try:
        return run_shell(core, user, with_daemon=False)
    finally:
        core.close()


def _up(args: argparse.Namespace, loaded: LoadedSettings) -> int:
    from modelarium.entrypoints.processes import run_up

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
    from modelarium.entrypoints.processes import run_bot

    core = build_core(loaded.settings, migrate=not args.no_migrate)
    try:
        return run_bot(core)
    finally:
        core.close()


def _daemon(args: argparse.Namespace, loaded: LoadedSettings) -> int:
    from modelarium.entrypoints.processes import run_daemon

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


def _catalog(args: argparse.Namespace, loaded: LoadedSettings) -> int:
    """``catalog validate DIR``: offline, for the catalog repository's own CI."""
    import json
    from pathlib import Path

    from modelarium.core.catalog import Checks, validate_dir
    from modelarium.core.vllm import load_catalog

    if args.catalog_command != "validate":
        print("usage: modelarium catalog validate DIR [--hub] [--json] | schema", file=sys.stderr)
        return EXIT_USAGE
    root = Path(args.dir)
    if not root.is_dir():
        print(f"error: {root} is not a directory", file=sys.stderr)
        return EXIT_USAGE
    settings = loaded.settings
    hub = None
    if args.hub:
        from modelarium.core.catalog.hubcheck import direct_hub_lookup

        hub = direct_hub_lookup(settings)
    checks = Checks(architectures=load_catalog(), hub=hub)
    path = settings.catalog_path if args.path is None else args.path
    report = validate_dir(root, checks, path)
    if args.json:
        print(
            json.dumps(
                {
                    "ok": not report.errors,
                    "folder": str(report.folder),
                    "files": report.files,
                    "valid": report.files - len({i.file for i in report.errors}),
                    "issues": [i.to_json() for i in report.issues],
                },
                indent=2,
            )
        )
    else:
        for issue in report.issues:
            print(issue)
        bad = len({i.file for i in report.errors})
        skipped = "" if args.hub else "; Hub not asked (--hub)"
        print(
            f"{report.files} entr{'y' if report.files == 1 else 'ies'} in {report.folder}: "
            f"{report.files - bad} valid, {bad} with errors, {len(report.warnings)} warning(s)"
            f"{skipped}; storage and the fit against the GPU inventory are checked by the bot"
        )
    return EXIT_FAILURE if report.errors else 0


def _backup(args: argparse.Namespace, loaded: LoadedSettings) -> int:
    import json

    from modelarium.config.units import format_size

    action = args.backup_command
    if action not in ("create", "list", "restore"):
        print("usage: modelarium backup create [--to LOCATION] | list | restore NAME [--force]",
              file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
    if action == "restore":
        # The database may be empty or behind: no migration before the restore (it migrates after).
        from modelarium.core.app import Core

        try:
            core = Core(loaded.settings)
        except ModelariumError:
            raise
        except Exception as exc:
            from modelarium.core.logging import redact_text

            reason = redact_text(_first_line(exc))
            raise ModelariumError(f"cannot open the database: {reason}") from None
    else:
        core = build_core(loaded.settings)
    try:
        if action == "create":
            info = core.backups.create(local_user(None), to=args.to)
            if args.json:
                print(json.dumps(info.to_json(), indent=2))
            else:
                print(
                    f"backup {info.name} written to {core.backups.target(args.to).label}: "
                    f"{format_size(info.size)}, sha256 {info.sha256}, {info.audit_entries} audit "
                    f"entries verified ({info.duration:.1f}s)"
                )
            return 0
        if action == "list":
            infos = core.backups.list(args.source)
            retention = core.backups.retention(args.source)
            if args.json:
                rows = [{**i.to_json(), "kept": retention.keep.get(i.name, [])} for i in infos]
                print(json.dumps(rows, indent=2))
                return 0
            label = core.backups.target(args.source).label
            if not infos:
                print(f"no backups in {label}")
                return 0
            print(f"{len(infos)} backup(s) in {label}:")
            for i in infos:
                kept = ", ".join(retention.keep.get(i.name, ["pruned at the next run"]))
                print(
                    f"  {i.name}  {i.created_at:%Y-%m-%d %H:%M:%S}Z  {i.kind:<9}  "
                    f"{format_size(i.size):>10}  {i.audit_entries:>7} audit entries  "
                    f"sha256 {i.sha256[:16]}  ({kept})"
                )
            return 0
        report = core.backups.restore(
            args.name, local_user(None), where=args.source, force=args.force
        )
        replaced = f", replacing {report.replaced} rows" if report.replaced else ""
        upgraded = (
            f"; schema upgraded {','.join(report.info.revisions)} -> "
            f"{','.join(report.revisions_after)}"
            if sorted(report.info.revisions) != report.revisions_after
            else ""
        )
        print(
            f"restored {report.info.name} ({report.info.created_at:%Y-%m-%d %H:%M:%S}Z){replaced}: "
            f"{report.audit_entries} audit entries verified{upgraded}"
        )
        return 0
    finally:
        core.close()


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
    "catalog": _catalog,
    "backup": _backup,
}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
