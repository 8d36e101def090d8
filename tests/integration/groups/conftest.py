"""Group tests: a core that may reach the fake Ollama/OpenAI servers on loopback, and a group
with an Ollama champion and an OpenAI-compatible challenger endpoint registered."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelarium.config import Settings
from tests.conftest import make_settings
from tests.fakes.ollama import FakeOllama, FakeOpenAI

ADMIN = "U_ADMIN"
ADMIN2 = "U_ADMIN2"


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(
        tmp_path,
        database_url,
        endpoint_allowlist=["127.0.0.0/8"],  # the fake servers listen on loopback
        group_min_requests=20,
        public_url="https://modelarium.example.com",
    )


@pytest.fixture
def endpoints(core, fake_ollama: FakeOllama, fake_openai: FakeOpenAI):
    fake_ollama.add_model("llama3.2")
    fake_openai.set_models(["mistral-7b"])
    core.endpoints.add(ADMIN, "gpu-1", fake_ollama.url, shared_with="everyone")
    core.endpoints.add(
        ADMIN, "vllm", fake_openai.url + "/v1", "openai-compatible", shared_with="everyone"
    )
    return fake_ollama, fake_openai
