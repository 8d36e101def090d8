"""Daemon tasks of discovery, run the way the scheduler runs them (``TaskLedger.run_tick``):
hot cache refresh, GPU inventory, vLLM architectures refresh, and the GPU compatibility alert."""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from modelarium.automation.tasks import discovery
from modelarium.config.settings import GpuProfileSetting
from modelarium.core.app import Core
from modelarium.core.clock import FakeClock
from modelarium.core.db.models.weights import WeightRecord
from modelarium.core.hub import FIT_RULE, SearchQuery
from modelarium.core.vllm import load_catalog
from tests.conftest import make_settings
from tests.fakes.hf_hub import FakeHub
from tests.fakes.http import FakeHTTPServer, Request, Response
from tests.fakes.kubernetes import FakeKubernetes
from tests.unit.discovery.hubdata import LLAMA_8B, LLAMA_70B, QWEN_7B, config

pytestmark = pytest.mark.db
GiB = 1024**3


class ArchSource(FakeHTTPServer):
    """Serves one architectures document (or an error) at /architectures.json."""

    def __init__(self) -> None:
        super().__init__()
        self.body: bytes = b""
        self.status = 200

    def handle(self, request: Request) -> Response:
        return Response(status=self.status, body=self.body, headers={})


@pytest.fixture
def arch_source() -> Iterator[ArchSource]:
    with ArchSource() as source:
        yield source


def _document(extra: str | None = None, drop: str | None = None) -> dict[str, Any]:
    text = (Path(load_catalog.__code__.co_filename).parent / "architectures.json").read_text()
    doc = json.loads(text)
    doc["generated_at"] = "2027-01-01T00:00:00Z"
    if drop:
        doc["architectures"] = [a for a in doc["architectures"] if a["name"] != drop]
    if extra:
        entry = copy.deepcopy(doc["architectures"][0])
        entry.update(name=extra, description="A brand new decoder")
        doc["architectures"].append(entry)
    return doc


def _run(core: Core, name: str):  # type: ignore[no-untyped-def]
    discovery.register(core)
    return core.tasks.run_tick(name, None, None, manual=True)


def test_hot_cache_refresh_task(core: Core, hub: FakeHub) -> None:
    for _ in range(2):
        core.hub.search(SearchQuery(text="qwen"))
    outcome = _run(core, "hub_cache_refresh")
    assert outcome.status == "ok" and outcome.summary == "refreshed 1 hot cache entry"


def test_gpu_inventory_task(
    tmp_path: Path, database_url: str, hub: FakeHub, cluster: FakeKubernetes, clock: FakeClock
) -> None:
    settings = make_settings(
        tmp_path, database_url, kubeconfig=cluster.write_kubeconfig(tmp_path / "kc")
    )
    core = Core(settings, clock=clock)
    core.migrate()
    try:
        outcome = _run(core, "gpu_inventory")
        assert outcome.status == "ok"
        assert outcome.summary == "3 GPU node(s), 2 type(s), 15/20 GPUs free; Kubernetes ok"
        cluster.fail_next(500, count=50)
        clock.advance(settings.schedule_gpu_inventory)
        failed = _run(core, "gpu_inventory")
        assert failed.status == "error" and "Kubernetes is unreachable" in (failed.summary or "")
    finally:
        core.gpus.wait_idle(10)
        core.close()


def test_archs_refresh_validates_and_replaces_the_table(
    tmp_path: Path,
    database_url: str,
    hub: FakeHub,
    arch_source: ArchSource,
    clock: FakeClock,
    make_core,
) -> None:
    settings = make_settings(
        tmp_path, database_url, vllm_architectures_url=f"{arch_source.url}/architectures.json"
    )
    core = make_core(settings, clock=clock)
    packaged = core.hub.architectures.info()
    assert packaged.origin == "packaged"
    arch_source.body = json.dumps(
        _document(extra="ShinyForCausalLM", drop="GPT2LMHeadModel")
    ).encode()
    outcome = _run(core, "vllm_archs_refresh")
    assert outcome.status == "ok"
    assert outcome.summary == f"vLLM architectures refreshed: {packaged.count} (+1 / -1)"
    store = core.hub.architectures
    store.forget()  # skip the one-minute in-process reuse
    assert store.info().origin == "refreshed"
    assert store.catalog().lookup("ShinyForCausalLM") is not None
    # Another replica reads the refreshed table from the database.
    other = Core(settings, clock=clock)
    assert other.hub.architectures.catalog().lookup("ShinyForCausalLM") is not None
    other.close()
    # A broken document is refused; the stored table stays.
    arch_source.body = json.dumps({"schema_version": 1, "architectures": []}).encode()
    clock.advance(settings.schedule_archs_refresh)
    broken = _run(core, "vllm_archs_refresh")
    assert broken.status == "error" and "architectures data" in (broken.summary or "")
    store.forget()
    assert store.catalog().lookup("ShinyForCausalLM") is not None
    arch_source.status = 503
    clock.advance(settings.schedule_archs_refresh)
    down = _run(core, "vllm_archs_refresh")
    assert down.status == "error" and "HTTP 503" in (down.summary or "")


def test_archs_refresh_without_a_source(core: Core) -> None:
    outcome = _run(core, "vllm_archs_refresh")
    assert outcome.status == "ok" and outcome.summary.startswith("no source configured")


_CONFIG_FILES = {
    LLAMA_8B: "llama-3.1-8b-instruct",
    LLAMA_70B: "llama-3.1-70b-instruct",
    QWEN_7B: "qwen2.5-7b-instruct",
}


def _install(core: Core, hub: FakeHub, repo: str, *, on_disk: bool = True) -> str:
    """A weights record as the install job leaves it (config.json in the snapshot on disk)."""
    commit = hub.repo(repo).head.sha
    location = core.settings.locations[0]
    if on_disk:
        snapshot = location.path / f"models--{repo.replace('/', '--')}" / "snapshots" / commit
        snapshot.mkdir(parents=True, exist_ok=True)
        (snapshot / "config.json").write_text(json.dumps(config(_CONFIG_FILES[repo])))
    with core.db.transaction() as session:
        session.add(
            WeightRecord(
                repo_id=repo,
                revision="main",
                commit=commit,
                location=location.name,
                status="installed",
                created_by="U_ADMIN",
                installed_at=datetime(2026, 1, 1, tzinfo=UTC),
            )
        )
    return commit


@pytest.fixture
def fleet_core(
    tmp_path: Path, database_url: str, hub: FakeHub, clock: FakeClock, make_core
) -> Iterator[Core]:
    """A fleet of 2×L40S nodes, described in settings (no Kubernetes)."""
    settings = make_settings(
        tmp_path,
        database_url,
        hf_endpoint=hub.url,
        hub_timeout=2.0,
        gpu_profiles=[GpuProfileSetting(name="L40S", memory=46068 * 1024 * 1024, count=2)],
    )
    core = make_core(settings, clock=clock)
    yield core
    core.hub.wait_idle(2)  # a download retrying a dead Hub may outlive the test: it is harmless


def _firing(core: Core) -> dict[str, str]:
    return {a.labels["model"]: a.state for a in core.alerts.active() if a.rule == FIT_RULE}


def test_fit_check_alerts_when_an_installed_model_fits_no_gpu(
    fleet_core: Core, hub: FakeHub, clock: FakeClock
) -> None:
    _install(fleet_core, hub, LLAMA_8B)
    _install(fleet_core, hub, LLAMA_70B)
    hub.clear_log()
    outcome = _run(fleet_core, "gpu_fit_check")
    assert outcome.status == "ok"
    assert outcome.summary.startswith(
        "checked 2 installed model(s) against 1 GPU type(s): 1 fit none"
    )
    assert _firing(fleet_core) == {LLAMA_70B: "firing"}
    # config.json came from the snapshots on disk: no config download from the Hub.
    assert hub.requests_to("*/resolve/*") == []
    # Bigger GPUs join the fleet: the alert resolves.
    fleet_core.settings.gpu_profiles.append(
        GpuProfileSetting(name="H100", memory=81559 * 1024 * 1024, count=8)
    )
    clock.advance(fleet_core.settings.schedule_fit_check)
    again = _run(fleet_core, "gpu_fit_check")
    assert "0 fit none" in again.summary
    assert _firing(fleet_core) == {}


def test_fit_check_without_the_snapshot_asks_the_hub_and_keeps_state_when_it_cannot(
    fleet_core: Core, hub: FakeHub, clock: FakeClock
) -> None:
    _install(fleet_core, hub, LLAMA_70B, on_disk=False)
    first = _run(fleet_core, "gpu_fit_check")
    assert "1 fit none" in first.summary
    assert _firing(fleet_core) == {LLAMA_70B: "firing"}
    # A commit's config.json stays on disk (hf_hub_download by commit needs no request) ...
    hub.go_down("refuse")
    clock.advance(fleet_core.settings.hub_stale_ttl + fleet_core.settings.hub_info_ttl + 1)
    assert "1 fit none" in _run(fleet_core, "gpu_fit_check").summary
    # ... without it and past the stale window the model is not checked, and its alert is
    # neither resolved nor duplicated.
    shutil.rmtree(fleet_core.settings.data_dir / "hub-metadata")
    clock.advance(fleet_core.settings.hub_stale_ttl + fleet_core.settings.hub_info_ttl + 1)
    second = _run(fleet_core, "gpu_fit_check")
    assert "1 not checked" in second.summary and "unreachable" in second.summary
    assert _firing(fleet_core) == {LLAMA_70B: "firing"}


def test_fit_check_with_no_gpu_types_does_nothing(core: Core, hub: FakeHub) -> None:
    _install(core, hub, LLAMA_70B)
    outcome = _run(core, "gpu_fit_check")
    assert outcome.status == "ok" and outcome.summary.startswith("no GPU types known")
    assert _firing(core) == {}


def test_gpu_inventory_task_says_unknown_not_zero_free(fleet_core: Core) -> None:
    """Issue 14 item 15: status said "0/2 GPUs free" for static profiles while `gpus` says "?":
    free is unknown there, and both say so."""
    outcome = _run(fleet_core, "gpu_inventory")
    assert outcome.status == "ok"
    assert "0/" not in (outcome.summary or "")
    assert "2 GPU(s), free unknown" in (outcome.summary or "")
    [choice] = fleet_core.gpus.snapshot().choices()
    assert choice.free is None
