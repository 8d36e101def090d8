"""Fit advice that matches the facts: GPUs per node, pipeline parallel across nodes, and
formats that need a pre-quantized checkpoint (issue 14, item 7)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from modelarium.bot.dispatch import CommandRunner
from modelarium.core.app import Core
from modelarium.core.messages import Code
from tests.conftest import make_settings
from tests.fakes.hf_hub import FakeHub
from tests.fakes.kubernetes import FakeKubernetes
from tests.unit.discovery.hubdata import QWEN_MOE, config

pytestmark = pytest.mark.db
USER = "U_VIEWER"
QWEN3_8B = "Qwen/Qwen3-8B"
DEEPSEEK_V3 = "deepseek-ai/DeepSeek-V3"


@pytest.fixture
def big_hub(hub: FakeHub) -> FakeHub:
    gen = {"pipeline_tag": "text-generation", "library_name": "transformers"}
    hub.add_model(QWEN3_8B, config=config("qwen3-8b"), license="apache-2.0", **gen)
    hub.add_model(DEEPSEEK_V3, config=config("deepseek-v3"), license="mit", **gen)
    return hub


@pytest.fixture
def l4_singles(
    tmp_path: Path, database_url: str, big_hub: FakeHub, fake_k8s: FakeKubernetes, clock
) -> Iterator[Core]:  # type: ignore[no-untyped-def]
    """A cluster of four nodes with one L4 each: the card says "1 per node"."""
    for i in range(4):
        fake_k8s.add_gpu_node(f"gpu-l4-{i}", product="NVIDIA-L4", count=1)
    settings = make_settings(
        tmp_path,
        database_url,
        hf_endpoint=big_hub.url,
        hub_timeout=2.0,
        kubeconfig=fake_k8s.write_kubeconfig(tmp_path / "kubeconfig"),
    )
    core = Core(settings, clock=clock)
    core.migrate()
    yield core
    core.hub.wait_idle(10)
    core.gpus.wait_idle(10)
    core.close()


def _code(reply) -> list[str]:  # type: ignore[no-untyped-def]
    return [b.text for b in reply.message.blocks if isinstance(b, Code)]


def test_one_gpu_per_node_means_pipeline_parallel_not_tensor_parallel(l4_singles: Core) -> None:
    reply = CommandRunner(l4_singles).execute(f"fit {QWEN3_8B} --gpu L4 --gpus 4", user=USER)
    assert reply.ok, reply.text
    assert ", 1 per node" in reply.text
    figures = reply.data["figures"]
    assert figures["tensor_parallel_size"] == 1
    assert figures["pipeline_parallel_size"] == 2
    assert "--tensor-parallel-size" not in reply.data["command"]
    assert "--pipeline-parallel-size 2" in reply.data["command"]
    assert "on 2 nodes" in reply.text
    assert "fits on 2× L4 with" not in reply.text  # not two L4s on one node


def test_deepseek_v3_on_8_gpu_nodes_is_tp8_by_pp2(runner: CommandRunner, big_hub: FakeHub) -> None:
    reply = runner.execute(f"fit {DEEPSEEK_V3} --gpu H100", user=USER)  # a node of 8
    assert reply.ok, reply.text
    assert reply.data["fits"] is False
    advice = " ".join(reply.data["advice"])
    assert "--tensor-parallel-size 8 --pipeline-parallel-size 2" in advice
    assert "--tensor-parallel-size 16" not in advice
    two_nodes = runner.execute(f"fit {DEEPSEEK_V3} --gpu 8xH100 --gpus 16", user=USER)
    assert two_nodes.data["fits"], two_nodes.text
    command = two_nodes.data["command"]
    assert "--tensor-parallel-size 8 --pipeline-parallel-size 2" in command
    arithmetic = two_nodes.data["arithmetic"]
    assert any("pipeline parallel 2 = 16 GPUs on 2 node(s)" in a for a in arithmetic)


def test_a_4_bit_fit_names_the_checkpoint_to_look_for(runner: CommandRunner) -> None:
    reply = runner.execute(f"fit {QWEN_MOE} --gpu L4 --quant awq", user=USER)
    assert reply.ok and reply.data["fits"], reply.text
    assert reply.data["command"] is None  # not `vllm serve Qwen/Qwen3-30B-A3B ... --dtype half`
    assert not any(QWEN_MOE in code for code in _code(reply))
    needed = reply.data["checkpoint_needed"]
    assert needed["search"] == "search Qwen3-30B-A3B --quant awq"
    assert "pre-quantized AWQ checkpoint" in reply.text
    assert "Qwen3-30B-A3B-AWQ" in reply.text
    assert reply.data["figures"]["checkpoint_needed"] == needed["format"]
