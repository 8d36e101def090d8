"""The daemon in one process: /healthz and /metrics over real HTTP, `/model run` through its
workers, job cards through its outbox loop."""

from __future__ import annotations

import httpx
import pytest
from starlette.testclient import TestClient

from modelarium.automation.daemon import Daemon
from modelarium.bot.dispatch import CommandRunner
from modelarium.core.scheduling import PeriodicTask, TaskResult
from modelarium.entrypoints.processes import _health_server
from modelarium.entrypoints.web import build_app
from tests.conftest import make_settings
from tests.waiting import eventually


@pytest.fixture
def live(tmp_path, database_url, make_core):
    """A real-clock core (APScheduler runs on wall time) on each backend."""
    return make_core(
        make_settings(
            tmp_path,
            database_url,
            leader_lease=3,
            job_heartbeat=0.2,
            host="127.0.0.1",
            port=0,
            notify_default_channel="C0OPS",
        )
    )


def test_healthz_and_metrics_of_a_running_daemon(live, sender):
    runs = []
    live.tasks.register(
        PeriodicTask("web_probe", 0.2, lambda: runs.append(1) or TaskResult("ok"), "probe")
    )
    daemon = Daemon(live, sender=sender, workers=1)
    daemon.start()
    server = _health_server(live, daemon)
    assert server is not None
    base = f"http://127.0.0.1:{server.port}"
    try:
        eventually(lambda: len(runs) >= 2)
        health = httpx.get(f"{base}/healthz", timeout=5)
        assert health.status_code == 200
        body = health.json()
        assert body["ok"] is True
        assert body["checks"]["database"] == {"ok": True, "detail": live.db.dialect}
        assert body["checks"]["scheduler"] == {"ok": True, "detail": "leader"}

        metrics = httpx.get(f"{base}/metrics", timeout=5).text
        assert "modelarium_scheduler_leader 1.0" in metrics
        line = next(
            x
            for x in metrics.splitlines()
            if x.startswith('modelarium_task_runs_total{status="ok",task="web_probe"}')
        )
        assert float(line.split()[-1]) >= 2

        daemon.stop()  # the scheduler stops: the daemon is no longer healthy
        stopped = httpx.get(f"{base}/healthz", timeout=5)
        assert stopped.status_code == 503
        assert stopped.json()["checks"]["scheduler"]["ok"] is False
        assert "modelarium_scheduler_leader 0.0" in httpx.get(f"{base}/metrics", timeout=5).text
    finally:
        daemon.stop()
        server.stop()


def test_healthz_reports_an_unreachable_database(tmp_path, make_core):
    core = make_core(
        make_settings(
            tmp_path, "postgresql+psycopg://nobody@127.0.0.1:1/none", database_busy_timeout=1
        ),
        migrate=False,
    )
    client = TestClient(build_app(core, checks={"scheduler": lambda: (True, "leader")}))
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["ok"] is False
    assert body["checks"]["database"] == {"ok": False, "detail": "unreachable"}
    assert "127.0.0.1" not in response.text and "nobody" not in response.text
    assert body["checks"]["scheduler"]["ok"] is True


def test_a_crashing_health_check_is_a_failed_check_not_a_500(live):
    def broken():
        raise RuntimeError("boom")

    client = TestClient(build_app(live, checks={"scheduler": broken}))
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["scheduler"] == {"ok": False, "detail": "check failed"}
    assert "boom" not in response.text  # /healthz is public: no exception text


def test_model_run_is_executed_by_a_daemon_worker_and_its_card_delivered(live, sender):
    runs = []
    live.tasks.register(
        PeriodicTask("on_demand", 3600, lambda: runs.append(1) or TaskResult("did it"), "x")
    )
    daemon = Daemon(live, sender=sender, workers=1)
    daemon.start()
    try:
        reply = CommandRunner(live).execute("run on_demand", user="U_ADMIN", channel="C0CHAT")
        assert reply.ok, reply.text
        job_id = reply.data["job_id"]
        done = eventually(lambda: (v := live.jobs.get(job_id)).done and v)
        assert done.status == "succeeded", done.error
        assert runs == [1]
        card = eventually(
            lambda: [p for p in sender.messages("C0CHAT") if "succeeded" in p.text], timeout=5
        )
        assert card[0].text.startswith(f"✅ Job #{job_id} succeeded: run task on_demand now")
        assert {t.name: t for t in live.tasks.status()}["on_demand"].last_summary == "did it"
    finally:
        daemon.stop()
