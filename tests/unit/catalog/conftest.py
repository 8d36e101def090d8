"""Catalog fixtures: the fake Hub with real config.json files, a fake GitHub holding the catalog
repository, settings pointing at both."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelarium.config import Settings
from tests.conftest import make_settings
from tests.fakes.github import DEFAULT_TOKEN, FakeGitHub
from tests.fakes.hf_hub import FakeHub
from tests.unit.discovery.hubdata import populate

CATALOG_REPO = "acme/catalog"


@pytest.fixture
def hub(fake_hub: FakeHub) -> FakeHub:
    populate(fake_hub, fillers=0)
    return fake_hub


@pytest.fixture
def github(fake_github: FakeGitHub) -> FakeGitHub:
    fake_github.create_repo(CATALOG_REPO, files={"README.md": "The model catalog\n"})
    return fake_github


@pytest.fixture
def settings(tmp_path: Path, database_url: str, hub: FakeHub, github: FakeGitHub) -> Settings:
    return make_settings(
        tmp_path,
        database_url,
        hf_endpoint=hub.url,
        hub_timeout=2.0,
        github_api_url=github.api_url,
        github_token=DEFAULT_TOKEN,
        github_write_interval=0,
        github_retries=0,
        catalog_repo=CATALOG_REPO,
    )
