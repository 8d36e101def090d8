"""``publish`` records the bucket's ``storage_uri`` and, when the catalog has an entry pinned to
that commit, proposes the entry's ``storage_uri`` update through the catalog's own PR flow (the
``catalog_storage`` port): approved like any catalog PR, validated against the bucket's
verified weights, published as the entry's pull request. moto's S3, the fake GitHub, both
databases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from modelarium.config import Settings
from modelarium.core.app import Core
from tests.conftest import make_settings
from tests.fakes.github import DEFAULT_TOKEN, FakeGitHub, fake_github
from tests.fakes.hf_hub import FakeHub
from tests.fakes.s3 import FakeS3
from tests.unit.catalog.helpers import entry_json
from tests.unit.weights.helpers import MiB, add_model, run_jobs

__all__ = ["fake_github"]  # the fixture is imported for pytest

BUCKET = "catalog-weights"
CATALOG = "acme/catalog"
ID = "org-m"


@pytest.fixture
def settings(
    tmp_path: Path,
    database_url: str,
    hub: FakeHub,
    weights_root: Path,
    fake_s3: FakeS3,
    fake_github: FakeGitHub,
) -> Settings:
    fake_s3.client().create_bucket(Bucket=BUCKET)
    fake_github.create_repo(CATALOG, files={"README.md": "The model catalog\n"})
    return make_settings(
        tmp_path,
        database_url,
        hf_endpoint=hub.url,
        storage_locations=[
            {"name": "default", "path": str(weights_root), "capacity": 512 * MiB, "min_age": 0},
            {
                "name": "s3",
                "type": "s3",
                "bucket": BUCKET,
                "endpoint_url": fake_s3.url,
                "region": "us-east-1",
                "min_age": 0,
            },
        ],
        s3_part_size=5 * MiB,
        github_api_url=fake_github.api_url,
        github_token=DEFAULT_TOKEN,
        github_write_interval=0,
        github_retries=0,
        catalog_repo=CATALOG,
    )


def _catalog_entry(github: FakeGitHub, core: Core, commit: str) -> None:
    """The catalog's Git has an approved entry for org/m@commit, its weights on a PVC."""
    data = entry_json(
        ID,
        huggingface={"repo": "org/m", "commit": commit},
        storage_uri=f"pvc://models/models--org--m/snapshots/{commit}",
    )
    github.push(CATALOG, "main", {f"models/{ID}.json": json.dumps(data, indent=2) + "\n"})
    synced = core.catalog.sync()
    assert not synced.invalid, synced


def test_publish_proposes_the_catalog_entrys_storage_uri_through_its_pr(
    core: Core, runner: Any, hub: FakeHub, fake_github: FakeGitHub
) -> None:
    add_model(hub, "org/m", size=6 * MiB, shards=1)
    commit = str(hub.repo("org/m").head.sha)
    _catalog_entry(fake_github, core, commit)
    assert runner.execute("install org/m", user="U_ADMIN").ok
    assert [v.status for v in run_jobs(core)] == ["succeeded"]

    published = runner.execute("publish org/m --to s3", user="U_ADMIN")
    assert published.ok, published.text
    [view] = run_jobs(core)
    assert view.status == "succeeded", view.error
    uri = f"s3://{BUCKET}/models/org/m/{commit}/"
    result = core.changes.get(published.data["change"]).result
    assert result["storage_uri"] == uri
    [line] = result["catalog"]
    assert line.startswith(f"catalog entry {ID}: storage_uri update proposed as change #")
    assert "(approval #" in line  # a catalog PR is approved like any other

    [storage], _ = core.changes.history(kind="catalog.storage")
    assert storage.status == "pending_approval"
    assert f'+  "storage_uri": "{uri}",' in "\n".join(storage.plan["diff"])
    assert fake_github.pulls(CATALOG) == []  # nothing reaches Git before the approval
    decided = runner.execute(f"approve {storage.approval_id}", user="U_ADMIN2")
    assert decided.ok, decided.text
    [job] = run_jobs(core)
    assert job.status == "succeeded", job.error
    [pull] = fake_github.pulls(CATALOG)
    entry = json.loads(fake_github.file(CATALOG, f"models/{ID}.json", ref=pull["head"]["ref"]))
    assert entry["storage_uri"] == uri
    shown = runner.execute(f"catalog show {ID}", user="U_VIEWER")
    assert shown.data["draft_state"] == "proposed"


def test_publish_of_a_model_the_catalog_does_not_list_proposes_nothing(
    core: Core, runner: Any, hub: FakeHub
) -> None:
    add_model(hub, "org/m", size=6 * MiB, shards=1)
    assert runner.execute("install org/m", user="U_ADMIN").ok
    run_jobs(core)
    published = runner.execute("publish org/m --to s3", user="U_ADMIN")
    [view] = run_jobs(core)
    assert view.status == "succeeded", view.error
    assert core.changes.get(published.data["change"]).result["catalog"] == []
    assert core.changes.history(kind="catalog.storage") == ([], 0)
