"""Health checks and discovery over real httpx against the fake Ollama and OpenAI servers."""

from __future__ import annotations

import time

import pytest

from modelarium.automation.tasks.endpoints import register as register_task
from modelarium.core.app import Core
from modelarium.core.db.models.endpoints import EndpointCheck
from modelarium.core.endpoints import DOWN_RULE
from modelarium.core.errors import NotFoundError
from modelarium.core.rbac import Role
from tests.conftest import make_settings
from tests.fakes.http import FakeHTTPServer, Request, Response
from tests.fakes.ollama import FakeEndpointFarm, FakeOllama, FakeOpenAI
from tests.integration.endpoints.conftest import ADMIN, KEY, OWNER, TIMEOUT


def test_ollama_check_reads_version_and_discovers_models(core, fake_ollama: FakeOllama):
    fake_ollama.add_model("llama3.2")
    fake_ollama.add_model("qwen3:0.6b")
    core.endpoints.add(OWNER, "gpu-1", fake_ollama.url)
    outcome = core.endpoints.check(OWNER, "gpu-1")
    assert outcome.ok and outcome.previous_status == "unknown"
    view = outcome.endpoint
    assert view.status == "healthy" and view.server_version == fake_ollama.version
    assert view.models == ("llama3.2:latest", "qwen3:0.6b")
    assert view.models_at == core.clock.now() and view.latency_ms == pytest.approx(
        outcome.response_ms
    )
    assert ("GET", "/api/version") in fake_ollama.calls
    assert ("GET", "/api/tags") in fake_ollama.calls


@pytest.mark.parametrize("suffix", ["", "/v1", "/v1/"])
def test_openai_check_sends_the_key_as_bearer(core, fake_openai: FakeOpenAI, suffix: str):
    fake_openai.api_key = KEY
    fake_openai.set_models(["meta-llama/Llama-3.1-8B-Instruct", "llama3.2"])
    core.endpoints.add(OWNER, "vllm", fake_openai.url + suffix, "openai-compatible", api_key=KEY)
    outcome = core.endpoints.check(OWNER, "vllm")
    assert outcome.ok, outcome.error
    assert outcome.endpoint.models == ("llama3.2", "meta-llama/Llama-3.1-8B-Instruct")
    (request,) = [r for r in fake_openai.requests if r.route == "/v1/models"]
    assert request.headers["authorization"] == f"Bearer {KEY}"


def test_a_wrong_key_fails_the_check_without_showing_the_key(core, fake_openai: FakeOpenAI):
    fake_openai.api_key = KEY
    core.endpoints.add(
        OWNER, "vllm", fake_openai.url, "openai-compatible", api_key="sk-wrong-123456789"
    )
    outcome = core.endpoints.check(OWNER, "vllm")
    assert not outcome.ok
    assert outcome.error == "HTTP 401 from /v1/models: the API key was rejected or is missing"
    assert outcome.endpoint.status == "down"  # an endpoint never checked takes its first result
    core.endpoints.edit(OWNER, "vllm", clear_api_key=True)
    missing = core.endpoints.check(OWNER, "vllm")
    assert "401" in (missing.error or "")


@pytest.mark.parametrize(
    ("mode", "error"),
    [
        ("failing", "HTTP 500 from /api/version"),
        ("hanging", f"no HTTP answer: no answer within {TIMEOUT:g}s"),
        ("reset", "no HTTP answer: the connection was reset or closed before an answer"),
    ],
)
def test_failure_modes_are_one_line(core, fake_ollama: FakeOllama, mode: str, error: str):
    """As an operator sees them (viewers get one message for every kind of no answer)."""
    core.rbac.grant(OWNER, Role.OPERATOR, granted_by=ADMIN)
    core.endpoints.add(OWNER, "gpu-1", fake_ollama.url)
    fake_ollama.set_mode(mode)
    started = time.monotonic()
    outcome = core.endpoints.check(OWNER, "gpu-1")
    assert time.monotonic() - started < TIMEOUT + 1.0
    assert not outcome.ok
    assert outcome.error is not None and "\n" not in outcome.error
    assert outcome.error == error


def test_unreachable_and_wrong_type(core, fake_ollama: FakeOllama):
    core.rbac.grant(OWNER, Role.OPERATOR, granted_by=ADMIN)  # the detail, and a health path
    core.endpoints.add(OWNER, "nothing", "http://127.0.0.1:9")
    refused = core.endpoints.check(OWNER, "nothing")
    assert not refused.ok and refused.error.startswith("no HTTP answer: cannot connect")
    core.endpoints.add(OWNER, "wrong", fake_ollama.url, "openai-compatible")
    fake_ollama.add_model("llama3.2")
    # Ollama also serves /v1/models, so an OpenAI-compatible check of it passes...
    assert core.endpoints.check(OWNER, "wrong").ok
    # ...while a custom health path that is not there fails.
    core.endpoints.add(OWNER, "custom", fake_ollama.url, "custom", health_path="/healthz")
    custom = core.endpoints.check(OWNER, "custom")
    assert not custom.ok and custom.error == "HTTP 404 from /healthz"
    core.endpoints.edit(OWNER, "custom", health_path="/api/tags")
    ok = core.endpoints.check(OWNER, "custom")
    assert ok.ok and ok.endpoint.models == ("llama3.2:latest",)


def test_status_changes_only_after_consecutive_results(core, fake_ollama: FakeOllama):
    core.endpoints.add(OWNER, "gpu-1", fake_ollama.url)
    assert core.endpoints.check_all().statuses == {"healthy": 1}
    fake_ollama.set_mode("failing")
    for failures in (1, 2):
        report = core.endpoints.check_all()
        assert report.statuses == {"healthy": 1} and not report.changes
        assert core.endpoints.get(OWNER, "gpu-1").consecutive_failures == failures
    report = core.endpoints.check_all()
    assert report.changes == [("gpu-1", "healthy", "down")]
    fake_ollama.set_mode("healthy")
    assert core.endpoints.check_all().statuses == {"down": 1}
    report = core.endpoints.check_all()
    assert report.changes == [("gpu-1", "down", "healthy")]
    view = core.endpoints.get(OWNER, "gpu-1")
    assert view.status_changed_at == core.clock.now() and view.last_error is None


def _firing(core) -> list[str]:
    return [a.fingerprint for a in core.alerts.active() if a.state == "firing"]


def test_alerts_fire_and_resolve_through_the_daemon_task(core, fake_ollama: FakeOllama):
    register_task(core)
    core.tasks.sync()
    core.endpoints.add(OWNER, "gpu-1", fake_ollama.url)

    def tick() -> str:
        core.clock.advance(core.settings.schedule_health_checks)
        outcome = core.tasks.run_tick("health_checks", None, None)
        assert outcome.status == "ok", outcome.summary
        return outcome.summary or ""

    assert tick().startswith("checked 1 endpoint(s)")
    # flapping: failures that never reach the threshold change nothing and alert nobody
    for mode in ("failing", "healthy", "failing", "failing", "healthy"):
        fake_ollama.set_mode(mode)
        tick()
    assert core.endpoints.get(OWNER, "gpu-1").status == "healthy"
    assert _firing(core) == []
    fake_ollama.set_mode("failing")
    for _ in range(3):
        summary = tick()
    assert "gpu-1 healthy->down" in summary
    assert _firing(core) == [f"{DOWN_RULE}{{endpoint=gpu-1}}"]
    (alert,) = core.alerts.active()
    assert alert.summary == "Endpoint gpu-1 is down"
    fake_ollama.set_mode("healthy")
    tick()
    assert _firing(core) == [f"{DOWN_RULE}{{endpoint=gpu-1}}"]  # 1 success of 2
    tick()
    assert _firing(core) == []


def test_a_manual_check_that_changes_the_status_alerts_too(core, fake_ollama: FakeOllama):
    core.endpoints.add(OWNER, "gpu-1", fake_ollama.url)
    fake_ollama.set_mode("failing")
    assert core.endpoints.check(OWNER, "gpu-1").changed
    assert _firing(core) == [f"{DOWN_RULE}{{endpoint=gpu-1}}"]
    # removing the endpoint resolves its alert at once
    core.endpoints.remove(OWNER, "gpu-1")
    assert _firing(core) == []


def test_history_is_bounded_and_newest_first(core, fake_ollama: FakeOllama):
    core.endpoints.add(OWNER, "gpu-1", fake_ollama.url)
    for i in range(8):
        fake_ollama.set_mode("failing" if i == 6 else "healthy")
        core.endpoints.check_all() if i % 2 else core.endpoints.check(OWNER, "gpu-1")
    history = core.endpoints.history(OWNER, "gpu-1", limit=50)
    assert [c.seq for c in history] == [8, 7, 6, 5, 4]  # health_history = 5
    assert [c.ok for c in history] == [True, False, True, True, True]
    assert [c.manual for c in history] == [False, True, False, True, False]
    assert history[1].error == "HTTP 500 from /api/version"
    with core.db.transaction() as session:
        assert session.query(EndpointCheck).count() == 5


def test_discovery_follows_the_endpoint(core, fake_ollama: FakeOllama):
    fake_ollama.add_model("llama3.2")
    core.endpoints.add(OWNER, "gpu-1", fake_ollama.url)
    core.endpoints.check_all()
    assert [e.name for e in core.endpoints.where(OWNER, "llama3.2")] == ["gpu-1"]
    assert [e.name for e in core.endpoints.where(OWNER, "LLAMA3.2:latest")] == ["gpu-1"]
    fake_ollama.remove_model("llama3.2")
    fake_ollama.add_model("qwen3:0.6b")
    core.endpoints.check_all()
    assert core.endpoints.where(OWNER, "llama3.2") == []
    assert core.endpoints.get(OWNER, "gpu-1").models == ("qwen3:0.6b",)
    # a failed check keeps what was discovered before
    fake_ollama.set_mode("failing")
    core.endpoints.check_all()
    assert core.endpoints.get(OWNER, "gpu-1").models == ("qwen3:0.6b",)


def test_disabled_endpoints_are_not_checked(core, fake_ollama: FakeOllama):
    core.endpoints.add(OWNER, "gpu-1", fake_ollama.url)
    core.endpoints.edit(OWNER, "gpu-1", active=False)
    assert core.endpoints.check_all().checked == 0
    assert fake_ollama.calls == []
    core.endpoints.edit(OWNER, "gpu-1", active=True)
    assert core.endpoints.check_all().checked == 1


class _Redirector(FakeHTTPServer):
    """Answers every request with a redirect to ``target`` (which records what it gets)."""

    target = ""

    def handle(self, request: Request) -> Response:
        return Response(status=302, headers={"Location": self.target + request.path})


def test_redirects_are_not_followed_so_the_key_stays_home(core, fake_openai: FakeOpenAI):
    with _Redirector() as redirector:
        redirector.target = fake_openai.url
        core.endpoints.add(OWNER, "moved", redirector.url, "openai-compatible", api_key=KEY)
        outcome = core.endpoints.check(OWNER, "moved")
    assert not outcome.ok
    assert outcome.error == (
        f"HTTP 302 from /v1/models: redirects to {fake_openai.url}/v1/models; fix the URL"
    )
    assert fake_openai.requests == []


@pytest.fixture
def roomy_core(tmp_path, database_url, clock, make_core) -> Core:
    """A core whose timeout leaves room for a loaded CI machine (the bound is what is tested)."""
    return make_core(
        make_settings(
            tmp_path, database_url, health_timeout=3.0, endpoint_allowlist=["127.0.0.0/8"]
        ),
        clock=clock,
    )


def test_one_cycle_with_hanging_endpoints_stays_within_twice_the_timeout(
    roomy_core: Core, fake_endpoint_farm: FakeEndpointFarm
):
    core = roomy_core
    timeout = core.settings.health_timeout
    endpoints = []
    for i in range(60):
        kind = "openai" if i % 4 == 0 else "ollama"
        options = {"api_key": KEY, "models": ["llama3.2"]} if kind == "openai" else {}
        endpoint = fake_endpoint_farm.add(kind, **options)
        if kind == "ollama":
            endpoint.add_model("llama3.2")
        if i % 10 == 3:
            endpoint.set_mode("hanging")
        if i % 10 == 7:
            endpoint.set_mode("slow", slow_delay=timeout / 5)
        endpoints.append(endpoint)
        core.endpoints.add(
            ADMIN,
            f"e{i}",
            endpoint.url,
            "openai-compatible" if kind == "openai" else "ollama",
            api_key=KEY if kind == "openai" else None,
        )
    report = core.endpoints.check_all()
    assert report.checked == 60 and report.failed == 6
    assert report.probe_seconds < 2 * timeout, report.summary
    hanging = {e.name for e in core.endpoints.list(ADMIN) if e.last_error}
    assert hanging == {f"e{i}" for i in range(60) if i % 10 == 3}
    assert {e.last_error for e in core.endpoints.list(ADMIN) if e.last_error} == {
        f"no HTTP answer: no answer within {timeout:g}s"
    }
    # the next cycle checks the suspects first
    fake_endpoint_farm[3].set_mode("healthy")
    report = core.endpoints.check_all()
    assert report.failed == 5 and report.probe_seconds < 2 * timeout


def test_pick_prefers_the_fastest_healthy_endpoint_and_skips_cooling_ones(core):
    with FakeOllama() as fast, FakeOllama(mode="slow", slow_delay=0.15) as slow:
        for fake in (fast, slow):
            fake.add_model("llama3.2")
        core.endpoints.add(OWNER, "fast", fast.url)
        core.endpoints.add(OWNER, "slow", slow.url)
        core.endpoints.check_all()
        picked = core.endpoints.pick("llama3.2", OWNER)
        assert picked.chosen.name == "fast"
        assert "fastest recent response" in picked.reason and "slow" in picked.reason
        assert core.endpoints.get(OWNER, "fast").use_count == 1
        assert core.endpoints.get(OWNER, "fast").last_used_at == core.clock.now()

        fast.set_mode("failing")
        assert not core.endpoints.check(OWNER, "fast").ok  # one failure: healthy, cooling down
        assert core.endpoints.get(OWNER, "fast").status == "healthy"
        picked = core.endpoints.pick("llama3.2", OWNER)
        assert picked.chosen.name == "slow"
        (skipped,) = [c for c in picked.candidates if c.endpoint.name == "fast"]
        assert not skipped.eligible and skipped.reason == "cooling down for 60s after a failure"

        core.clock.advance(61)
        assert core.endpoints.pick("llama3.2", OWNER).chosen.name == "fast"

        slow.set_mode("failing")
        core.endpoints.check(OWNER, "slow")
        core.endpoints.check(OWNER, "fast")
        with pytest.raises(NotFoundError, match=r"no healthy endpoint serves 'llama3\.2' now"):
            core.endpoints.pick("llama3.2", OWNER)
