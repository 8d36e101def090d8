"""catalog_sync against the fake GitHub: conditional requests, changed blobs only, PR states."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import sqlalchemy as sa

from modelarium.core.app import Core
from modelarium.core.catalog.sync import CatalogSync
from modelarium.core.clients.github import GitHubClient
from modelarium.core.clock import FakeClock
from modelarium.core.db.models.catalog import CatalogDraft, CatalogEntryRow, CatalogPull
from modelarium.core.errors import UsageError
from modelarium.core.vllm import load_catalog
from tests.fakes.github import FakeGitHub
from tests.unit.catalog.conftest import CATALOG_REPO
from tests.unit.catalog.helpers import entry_json

pytestmark = pytest.mark.db


def syncer(core: Core, **settings: object) -> CatalogSync:
    configured = core.settings.model_copy(update=settings)
    return CatalogSync(core.db, core.clock, GitHubClient(configured), configured, load_catalog)


def files(count: int) -> dict[str, str]:
    return {
        f"models/model-{i:04d}.json": json.dumps(entry_json(f"model-{i:04d}"), indent=2) + "\n"
        for i in range(count)
    }


def rows(core: Core) -> dict[str, CatalogEntryRow]:
    with core.db.transaction() as session:
        found = list(session.scalars(sa.select(CatalogEntryRow)))
        session.expunge_all()
    return {r.entry_id: r for r in found}


def test_an_unchanged_catalog_of_1000_entries_costs_one_request(
    core: Core, github: FakeGitHub, clock: FakeClock
) -> None:
    github.push(CATALOG_REPO, "main", files(1000), message="a thousand models")
    sync = syncer(core)
    first = sync.run()
    assert first.changed and len(first.added) == 1000 and first.invalid == []
    assert first.calls == 3 + 1000  # repository, ref, tree, then every blob once
    github.reset_calls()
    again = sync.run()
    assert (again.changed, again.calls, github.count()) == (False, 1, 1)
    assert github.calls[0].status == 304
    assert again.summary() == "catalog unchanged (1000 entries); 1 GitHub request"
    clock.advance(
        timedelta(days=1, seconds=1).total_seconds()
    )  # the default branch is re-checked daily
    github.reset_calls()
    assert syncer(core).run().calls == github.count() == 2
    assert {c.status for c in github.calls} == {304}


def test_a_change_fetches_only_the_changed_files(core: Core, github: FakeGitHub) -> None:
    github.push(CATALOG_REPO, "main", files(20))
    sync = syncer(core)
    sync.run()
    changed = entry_json("model-0003", notes="now with notes")
    github.push(
        CATALOG_REPO,
        "main",
        {
            "models/model-0003.json": json.dumps(changed),
            "models/model-0004.json": None,
            "models/new-one.json": json.dumps(entry_json("new-one")),
            "models/broken.json": '{"id": "broken"}',
            "docs/not-an-entry.json": "{}",
        },
    )
    github.reset_calls()
    result = sync.run()
    assert result.calls == github.count() == 2 + 3  # ref, tree, three changed blobs
    assert (result.added, result.updated, result.removed) == (
        ["broken", "new-one"],
        ["model-0003"],
        ["model-0004"],
    )
    mirror = rows(core)
    assert mirror["model-0003"].data["notes"] == "now with notes"
    assert mirror["broken"].status == "invalid"
    assert mirror["broken"].issues[0]["path"] == "schema_version"
    assert mirror["new-one"].status == "approved"
    assert "not-an-entry" not in mirror and len(mirror) == 21


def test_a_configured_branch(core: Core, github: FakeGitHub) -> None:
    github.push(CATALOG_REPO, "release", files(3))
    sync = syncer(core, catalog_branch="release")
    assert len(sync.run().added) == 3
    github.reset_calls()
    assert sync.run().calls == 1
    assert github.count("GET", "/repos/{owner}/{repo}") == 0
    with pytest.raises(Exception, match="has no branch nope"):
        syncer(core, catalog_branch="nope").run()


def test_open_pull_requests_cost_one_more_request_and_settle(
    core: Core, github: FakeGitHub, clock: FakeClock
) -> None:
    github.push(CATALOG_REPO, "main", files(2))
    sync = syncer(core)
    sync.run()
    for n, entry_id in ((1, "merged-one"), (2, "closed-one")):
        branch = f"modelarium/catalog/{entry_id}"
        head = github.push(
            CATALOG_REPO, branch, {f"models/{entry_id}.json": json.dumps(entry_json(entry_id))}
        )
        github.fake_open_pull = None
        from modelarium.core.clients.github import GitHubClient as Client

        Client(core.settings).create_pull(
            CATALOG_REPO, head=branch, base="main", title="t", body=""
        )
        with core.db.transaction() as session:
            session.add(
                CatalogPull(
                    entry_id=entry_id,
                    repo=CATALOG_REPO,
                    number=n,
                    url="",
                    branch=branch,
                    kind="new-model",
                    head_sha=head,
                    tree_sha=head,
                    blob_sha=head,
                    opened_by="U_ADMIN",
                )
            )
            session.add(
                CatalogDraft(entry_id=entry_id, state="proposed", created_by="U_ADMIN", data={})
            )
    github.reset_calls()
    assert sync.run().calls == 2  # ref and pulls, both 304 the second time...
    github.reset_calls()
    assert sync.run().calls == 2
    assert {c.status for c in github.calls} == {304}
    clock.advance(timedelta(days=2).total_seconds())  # the daily default-branch check waits
    github.reset_calls()
    assert sync.run().calls == 2
    assert github.count("GET", "/repos/{owner}/{repo}") == 0
    clock.advance(timedelta(days=6).total_seconds())  # ...for a week at most
    github.reset_calls()
    assert sync.run().calls == 3
    github.merge_pull(CATALOG_REPO, 1)
    github.close_pull(CATALOG_REPO, 2)
    result = sync.run()
    assert sorted(result.pulls) == [("closed-one", 2, "closed"), ("merged-one", 1, "merged")]
    assert result.added == ["merged-one"]  # the merge brought the entry to main
    assert rows(core)["merged-one"].status == "approved"
    with core.db.transaction() as session:
        drafts = {d.entry_id: d.state for d in session.scalars(sa.select(CatalogDraft))}
    assert drafts == {"merged-one": "merged", "closed-one": "rejected"}
    github.reset_calls()
    assert sync.run().calls == 1  # no PR open any more


def test_no_catalog_repository(core: Core) -> None:
    with pytest.raises(UsageError, match="MODELARIUM_CATALOG_REPO"):
        syncer(core, catalog_repo=None).run()
