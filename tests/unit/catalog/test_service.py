"""The catalog service end to end against the fake Hub and the fake GitHub (no chat yet):
draft, validate, PR, update in place, merge, sync, deprecate, Renovate-style watch."""

from __future__ import annotations

import json

import pytest

from modelarium.core.app import Core
from modelarium.core.db.models.weights import WeightRecord
from modelarium.core.errors import ConflictError, NotFoundError, UsageError
from tests.fakes.github import FakeGitHub
from tests.fakes.hf_hub import FakeHub
from tests.unit.catalog.conftest import CATALOG_REPO
from tests.unit.discovery.hubdata import QWEN_7B

pytestmark = pytest.mark.db

ID = "qwen2.5-7b-instruct"
PATH = f"models/{ID}.json"


def install_verified(core: Core, repo: str, commit: str, size: int = 15_231_233_024) -> None:
    """What a finished, verified install leaves behind (the weights capability's record)."""
    now = core.clock.now()
    with core.db.transaction() as session:
        session.add(
            WeightRecord(
                repo_id=repo,
                revision="main",
                commit=commit,
                location="default",
                status="installed",
                size_bytes=size,
                file_count=1,
                files=[],
                created_by="U_ADMIN",
                installed_at=now,
                verified_at=now,
            )
        )


def relicense(hub: FakeHub, repo_id: str, licence: str) -> None:
    """The Hub reports a licence in the tags and the card: change both, as an edit would."""
    repo = hub.repo(repo_id)
    repo.model_tags = [t for t in repo.model_tags if not t.startswith("license:")]
    repo.model_tags.append(f"license:{licence}")
    repo.license = licence
    if repo.card_data is not None:
        repo.card_data["license"] = licence


def test_from_draft_to_approved_to_deprecated(core: Core, hub: FakeHub, github: FakeGitHub) -> None:
    catalog = core.catalog
    head = hub.repo(QWEN_7B).head.sha

    view = catalog.add(QWEN_7B, "U_ALICE")
    assert (view.entry_id, view.draft_state, view.git) == (ID, "draft", None)
    assert view.draft is not None and view.draft.storage_uri is None
    with pytest.raises(ConflictError, match="not validated"):
        catalog.plan_pr(ID)
    view, result = catalog.validate(ID)
    assert [(i.path, i.message) for i in result.errors] == [
        ("storage_uri", "is not set: install and verify the weights first")
    ]
    assert view.draft_state == "draft"

    install_verified(core, QWEN_7B, head)
    view = catalog.add(QWEN_7B, "U_ALICE", tags=("chat",))
    assert view.draft is not None
    assert (
        view.draft.storage_uri
        == f"pvc://default/models--Qwen--Qwen2.5-7B-Instruct/snapshots/{head}"
    )
    view, result = catalog.validate(ID)
    assert result.ok and view.draft_state == "validated"

    plan = catalog.plan_pr(ID)
    assert (plan.kind, plan.action, plan.entry.status) == ("new-model", "open", "approved")
    assert any(line.startswith('+  "status": "approved"') for line in plan.diff)
    opened = catalog.publish(ID, "U_ALICE")
    assert (opened.action, opened.number) == ("opened", 1)
    view = catalog.view(ID)
    assert view.draft_state == "proposed" and view.pull is not None
    assert (view.pull.number, view.pull.state, view.pull.kind) == (1, "open", "new-model")
    assert "15.2 GB" in github.pulls(CATALOG_REPO)[0]["body"]

    # the entry changes before the merge: the same PR gets one more commit
    catalog.add(QWEN_7B, "U_ALICE", tags=("chat", "qwen"))
    catalog.validate(ID)
    updated = catalog.publish(ID, "U_ALICE")
    assert (updated.action, updated.number, updated.calls) == ("updated", 1, 5)
    assert len(github.pulls(CATALOG_REPO)) == 1

    github.merge_pull(CATALOG_REPO, 1)
    synced = catalog.sync()
    assert synced.pulls == [(ID, 1, "merged")]
    view = catalog.view(ID)
    assert view.git_status == "approved" and view.git is not None
    assert view.git.tags == ("chat", "qwen")
    assert view.draft_state == "merged"
    assert catalog.entries(status="approved")[0].entry_id == ID
    assert catalog.diff() == []

    # deprecation is a PR like any other edit
    with pytest.raises(UsageError, match="--reason"):
        catalog.set_status(ID, "deprecated", " ", "U_BOB")
    catalog.set_status(ID, "deprecated", "superseded by Qwen3", "U_BOB")
    [change] = catalog.diff(ID)
    assert change.kind == "deprecation"
    assert '-  "status": "approved",' in change.lines
    assert '+  "status": "deprecated",' in change.lines
    catalog.validate(ID)
    deprecation = catalog.publish(ID, "U_BOB")
    assert (deprecation.action, deprecation.number, deprecation.kind) == (
        "opened",
        2,
        "deprecation",
    )
    assert github.issue_labels(CATALOG_REPO, 2) == ["catalog", "deprecation"]
    assert catalog.deploy_refusal(ID) is None
    github.close_pull(CATALOG_REPO, 2)
    catalog.sync()
    view = catalog.view(ID)
    assert (view.git_status, view.draft_state) == ("approved", "rejected")
    catalog.set_status(ID, "retired", "licence withdrawn", "U_BOB")
    catalog.publish(ID, "U_BOB")
    github.merge_pull(CATALOG_REPO, 3)
    catalog.sync()
    assert catalog.deploy_refusal(ID) == f"{ID} is retired in the catalog: licence withdrawn"


def test_renovate_style_watch(core: Core, hub: FakeHub, github: FakeGitHub) -> None:
    catalog = core.catalog
    head = hub.repo(QWEN_7B).head.sha
    install_verified(core, QWEN_7B, head)
    catalog.add(QWEN_7B, "U_ALICE")
    catalog.validate(ID)
    catalog.publish(ID, "U_ALICE")
    github.merge_pull(CATALOG_REPO, 1)
    catalog.sync()

    quiet = catalog.watch()
    assert (quiet.checked, quiet.updates, quiet.published) == (1, [], [])
    assert catalog.updates() == []

    newer = hub.commit(QWEN_7B, {"README.md": "v2\n"}, message="new weights")
    found = catalog.watch()
    assert found.updates == [ID]
    [published] = found.published
    assert (published.action, published.kind, published.number) == ("opened", "update", 2)
    [update] = catalog.updates()
    assert update.hub_commit == newer
    pull = github.pulls(CATALOG_REPO)[1]
    assert pull["title"] == f"catalog: update {ID} to {QWEN_7B}@{newer[:7]}"
    assert "Not ready to merge" in pull["body"] and "is not installed in default" in pull["body"]
    on_branch = json.loads(github.file(CATALOG_REPO, PATH, pull["head"]["ref"]) or b"")
    assert on_branch["huggingface"]["commit"] == newer
    assert on_branch["storage_uri"].endswith(f"/snapshots/{newer}")

    # the next run refreshes the same PR (here: the weights got installed), never a second one
    install_verified(core, QWEN_7B, newer)
    relicense(hub, QWEN_7B, "other")
    again = catalog.watch()
    assert again.errors == []
    [refreshed] = again.published
    assert (refreshed.action, refreshed.number) == ("updated", 2)
    body = github.pulls(CATALOG_REPO)[1]["body"]
    assert "Not ready to merge" not in body and "a licence change (apache-2.0 → other)" in body
    assert len(github.pulls(CATALOG_REPO)) == 2

    # reviewers close it unmerged: the draft is rejected and that commit is not proposed again
    github.close_pull(CATALOG_REPO, 2)
    catalog.sync()
    assert catalog.view(ID).draft_state == "rejected"
    assert catalog.watch().published == []
    assert len(github.pulls(CATALOG_REPO)) == 2
    assert [v.entry_id for v in catalog.updates()] == [ID]  # still listed as available


def test_watch_respects_prs_per_day(core: Core, hub: FakeHub, github: FakeGitHub) -> None:
    catalog = core.catalog
    head = hub.repo(QWEN_7B).head.sha
    install_verified(core, QWEN_7B, head)
    catalog.add(QWEN_7B, "U_ALICE")
    catalog.validate(ID)
    catalog.publish(ID, "U_ALICE")
    github.merge_pull(CATALOG_REPO, 1)
    catalog.sync()
    hub.commit(QWEN_7B, {"README.md": "v2\n"})
    core.catalog.settings = core.settings.model_copy(update={"catalog_prs_per_day": 0})
    result = catalog.watch()
    assert (result.updates, result.deferred, result.published) == ([ID], [ID], [])
    assert len(github.pulls(CATALOG_REPO)) == 1


def test_bad_input(core: Core, hub: FakeHub) -> None:
    with pytest.raises(UsageError, match="not a Hugging Face model id"):
        core.catalog.add("not a repo", "U_ALICE")
    with pytest.raises(NotFoundError, match="no such model"):
        core.catalog.add("nobody/nothing", "U_ALICE")
    with pytest.raises(UsageError, match="contains '/'"):
        core.catalog.add(QWEN_7B, "U_ALICE", entry_id="a/b")
    with pytest.raises(NotFoundError, match="no catalog entry"):
        core.catalog.view("missing")
    with pytest.raises(UsageError, match="--status must be one of"):
        core.catalog.entries(status="shiny")
