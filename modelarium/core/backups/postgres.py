"""PostgreSQL backups with the client tools: ``pg_dump`` (custom format) and ``pg_restore``.

``pg_dump`` reads one snapshot (a repeatable-read transaction), so a backup is consistent while
the daemon writes. Only Modelarium's schema (the connection's ``current_schema()``) is dumped.
A restore turns the archive into SQL with ``pg_restore`` and applies it with ``psql`` in ONE
transaction after dropping the schema, so a failed restore leaves the database as it was.

The password never appears on a command line (``PGPASSWORD`` in the child's environment).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from psycopg.conninfo import make_conninfo

from modelarium.core.audit import VerifyReport
from modelarium.core.backups.audit_check import audit_failure, verify_rows
from modelarium.core.backups.model import BackupError

TOOLS = ("pg_dump", "pg_restore", "psql")
_COPY = re.compile(r"^COPY (?P<table>\S+) \((?P<columns>[^)]*)\) FROM stdin;$")
_SCRATCH = {
    "audit_log": "id bigint, ts timestamptz, actor text, action text, target text, params jsonb, "
    "result text, detail text, prev_hash text, hash text, signature text",
    "audit_head": "id integer, last_id bigint, last_hash text",
    "alembic_version": "version_num text",
}


class PgTools:
    def __init__(self, bin_dir: Path | None) -> None:
        self._bin_dir = bin_dir

    def path(self, tool: str) -> str:
        if self._bin_dir is not None:
            candidate = self._bin_dir / tool
            found = str(candidate) if os.access(candidate, os.X_OK) else None
        else:
            found = shutil.which(tool)
        if found is None:
            where = f"in {self._bin_dir}" if self._bin_dir else "on PATH"
            raise BackupError(
                f"{tool} is not installed {where}: install the PostgreSQL client tools "
                "(postgresql-client, at least the server's version) or set MODELARIUM_PG_BIN_DIR"
            )
        return found

    def check(self) -> None:
        for tool in TOOLS:
            self.path(tool)


def connection(url: str) -> tuple[str, dict[str, str]]:
    """(libpq conninfo without the password, environment for the child process)."""
    parsed = sa.engine.make_url(url)
    params: dict[str, Any] = {
        k: v for k, v in parsed.query.items() if isinstance(v, str) and k != "driver"
    }
    conninfo = make_conninfo(
        "",
        host=parsed.host or None,
        port=parsed.port or None,
        user=parsed.username or None,
        dbname=parsed.database or None,
        **params,
    )
    env = dict(os.environ)
    env.setdefault("PGCONNECT_TIMEOUT", "10")
    if parsed.password:
        env["PGPASSWORD"] = parsed.password
    return conninfo, env


def current_schema(engine: sa.Engine) -> str:
    with engine.connect() as conn:
        schema = conn.execute(sa.text("SELECT current_schema()")).scalar()
    if not schema:
        raise BackupError("the PostgreSQL connection has no current schema (check search_path)")
    return str(schema)


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _failure(tool: str, stderr: str) -> BackupError:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error" in ln.lower() or "fatal" in ln.lower()] or lines
    text = errors[0] if errors else "no output"
    text = re.sub(r"^(pg_dump|pg_restore|psql):\s*(error:\s*)?", "", text)
    return BackupError(f"{tool} failed: {text}")


def dump(tools: PgTools, url: str, schema: str, dest: Path) -> None:
    conninfo, env = connection(url)
    command = [
        tools.path("pg_dump"),
        "--format=custom",
        f"--schema={_quote(schema)}",
        "--no-owner",
        "--no-privileges",
        f"--file={dest}",
        f"--dbname={conninfo}",
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        if "No space left" in done.stderr or "Disk quota exceeded" in done.stderr:
            raise OSError(28, "No space left on device")
        raise _failure("pg_dump", done.stderr)


def _copy_blocks(tools: PgTools, archive: Path) -> Iterator[tuple[str, str, Iterator[bytes]]]:
    """(table, columns, data lines) of the tables the verification needs, streamed."""
    command = [tools.path("pg_restore"), "--data-only", "--file=-"]
    command += [f"--table={t}" for t in _SCRATCH]
    command.append(str(archive))
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        lines = iter(proc.stdout)
        for raw in lines:
            match = _COPY.match(raw.decode("utf-8", "replace").rstrip("\n"))
            if not match:
                continue
            table = match["table"].rsplit(".", 1)[-1].strip('"')

            def data(lines: Iterator[bytes] = lines) -> Iterator[bytes]:
                for line in lines:
                    if line.rstrip(b"\n") == b"\\.":
                        return
                    yield line

            yield table, match["columns"], data()
        stderr = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
        if proc.wait() != 0:
            raise _failure("pg_restore", stderr)


def verify(
    tools: PgTools, archive: Path, engine: sa.Engine, key: bytes
) -> tuple[list[str], VerifyReport]:
    """The archive opens (its table of contents), and the audit chain in it verifies.

    Its audit rows are loaded into temporary tables of a rolled-back transaction, so they are
    read back with PostgreSQL's own types, exactly as the live log is read.
    """
    listed = subprocess.run(
        [tools.path("pg_restore"), "--list", str(archive)],
        capture_output=True,
        text=True,
        check=False,
    )
    if listed.returncode != 0:
        problem = _failure("pg_restore", listed.stderr)
        raise BackupError(f"the backup does not open as a pg_dump archive: {problem}")
    if " TABLE DATA " not in listed.stdout or " audit_log " not in listed.stdout:
        raise BackupError("the backup has no audit log: it is not a Modelarium database")
    with engine.connect() as conn, conn.begin() as transaction:
        for table, columns in _SCRATCH.items():
            conn.exec_driver_sql(f"CREATE TEMP TABLE _backup_{table} ({columns})")
        raw = conn.connection.dbapi_connection
        assert raw is not None
        with raw.cursor() as cursor:
            for table, cols, data in _copy_blocks(tools, archive):
                if table not in _SCRATCH:
                    continue
                with cursor.copy(f"COPY pg_temp._backup_{table} ({cols}) FROM STDIN") as copy:
                    for line in data:
                        copy.write(line)
        entries = [
            {**row._asdict(), "ts": row.ts.astimezone(UTC)}
            for row in conn.execute(sa.text("SELECT * FROM pg_temp._backup_audit_log ORDER BY id"))
        ]
        head_row = conn.execute(
            sa.text("SELECT last_id, last_hash FROM pg_temp._backup_audit_head WHERE id = 1")
        ).first()
        revisions = sorted(
            conn.execute(sa.text("SELECT version_num FROM pg_temp._backup_alembic_version"))
            .scalars()
            .all()
        )
        transaction.rollback()
    head = (int(head_row[0]), str(head_row[1])) if head_row else None
    report = verify_rows(entries, head, key)
    if not report.ok:
        raise audit_failure(report)
    return revisions, report


def restore(tools: PgTools, archive: Path, url: str, schema: str) -> None:
    """Drop the schema and recreate it from the archive, all in one transaction.

    ``psql`` gets ``BEGIN``, the drop, the SQL ``pg_restore`` writes, and ``COMMIT`` only once
    ``pg_restore`` has finished well: an archive that breaks half-way is rolled back.
    """
    conninfo, env = connection(url)
    with tempfile.TemporaryFile() as restore_err, tempfile.TemporaryFile() as psql_err:
        produce = subprocess.Popen(
            [tools.path("pg_restore"), "--no-owner", "--no-privileges", "--file=-", str(archive)],
            stdout=subprocess.PIPE,
            stderr=restore_err,
        )
        apply = subprocess.Popen(
            [
                tools.path("psql"),
                "--no-psqlrc",
                "--quiet",
                "--set=ON_ERROR_STOP=1",
                f"--dbname={conninfo}",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=psql_err,
            env=env,
        )
        assert produce.stdout is not None
        assert apply.stdin is not None
        try:
            apply.stdin.write(f"BEGIN;\nDROP SCHEMA IF EXISTS {_quote(schema)} CASCADE;\n".encode())
            while chunk := produce.stdout.read(1024 * 1024):
                apply.stdin.write(chunk)
            if produce.wait() == 0:
                apply.stdin.write(b"COMMIT;\n")
        except BrokenPipeError:
            pass  # psql stopped at an error; its stderr says which
        finally:
            produce.stdout.close()
            produce.wait()
            with contextlib.suppress(BrokenPipeError):
                apply.stdin.close()
            apply.wait()
        if produce.returncode != 0:
            restore_err.seek(0)
            raise _failure("pg_restore", restore_err.read().decode("utf-8", "replace"))
        if apply.returncode != 0:
            psql_err.seek(0)
            raise _failure("psql", psql_err.read().decode("utf-8", "replace"))
