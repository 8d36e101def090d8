"""The PR writer against the fake GitHub: one branch and one PR per entry, one commit per update,
API calls counted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelarium.config import Settings
from modelarium.core.catalog import CatalogEntry
from modelarium.core.catalog.pulls import PullRecord, PullRequestWriter, blob_sha
from modelarium.core.catalog.template import kind_for, render
from modelarium.core.clients.github import (
    GitHubClient,
    GitHubPermissionError,
    GitHubUnavailableError,
)
from tests.fakes.github import DEFAULT_TOKEN, FakeGitHub, fake_github, git_blob_sha
from tests.unit.catalog.helpers import OTHER_COMMIT, entry_json

__all__ = ["fake_github"]

REPO = "acme/catalog"
BRANCH = "modelarium/catalog/qwen2.5-7b-instruct"
PATH = "models/qwen2.5-7b-instruct.json"


@pytest.fixture
def gh(fake_github: FakeGitHub) -> FakeGitHub:
    fake_github.create_repo(REPO, files={"models/other.json": "{}\n", "README.md": "catalog\n"})
    return fake_github


def writer(fake: FakeGitHub, tmp_path: Path, **settings: object) -> PullRequestWriter:
    values: dict[str, object] = {
        "data_dir": tmp_path,
        "github_api_url": fake.api_url,
        "github_token": DEFAULT_TOKEN,
        "github_write_interval": 0,
        "github_retries": 0,
    }
    values.update(settings)
    client = GitHubClient(Settings(**values))  # type: ignore[arg-type]
    return PullRequestWriter(client, REPO, "models/")


def entry(**changes: object) -> CatalogEntry:
    return CatalogEntry.from_json(entry_json(**changes))


def publish(w: PullRequestWriter, new: CatalogEntry, before: CatalogEntry | None, previous=None):  # type: ignore[no-untyped-def]
    kind = kind_for(new, before)
    text = render(
        new,
        before,
        kind,
        reason="asked in chat",
        requested_by="<@U_ADMIN>",
        size_bytes=15_231_233_024,
    )
    return w.publish(new, text, kind, previous)


def test_open_then_update_the_same_pull_request(gh: FakeGitHub, tmp_path: Path) -> None:
    w = writer(gh, tmp_path)
    first = entry()
    main = gh.head(REPO, "main")
    gh.reset_calls()
    opened = publish(w, first, None)
    assert opened.action == "opened"
    assert gh.count() == opened.calls == 8  # goal: at most 8 to open a PR with its labels
    assert gh.counter() == {
        "GET /repos/{owner}/{repo}": 1,
        "GET /repos/{owner}/{repo}/branches/{branch+}": 1,
        "POST /repos/{owner}/{repo}/git/blobs": 1,
        "POST /repos/{owner}/{repo}/git/trees": 1,
        "POST /repos/{owner}/{repo}/git/commits": 1,
        "POST /repos/{owner}/{repo}/git/refs": 1,
        "POST /repos/{owner}/{repo}/pulls": 1,
        "POST /repos/{owner}/{repo}/issues/{number}/labels": 1,
    }
    [pull] = gh.pulls(REPO)
    assert (pull["number"], pull["head"]["ref"], pull["base"]["ref"]) == (1, BRANCH, "main")
    assert gh.issue_labels(REPO, 1) == ["catalog", "new-model"]
    assert gh.file(REPO, PATH, BRANCH) == first.dumps().encode()
    assert gh.file(REPO, "models/other.json", BRANCH) == b"{}\n"  # the rest of main is kept
    assert gh.commit_parents(REPO, opened.head_sha or "") == [main]  # one commit on top of main
    assert (
        opened.blob_sha == git_blob_sha(first.dumps().encode()) == blob_sha(first.dumps().encode())
    )
    body = pull["body"]
    for fact in ("apache-2.0", "15.2 GB", "7.62B", "L4", "fits on 1×", "does not fit", "README.md"):
        assert fact in body, fact
    assert f"Qwen/Qwen2.5-7B-Instruct@{first.commit[:7]}" in body
    assert gh.file(REPO, PATH) is None  # nothing reached main

    newer = CatalogEntry.from_json(
        entry_json(
            huggingface={"repo": first.repo, "commit": OTHER_COMMIT},
            storage_uri=f"pvc://models/models--Qwen--Qwen2.5-7B-Instruct/snapshots/{OTHER_COMMIT}",
        )
    )
    gh.reset_calls()
    updated = publish(w, newer, None, opened.record)  # still new to Git: still a new-model PR
    assert updated.action == "updated" and updated.number == 1
    assert gh.count() == updated.calls == 5  # goal: at most 5 to update one
    assert gh.count("PATCH", "/repos/{owner}/{repo}/git/refs/{ref+}") == 1
    assert len(gh.pulls(REPO)) == 1  # never a second PR
    assert gh.commit_parents(REPO, gh.head(REPO, BRANCH) or "") == [opened.head_sha]
    assert json.loads(gh.file(REPO, PATH, BRANCH) or b"")["huggingface"]["commit"] == OTHER_COMMIT
    [pull] = gh.pulls(REPO)
    assert f"@{OTHER_COMMIT[:7]}" in pull["body"]
    assert f"@{first.commit[:7]}" not in pull["body"]

    gh.reset_calls()
    again = publish(w, newer, first, updated.record)
    assert (again.action, again.number, gh.count()) == ("unchanged", 1, 0)


def test_a_lost_record_finds_the_same_pull_request(gh: FakeGitHub, tmp_path: Path) -> None:
    w = writer(gh, tmp_path)
    publish(w, entry(), None)
    changed = entry(notes="second look")
    result = publish(writer(gh, tmp_path), changed, entry(), previous=None)
    assert (result.action, result.number) == ("updated", 1)
    assert len(gh.pulls(REPO)) == 1
    assert json.loads(gh.file(REPO, PATH, BRANCH) or b"")["notes"] == "second look"


def test_a_branch_a_person_pushed_to_is_left_alone(gh: FakeGitHub, tmp_path: Path) -> None:
    w = writer(gh, tmp_path)
    opened = publish(w, entry(), None)
    theirs = gh.push(REPO, BRANCH, {PATH: '{"hand": "edited"}\n'}, message="fix by hand")
    result = publish(w, entry(notes="bot change"), entry(), opened.record)
    assert result.action == "left-alone"
    assert "someone else pushed" in result.summary()
    assert gh.head(REPO, BRANCH) == theirs
    assert gh.file(REPO, PATH, BRANCH) == b'{"hand": "edited"}\n'
    # without a record either, their head commit is not ours: still left alone
    alone = publish(writer(gh, tmp_path), entry(notes="bot change"), entry(), None)
    assert alone.action == "left-alone" and gh.head(REPO, BRANCH) == theirs
    assert len(gh.pulls(REPO)) == 1


def test_a_branch_created_by_someone_else_is_left_alone(gh: FakeGitHub, tmp_path: Path) -> None:
    gh.push(REPO, BRANCH, {PATH: "{}\n"}, message="someone's own idea")
    result = publish(writer(gh, tmp_path), entry(), None)
    assert result.action == "left-alone"
    assert "did not write" in result.note
    assert gh.pulls(REPO) == []


def test_after_a_merge_a_change_opens_a_new_pull_request(gh: FakeGitHub, tmp_path: Path) -> None:
    w = writer(gh, tmp_path)
    opened = publish(w, entry(), None)
    gh.merge_pull(REPO, 1, delete_branch=True)
    assert json.loads(gh.file(REPO, PATH) or b"")["status"] == "approved"
    deprecated = entry(status="deprecated", status_reason="superseded by Qwen3")
    result = publish(w, deprecated, entry(), opened.record)
    assert (result.action, result.number, result.kind) == ("opened", 2, "deprecation")
    assert gh.issue_labels(REPO, 2) == ["catalog", "deprecation"]
    assert gh.pulls(REPO)[1]["title"] == "catalog: mark qwen2.5-7b-instruct deprecated"


def test_merged_with_the_branch_kept(gh: FakeGitHub, tmp_path: Path) -> None:
    w = writer(gh, tmp_path)
    opened = publish(w, entry(), None)
    gh.merge_pull(REPO, 1)
    result = publish(w, entry(notes="later"), entry(), opened.record)
    assert (result.action, result.number) == ("opened", 2)
    assert "#1 was merged" in result.note
    gh.merge_pull(REPO, 2)
    assert json.loads(gh.file(REPO, PATH) or b"")["notes"] == "later"


def test_no_push_rights_fails_before_writing(gh: FakeGitHub, tmp_path: Path) -> None:
    gh.set_push(REPO, "modelarium-bot", False)
    gh.reset_calls()
    with pytest.raises(GitHubPermissionError, match="cannot push to acme/catalog"):
        publish(writer(gh, tmp_path), entry(), None)
    assert gh.count("POST") == 0


def test_github_failing_half_way_writes_nothing_visible(gh: FakeGitHub, tmp_path: Path) -> None:
    w = writer(gh, tmp_path)
    opened = publish(w, entry(), None)
    head = gh.head(REPO, BRANCH)
    gh.fail_next(503, method="PATCH", endpoint="/repos/{owner}/{repo}/git/refs/{ref+}")
    with pytest.raises(GitHubUnavailableError):
        publish(w, entry(notes="x"), entry(), opened.record)
    assert gh.head(REPO, BRANCH) == head  # the branch did not move
    assert gh.file(REPO, PATH, BRANCH) == entry().dumps().encode()
    retried = publish(w, entry(notes="x"), entry(), opened.record)
    assert retried.action == "updated"
    assert gh.commit_parents(REPO, gh.head(REPO, BRANCH) or "") == [head]  # still one commit


def test_a_change_of_kind_relabels_the_open_pull_request(gh: FakeGitHub, tmp_path: Path) -> None:
    gh.push(REPO, "main", {PATH: entry().dumps()})  # the entry is in Git already
    w = writer(gh, tmp_path)
    before = entry()
    opened = publish(w, entry(notes="tweak"), before)
    assert gh.issue_labels(REPO, 1) == ["catalog", "update"]
    gh.reset_calls()
    deprecated = entry(notes="tweak", status="deprecated", status_reason="superseded")
    result = publish(w, deprecated, before, opened.record)
    assert (result.action, result.kind, result.calls) == ("updated", "deprecation", 6)
    assert gh.issue_labels(REPO, 1) == ["catalog", "deprecation"]
    body = gh.pulls(REPO)[0]["body"]
    assert "| Status **(changed)** | approved | deprecated |" in body


def test_the_record_of_a_result() -> None:
    record = PullRecord(3, BRANCH, "a" * 40, "b" * 40, "c" * 40, "update", "https://x/pull/3")
    assert record.number == 3
