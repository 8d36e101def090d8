"""A database recreated empty under running processes (issue 13, item 9).

They used to log ``UndefinedTable`` forever while ``/healthz`` said ok (and showed the database's
error text to anyone). Now health checks the schema version and the scheduler lease, reveals
nothing internal, and the process re-migrates (``auto_upgrade``) or exits cleanly.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import psycopg
import pytest
from starlette.testclient import TestClient

from modelarium.automation.daemon import Daemon
from modelarium.bot.dispatch import CommandRunner
from modelarium.core.db import migrate
from modelarium.core.db.watch import SchemaWatch
from modelarium.entrypoints.web import build_app
from tests.conftest import POSTGRES_URL, make_settings
from tests.waiting import eventually

LEAKS = ("Error", "relation", "psycopg", "sqlite3", "Undefined", "Traceback", "SELECT", "boom")


def recreate_empty(database_url: str) -> None:
    """Drop the database under the running processes and create an empty one in its place."""
    if database_url.startswith("sqlite"):
        path = database_url.removeprefix("sqlite:///")
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.remove(path + suffix)
        sqlite3.connect(path).close()
        return
    schema = database_url.rsplit("search_path%3D", 1)[1]
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        conn.execute(f'CREATE SCHEMA "{schema}"')


@pytest.fixture
def live(tmp_path, database_url, make_core):
    return make_core(
        make_settings(
            tmp_path,
            database_url,
            leader_lease=1,
            job_heartbeat=0.2,
            notify_default_channel="C0OPS",
        )
    )


def test_healthz_sees_an_empty_database_and_says_nothing_internal(live, database_url, sender):
    daemon = Daemon(live, sender=sender, workers=0)
    daemon.start()
    try:
        client = TestClient(build_app(live, checks={"scheduler": daemon.scheduler.health}))
        assert client.get("/healthz").status_code == 200
        recreate_empty(database_url)
        response = eventually(lambda: (r := client.get("/healthz")).status_code == 503 and r)
        checks = response.json()["checks"]
        assert checks["schema"] == {
            "ok": False,
            "detail": "not migrated (an empty database?)",
        }
        eventually(lambda: client.get("/healthz").json()["checks"]["scheduler"]["ok"] is False)
        scheduler = client.get("/healthz").json()["checks"]["scheduler"]
        assert scheduler == {"ok": False, "detail": "lease unavailable"}
        for leak in LEAKS:
            assert leak not in client.get("/healthz").text, leak
    finally:
        daemon.stop()


def test_a_running_process_re_migrates_a_recreated_database(live, database_url, sender):
    daemon = Daemon(live, sender=sender, workers=0)
    watch = SchemaWatch(live, interval=0.2, after_migrate=[live.tasks.sync])
    daemon.start()
    watch.start()
    try:
        client = TestClient(build_app(live, checks={"scheduler": daemon.scheduler.health}))
        recreate_empty(database_url)
        eventually(lambda: migrate.schema_state(live.db.engine) == "current")
        eventually(lambda: client.get("/healthz").status_code == 200)
        eventually(lambda: daemon.scheduler.is_leader)
        runner = CommandRunner(live)
        reply = runner.execute("role grant <@U_NEW> operator", user="U_ADMIN")
        assert reply.ok, reply.text
        assert live.audit.verify().ok
    finally:
        watch.stop()
        daemon.stop()


def test_without_auto_upgrade_the_watch_asks_the_process_to_exit(live, database_url):
    reasons: list[str] = []
    watch = SchemaWatch(live, interval=0.2, auto_upgrade=False, on_fatal=reasons.append)
    watch.start()
    try:
        recreate_empty(database_url)
        eventually(lambda: reasons)
        assert reasons == [
            "the database schema is not migrated (an empty database?); "
            "run `modelarium db upgrade`, or enable MODELARIUM_AUTO_UPGRADE"
        ]
        assert migrate.schema_state(live.db.engine) == "missing"  # nothing was created
    finally:
        watch.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
@pytest.mark.xdist_group("daemons")  # a daemon process on wall-clock timing: see test_job_queue
def test_modelarium_daemon_exits_cleanly_when_its_database_is_recreated(tmp_path: Path):
    """Process wiring, on SQLite: `modelarium daemon` notices, stops in order, exits 3."""
    db = tmp_path / "daemon.db"
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parents[3]),
        "MODELARIUM_DATA_DIR": str(tmp_path / "data"),
        "MODELARIUM_DATABASE_URL": f"sqlite:///{db}",
        "MODELARIUM_HOST": "127.0.0.1",
        "MODELARIUM_PORT": str(port),
        "MODELARIUM_LOG_FORMAT": "json",
        "MODELARIUM_AUTO_UPGRADE": "false",
        "MODELARIUM_SCHEMA_CHECK_INTERVAL": "0.3",
    }
    entry = "from modelarium.entrypoints.cli import main; raise SystemExit(main())"
    command = [sys.executable, "-c", entry]
    subprocess.run([*command, "db", "upgrade"], env=env, check=True, capture_output=True)
    process = subprocess.Popen(
        [*command, "daemon"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        eventually(lambda: _healthy(port))
        recreate_empty(f"sqlite:///{db}")
        code = process.wait(30)
    except BaseException:
        process.send_signal(signal.SIGKILL)
        raise
    output = process.stdout.read().decode()  # type: ignore[union-attr]
    assert code == 3, output
    events = [json.loads(line) for line in output.splitlines() if line.strip()]  # no raw crash
    assert [e["event"] for e in events if e["level"] == "error"][-2:] == [
        "db.schema_lost",
        "process.exit",
    ]


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
