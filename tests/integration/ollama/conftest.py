"""An Ollama endpoint registered in the endpoint registry, served by the fake Ollama."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from modelarium.config import Settings
from modelarium.core.rbac import Role
from tests.conftest import make_settings
from tests.fakes.ollama import FakeOllama

OP = "U_OP"
OP2 = "U_OP2"


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """The fake Ollama listens on loopback, which endpoints may use only when allowed."""
    return make_settings(tmp_path, database_url, endpoint_allowlist=["127.0.0.0/8"])


@pytest.fixture
def ollama() -> Iterator[FakeOllama]:
    """A fake Ollama with one local model, and llama3.2 pullable from its "registry"."""
    with FakeOllama() as fake:
        fake.add_model(
            "llama3.2",
            template="{{ if .System }}<|system|>{{ .System }}{{ end }}<|user|>{{ .Prompt }}",
            system="You are helpful.",
            parameters={"temperature": 0.6, "stop": ["<|user|>"]},
            license=["LLAMA 3.2 COMMUNITY LICENSE"],
        )
        fake.add_remote_model("qwen3:0.6b", size=600_000_000, parameter_size="0.6B")
        yield fake
        assert not fake.errors, fake.errors


@pytest.fixture
def gpu1(core, ollama) -> FakeOllama:
    """Registered as ``gpu1``, shared with everyone; two operators exist."""
    admin = core.settings.admins[0]
    core.endpoints.add(admin, "gpu1", ollama.url, "ollama", shared_with="everyone")
    core.rbac.grant(OP, Role.OPERATOR, granted_by=admin)
    core.rbac.grant(OP2, Role.OPERATOR, granted_by=admin)
    return ollama


def run_jobs(core, limit: int = 10) -> list:
    """Claim and run queued jobs in this thread, as a daemon worker would."""
    done = []
    for _ in range(limit):
        view = core.jobs.claim("test-worker")
        if view is None:
            break
        done.append(core.jobs.run(view, "test-worker"))
    return done
