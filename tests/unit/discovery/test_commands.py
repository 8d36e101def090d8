"""`/model search|info|fit|archs|arch|gpus` through the command runner, as any front calls them."""

from __future__ import annotations

import pytest

from modelarium.bot.dispatch import CommandRunner
from modelarium.core.app import Core
from modelarium.core.clock import FakeClock
from modelarium.core.fit.parsing import format_gib, format_params
from modelarium.core.messages import Code, Details, Table
from tests.fakes.hf_hub import FakeHub
from tests.unit.discovery.hubdata import GGUF, LLAMA_8B, LLAMA_70B, QWEN_7B, QWEN_AWQ, QWEN_MOE

pytestmark = pytest.mark.db
USER = "U_VIEWER"


def _buttons(reply) -> list[str]:  # type: ignore[no-untyped-def]
    return [b.command for b in reply.message.all_buttons]


def _page_buttons(reply) -> list[str]:  # type: ignore[no-untyped-def]
    """A search's page buttons (its rows' next-step buttons are tested in test_next_steps)."""
    return [c for c in _buttons(reply) if c.startswith("search ")]


def test_search_pages_with_buttons_that_rerun_the_query(
    runner: CommandRunner, hub: FakeHub
) -> None:
    reply = runner.execute("search tiny --license apache-2.0 --sort likes", user=USER)
    assert reply.ok, reply.text
    assert (reply.data["page"], reply.data["pages"], reply.data["total"]) == (1, 3, 24)
    assert len(reply.data["results"]) == 10
    first = reply.data["results"][0]
    assert first["id"].startswith("filler/tiny-llama-")
    assert (first["vllm"], first["license"], first["params"]) == (
        "yes",
        "apache-2.0",
        1_100_048_384,
    )
    assert _page_buttons(reply) == ["search tiny --license apache-2.0 --sort likes --page 2"]
    second = runner.execute(_page_buttons(reply)[0], user=USER)
    assert second.data["page"] == 2
    assert _page_buttons(second) == [
        "search tiny --license apache-2.0 --sort likes --page 1",
        "search tiny --license apache-2.0 --sort likes --page 3",
    ]
    assert second.data["cached"] is True  # paging never asks the Hub again
    assert len(hub.requests_to("/api/models", "GET")) == 1
    beyond = runner.execute("search tiny --license apache-2.0 --page 99", user=USER)
    assert not beyond.ok and beyond.outcome == "usage"
    assert "there is no page 99; 24 result(s) fit on 3 page(s)" in beyond.text


def test_search_text_with_spaces_survives_the_button_twin(runner: CommandRunner) -> None:
    reply = runner.execute('search "tiny-llama-0" --max-params 2B', user=USER)
    assert reply.ok and reply.data["total"] == 10
    assert _page_buttons(reply) == []
    table = next(b for b in reply.message.blocks if isinstance(b, Table))
    assert table.columns == ("model", "params", "license", "downloads", "vLLM")


def test_search_with_fit_and_quant_filters(runner: CommandRunner) -> None:
    reply = runner.execute("search qwen --fits 1xL4", user=USER)
    assert reply.ok
    ids = [r["id"] for r in reply.data["results"]]
    assert QWEN_7B in ids and QWEN_AWQ in ids and "Qwen/Qwen3-30B-A3B" not in ids
    assert {r["fits"] for r in reply.data["results"]} == {"yes"}
    table = next(b for b in reply.message.blocks if isinstance(b, Table))
    assert table.columns[-1] == "fits L4"
    node = runner.execute("search qwen --fits L4", user=USER)  # a GPU name means a node of 8
    assert "Qwen/Qwen3-30B-A3B" in [r["id"] for r in node.data["results"]]
    assert "fits 8× L4" in node.text
    awq = runner.execute("search --quant awq", user=USER)
    assert [r["id"] for r in awq.data["results"]] == [QWEN_AWQ]
    gguf = runner.execute("search --quant gguf", user=USER)
    assert [r["id"] for r in gguf.data["results"]] == [GGUF]
    arch = runner.execute("search --arch Qwen3MoeForCausalLM", user=USER)
    assert [r["id"] for r in arch.data["results"]] == ["Qwen/Qwen3-30B-A3B"]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("search --quant int3", "--quant must be one of"),
        ("search --max-params huge", "not a model size"),
        ("search --sort stars", "--sort must be one of"),
        ("search --fits Voodoo5", "unknown GPU"),
        ("info not/a/repo", "not a Hugging Face model id"),
        ("fit org/x --context lots", "not a context length"),
        ("fit org/x --gpus 0", "positive whole number"),
        ("arch", "missing <name>"),
    ],
)
def test_bad_input_is_one_line_plus_usage(runner: CommandRunner, text: str, error: str) -> None:
    reply = runner.execute(text, user=USER)
    assert not reply.ok
    assert error in reply.data["error"] and "\n" not in reply.data["error"]
    assert "Traceback" not in reply.text


def test_info_card(runner: CommandRunner) -> None:
    reply = runner.execute(f"info {QWEN_7B}", user=USER)
    assert reply.ok, reply.text
    text = reply.text
    for needle in (
        "*Config*",
        "*vLLM*: ✅ `Qwen2ForCausalLM`",
        "*Catalog*",
        "not in the catalog; `/model catalog add Qwen/Qwen2.5-7B-Instruct` drafts an entry",
    ):
        assert needle in text
    assert "Fit per GPU type" in text
    code = next(b for b in reply.message.blocks if isinstance(b, Code))
    assert code.text.startswith(f"vllm serve {QWEN_7B} --max-model-len ")
    assert _buttons(reply) == [f"fit {QWEN_7B} --gpu L4", "arch Qwen2ForCausalLM"]
    data = reply.data
    assert data["model"]["params"] == 7_615_616_512 and data["model"]["license"] == "apache-2.0"
    assert data["vllm_supported"] is True and data["catalog"] is None
    assert {f["gpu"] for f in data["fit"]} == {"L4", "L40S", "A100-80GB", "H100-80GB"}
    assert data["recommended"]["gpu"] == "L4"


def test_info_of_a_gguf_repo_says_why_it_cannot_be_sized(runner: CommandRunner) -> None:
    reply = runner.execute(f"info {GGUF}", user=USER)
    assert reply.ok
    assert "no config.json" in reply.text and reply.data["fit"] is None


def test_fit_card_has_the_arithmetic_in_one_details_section(runner: CommandRunner) -> None:
    reply = runner.execute(f"fit {LLAMA_8B} --gpu L4 --gpus 1 --context 32k", user=USER)
    assert reply.ok, reply.text
    assert reply.data["fits"] is False
    details = [b for b in reply.message.blocks if isinstance(b, Details)]
    assert len(details) == 1 and details[0].title == "Arithmetic (L4)"
    assert any(line.startswith("KV per token") for line in details[0].lines)
    assert any("kv-cache-dtype fp8" in a for a in reply.data["advice"])
    fits = runner.execute(f"fit {LLAMA_70B} --gpu H100 --context 32k", user=USER)
    assert fits.data["fits"] is True
    assert fits.data["command"].startswith(f"vllm serve {LLAMA_70B} ")
    assert "--tensor-parallel-size" in fits.data["command"]


def test_fit_json_carries_every_figure_the_text_shows(runner: CommandRunner) -> None:
    """A script reads the parameter counts and the arithmetic's numbers from data, not text."""
    reply = runner.execute(f"fit {QWEN_MOE} --gpu H100 --context 32k", user=USER)
    assert reply.ok and reply.data["fits"], reply.text
    figures = reply.data["figures"]
    params, memory = figures["params"], figures["memory_per_gpu"]
    arithmetic = "\n".join(reply.data["arithmetic"])
    assert params["moe"] and params["active"] < params["total"]
    assert f"params = {params['total']:,}" in arithmetic
    assert (
        f"active per token = {format_params(params['active'])} of {format_params(params['total'])}"
    ) in arithmetic
    assert format_params(params["total"]) in reply.text  # the Parameters field
    for key in ("budget_bytes", "weights_bytes", "overhead_bytes", "activations_bytes"):
        assert format_gib(memory[key]) in arithmetic, key
    assert f"= {format_gib(memory['kv_available_bytes'])}" in arithmetic
    assert (
        f"KV for one {figures['context']['wanted']:,}-token sequence = "
        f"{format_gib(memory['kv_bytes_for_context'])}"
    ) in arithmetic
    assert f"{format_gib(memory['cross_check_bytes'])} per GPU" in arithmetic
    assert f"{figures['max_concurrency']:.1f}×" in reply.text
    assert f"{figures['context']['served']:,} of {figures['context']['model_max']:,}" in reply.text
    assert figures["tensor_parallel_size"] == memory["tensor_parallel_size"]
    row = next(f for f in reply.data["fit"] if f["gpu"] == figures["gpu"]["name"])
    assert (row["params_total"], row["params_active"]) == (params["total"], params["active"])


def test_fit_on_every_known_gpu_recommends_one(runner: CommandRunner) -> None:
    reply = runner.execute(f"fit {LLAMA_70B}", user=USER)
    assert reply.ok
    assert len(reply.data["fit"]) == 4
    assert "*Recommended*" in reply.text
    assert len([b for b in reply.message.blocks if isinstance(b, Details)]) == 1


def test_stale_answers_are_marked(
    runner: CommandRunner, core: Core, hub: FakeHub, clock: FakeClock
) -> None:
    runner.execute(f"info {QWEN_7B}", user=USER)
    clock.advance(core.settings.hub_info_ttl + 1)
    hub.go_down("refuse")
    runner.execute(f"info {QWEN_7B}", user=USER)
    core.hub.wait_idle(10)
    reply = runner.execute(f"info {QWEN_7B}", user=USER)
    assert reply.ok and reply.data["stale"] is True
    assert "⚠️ stale" in reply.text and "Hugging Face is unreachable" in reply.text


def test_unreachable_hub_without_cache(runner: CommandRunner, hub: FakeHub) -> None:
    hub.go_down("refuse")
    reply = runner.execute(f"info {QWEN_7B}", user=USER)
    assert not reply.ok
    assert reply.data["error"].startswith("Hugging Face is unreachable (")


def test_status_shows_the_cache_hit_ratio(runner: CommandRunner) -> None:
    runner.execute("search llama", user=USER)
    runner.execute("search llama --page 2", user=USER)
    reply = runner.execute("status", user=USER)
    assert reply.data["cache_hit_ratio"] == pytest.approx(0.5)
    assert "Cache hit ratio   50%" in reply.text


def test_archs_and_arch(runner: CommandRunner) -> None:
    listing = runner.execute("archs", user=USER)
    assert listing.ok and listing.data["pages"] > 1
    assert _buttons(listing) == ["archs --page 2"]
    found = runner.execute("archs qwen3 moe", user=USER)
    assert "Qwen3MoeForCausalLM" in [a["name"] for a in found.data["architectures"]]
    assert _buttons(runner.execute("archs qwen3", user=USER)) == ["archs qwen3 --page 2"]
    one = runner.execute("arch qwen2forcausallm", user=USER)
    assert one.ok and one.data["name"] == "Qwen2ForCausalLM"
    assert any(b.startswith("info ") for b in _buttons(one))
    remote = runner.execute("arch ColQwen3", user=USER)
    assert remote.data["flags"] == ["--trust-remote-code"]
    missing = runner.execute("arch LlamaForCausalLMM", user=USER)
    assert not missing.ok and "close: LlamaForCausalLM" in missing.data["error"]


def test_gpus_without_a_cluster(runner: CommandRunner) -> None:
    reply = runner.execute("gpus", user=USER)
    assert reply.ok and reply.data["nodes"] == []
    assert "No GPUs known" in reply.text and "KUBECONFIG" in reply.text


def test_gpus_and_fit_against_the_cluster(kube_core: Core) -> None:
    runner = CommandRunner(kube_core)
    reply = runner.execute("gpus", user=USER)
    assert reply.ok, reply.text
    types = {t["gpu"]: t for t in reply.data["types"]}
    assert (types["A100-80GB"]["total"], types["A100-80GB"]["free"]) == (16, 12)
    assert (types["L4"]["total"], types["L4"]["free"]) == (4, 3)
    assert _buttons(reply) == ["gpus --refresh"]
    fit = runner.execute(f"fit {LLAMA_70B}", user=USER)
    assert {f["gpu"] for f in fit.data["fit"]} == {"A100-80GB", "L4"}
    a100 = next(f for f in fit.data["fit"] if f["gpu"] == "A100-80GB")
    assert a100["fits"] and a100["fits_now"] and a100["source"] == "kubernetes"
    assert fit.data["explained"] == "A100-80GB"
    search = runner.execute("search qwen --fits a100-80gb", user=USER)
    assert "fits 8× A100-80GB" in search.text  # the cluster's node shape
    other = runner.execute("search qwen --fits a100", user=USER)  # the catalog's 40GB card
    assert "A100-40GB is not one of the cluster's GPU types" in other.text


def test_serve_command_adds_the_architectures_required_args_with_their_values() -> None:
    from modelarium.bot.commands.discovery import _serve_command
    from modelarium.core.fit import estimate
    from modelarium.core.vllm import lookup
    from tests.unit.discovery.hubdata import TINY

    result = estimate(TINY, "L4")
    arch = lookup("ColBERTJinaRobertaModel")
    command = _serve_command("org/m", result, arch)
    assert command.startswith("vllm serve org/m --max-model-len 2048")
    assert command.endswith(
        "--trust-remote-code --hf-overrides "
        """'{"architectures":["ColBERTJinaRobertaModel"]}'"""
    )
    assert command.count("--trust-remote-code") == 1
