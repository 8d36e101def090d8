"""core.hub against the fake Hub through the real huggingface_hub client, on both databases:
the database cache, stale-while-revalidate, outages, gated repos and sizing."""

from __future__ import annotations

import time

import pytest

from modelarium.core.app import Core
from modelarium.core.clients.huggingface import HubUnreachableError
from modelarium.core.clock import FakeClock
from modelarium.core.errors import NotFoundError, UsageError
from modelarium.core.hub import SearchQuery
from tests.conftest import make_settings
from tests.fakes.hf_hub import DEFAULT_TOKEN, FakeHub
from tests.unit.discovery.hubdata import (
    CUSTOM,
    GGUF,
    LLAMA_8B,
    LLAMA_70B,
    QWEN_7B,
    QWEN_AWQ,
)

pytestmark = pytest.mark.db


def _searches(hub: FakeHub) -> int:
    return len(hub.requests_to("/api/models", "GET")) - len(hub.requests_to("/api/models/"))


def test_search_is_answered_from_the_database_cache(core: Core, hub: FakeHub) -> None:
    first = core.hub.search(SearchQuery(text="qwen"))
    assert not first.cached and not first.stale
    assert [r.model.id for r in first.rows][:2] == [QWEN_7B, "Qwen/Qwen3-30B-A3B"]
    assert _searches(hub) == 1
    # Same Hub query with local filters on top: one cached listing answers all of them.
    again = core.hub.search(SearchQuery(text="qwen", quant="awq", fits="L4"))
    assert again.cached and not again.stale
    assert [r.model.id for r in again.rows] == [QWEN_AWQ]
    assert _searches(hub) == 1
    assert core.cache.hit_ratio == pytest.approx(0.5)


def test_a_second_replica_reads_the_same_cache(
    core: Core, hub: FakeHub, clock: FakeClock, make_core
) -> None:
    core.hub.search(SearchQuery(text="llama"))
    other = make_core(core.settings, clock=clock, migrate=False)
    answer = other.hub.search(SearchQuery(text="llama"))
    assert answer.cached
    assert _searches(hub) == 1


def test_stale_entries_answer_at_once_and_refresh_behind(
    core: Core, hub: FakeHub, clock: FakeClock
) -> None:
    core.hub.search(SearchQuery(text="llama"))
    hub.repo(LLAMA_8B).downloads = 9_000_000
    clock.advance(core.settings.hub_search_ttl + 1)
    hub.delay(2.0, path="/api/models")  # the refresh takes a while; the answer must not
    started = time.monotonic()
    stale = core.hub.search(SearchQuery(text="llama"))
    assert time.monotonic() - started < 1.0
    assert stale.stale and stale.note == "refreshing in the background"
    assert stale.rows[0].model.downloads == 5_000_000
    assert core.hub.wait_idle(10)
    fresh = core.hub.search(SearchQuery(text="llama"))
    assert fresh.cached and not fresh.stale
    assert fresh.rows[0].model.downloads == 9_000_000
    assert _searches(hub) == 2


def test_hub_outage_serves_the_cache_marked_stale(
    core: Core, hub: FakeHub, clock: FakeClock
) -> None:
    core.hub.model(QWEN_7B)
    clock.advance(core.settings.hub_info_ttl + 1)
    hub.go_down("refuse")
    model, fetched = core.hub.model(QWEN_7B)
    assert model.id == QWEN_7B and fetched.stale
    assert core.hub.wait_idle(10)
    _, fetched = core.hub.model(QWEN_7B)
    assert fetched.stale
    assert fetched.note is not None and fetched.note.startswith("Hugging Face is unreachable (")


def test_hub_outage_without_cache_is_one_clear_line(core: Core, hub: FakeHub) -> None:
    hub.go_down("refuse")
    with pytest.raises(HubUnreachableError, match=r"^Hugging Face is unreachable \("):
        core.hub.model(QWEN_7B)


def test_a_hanging_hub_is_cut_at_the_deadline(core: Core, hub: FakeHub) -> None:
    hub.go_down("hang")
    started = time.monotonic()
    with pytest.raises(HubUnreachableError, match=r"no answer within 2s"):
        core.hub.search(SearchQuery(text="llama"))
    assert time.monotonic() - started < 4
    hub.come_up()  # the fetch still lands and fills the cache
    assert core.hub.wait_idle(15)
    assert core.hub.search(SearchQuery(text="llama")).cached


def test_missing_model_and_revision(core: Core) -> None:
    with pytest.raises(NotFoundError, match="no such model"):
        core.hub.model("nobody/nothing")
    with pytest.raises(NotFoundError, match="no such revision"):
        core.hub.model(QWEN_7B, "v9")


def test_model_details_merge_hub_config_vllm_and_fit(core: Core, hub: FakeHub) -> None:
    report = core.hub.describe(QWEN_7B)
    assert report.model.params == 7_615_616_512
    assert report.model.license == "apache-2.0"
    assert report.config is not None and report.config["model_type"] == "qwen2"
    assert report.vllm is not None and report.vllm.name == "Qwen2ForCausalLM"
    assert report.fit is not None and report.fit.recommended is not None
    # config.json was fetched by commit through hf_hub_download and is cached.
    assert len(hub.requests_to(f"/{QWEN_7B}/resolve/*")) >= 1
    hub.clear_log()
    core.hub.describe(QWEN_7B)
    assert hub.log == []


def test_gated_config_falls_back_to_the_hub_summary_and_is_not_asked_twice(
    core: Core, hub: FakeHub
) -> None:
    report = core.hub.describe(LLAMA_8B)
    assert report.config_note is not None and "gated" in report.config_note
    assert report.fit is not None and "Hub's config summary" in report.fit.config_source
    resolves = len(hub.requests_to(f"/{LLAMA_8B}/resolve/*"))
    core.hub.fit(LLAMA_8B)
    assert len(hub.requests_to(f"/{LLAMA_8B}/resolve/*")) == resolves


def test_gated_config_with_a_token(tmp_path, database_url: str, hub: FakeHub, clock) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(tmp_path, database_url, hf_endpoint=hub.url, hf_token=DEFAULT_TOKEN)
    core = Core(settings, clock=clock)
    core.migrate()
    try:
        report = core.hub.fit(LLAMA_8B)
        assert report.config_source == "config.json"
        auth = hub.requests_to(f"/{LLAMA_8B}/resolve/*")[-1].headers.get("authorization")
        assert auth == f"Bearer {DEFAULT_TOKEN}"
    finally:
        core.hub.wait_idle(10)
        core.close()


def test_fit_sizes_each_gpu_type_and_recommends_one(core: Core) -> None:
    report = core.hub.fit(LLAMA_70B)
    by_gpu = {s.choice.name: s for s in report.sized}
    assert set(by_gpu) == {"L4", "L40S", "A100-80GB", "H100-80GB"}  # catalog: no cluster here
    assert all(s.choice.source == "catalog" for s in report.sized)
    recommended = report.recommended
    assert recommended is not None and recommended.result is not None
    assert recommended.result.tensor_parallel_size in (2, 4, 8)
    assert report.explained is recommended
    one = core.hub.fit(LLAMA_70B, gpu="L4", gpus=1)
    assert [s.choice.source for s in one.sized] == ["named"]
    assert not one.sized[0].fits and one.recommended is None
    assert one.explained is one.sized[0]


def test_fit_argument_errors_come_before_any_hub_call(core: Core, hub: FakeHub) -> None:
    hub.clear_log()
    with pytest.raises(NotFoundError, match="unknown GPU"):
        core.hub.fit(QWEN_7B, gpu="Voodoo5")
    assert hub.log == []
    with pytest.raises(UsageError, match="context"):
        core.hub.fit(QWEN_7B, gpu="L4", context="lots")


def test_repos_without_config_cannot_be_sized(core: Core) -> None:
    with pytest.raises(NotFoundError, match=r"no config\.json.*GGUF"):
        core.hub.fit(GGUF)
    report = core.hub.describe(GGUF)
    assert report.fit is None and report.fit_error and "no config.json" in report.fit_error
    assert report.model.quant == "gguf"


def test_unknown_architecture_is_reported_not_supported(core: Core) -> None:
    report = core.hub.describe(CUSTOM)
    assert report.architecture == "FancyNewForCausalLM" and report.vllm is None


def test_hot_entries_are_refreshed(core: Core, hub: FakeHub, clock: FakeClock) -> None:
    for _ in range(3):
        core.hub.search(SearchQuery(text="qwen"))
    for _ in range(2):
        core.hub.search(SearchQuery(text="llama"))
        core.hub.model(QWEN_7B)
    core.hub.search(SearchQuery(text="gemma"))  # fetched once, never read again: not hot
    hub.clear_log()
    outcome = core.hub.refresh_hot()
    assert (outcome.refreshed, outcome.failed) == (3, 0)
    assert _searches(hub) == 2
    assert len(hub.requests_to(f"/api/models/{QWEN_7B}")) == 1
    # Entries not used within the window are left to expire.
    clock.advance(7200)
    assert core.hub.refresh_hot(window=3600).refreshed == 0
