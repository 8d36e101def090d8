"""The catalog from chat: a new user adds a model, validates it, opens a PR after an approval,
sees it updated in place, deprecates it through a PR, and gets a Renovate-style PR."""

from __future__ import annotations

import json

import pytest

from modelarium.automation.tasks import catalog as catalog_tasks
from modelarium.core.app import Core
from modelarium.core.jobs import WorkerPool
from modelarium.core.messages import render_plain
from tests.fakes.github import DEFAULT_TOKEN, FakeGitHub
from tests.fakes.hf_hub import FakeHub
from tests.unit.catalog.conftest import CATALOG_REPO
from tests.unit.catalog.test_service import install_verified
from tests.unit.discovery.hubdata import QWEN_7B

pytestmark = pytest.mark.db

ID = "qwen2.5-7b-instruct"


def run_jobs(core: Core) -> list[str]:
    statuses = []
    while (job := WorkerPool(core.jobs, size=0).run_one()) is not None:
        statuses.append(job.status)
    return statuses


def approve_and_run(runner, core: Core, reply) -> dict:  # type: ignore[no-untyped-def]
    assert reply.ok, reply.text
    assert reply.data["approval"] is not None and reply.data["job"] is None
    done = runner.execute(f"approve {reply.data['approval']}", user="U_ADMIN2")
    assert done.ok, done.text
    assert run_jobs(core) == ["succeeded"]
    change = core.changes.get(reply.data["change"])
    assert change.status == "succeeded", change.outcome
    return change.result


def test_a_new_user_from_chat_to_the_catalog(
    runner, core: Core, hub: FakeHub, github: FakeGitHub
) -> None:  # type: ignore[no-untyped-def]
    added = runner.execute(f"catalog add {QWEN_7B} --tag chat", user="U_ADMIN")
    assert added.ok, added.text
    assert (added.data["id"], added.data["draft_state"]) == (ID, "draft")
    assert "catalog validate qwen2.5-7b-instruct" in added.text

    invalid = runner.execute(f"catalog validate {ID}", user="U_ADMIN")
    assert not invalid.ok
    assert "`storage_uri`: is not set: install and verify the weights first" in invalid.text
    refused = runner.execute(f"catalog pr {ID}", user="U_ADMIN")
    assert not refused.ok and "is not validated" in refused.text

    install_verified(core, QWEN_7B, hub.repo(QWEN_7B).head.sha)
    assert runner.execute(f"catalog add {QWEN_7B} --tag chat", user="U_ADMIN").ok
    valid = runner.execute(f"catalog validate {ID}", user="U_ADMIN")
    assert valid.ok, valid.text
    assert valid.data["draft_state"] == "validated"
    diff = runner.execute("catalog diff", user="U_ADMIN")
    assert diff.data["diffs"][0]["kind"] == "new-model"
    assert '+  "id": "qwen2.5-7b-instruct",' in diff.data["diffs"][0]["diff"]

    proposed = runner.execute(f"catalog pr {ID}", user="U_ADMIN")
    assert proposed.data["digest"] and "needs 1 approval(s)" in proposed.text
    assert github.pulls(CATALOG_REPO) == []  # nothing before the approval
    result = approve_and_run(runner, core, proposed)
    [pull] = github.pulls(CATALOG_REPO)
    assert result["url"] == pull["html_url"] and result["action"] == "opened"
    assert result["github_calls"] == 8
    card = render_plain(core.notify.get(f"change:{proposed.data['change']}")[0])
    assert pull["html_url"] in card  # the PR link on the living message
    shown = runner.execute(f"catalog show {ID}", user="U_VIEWER")
    assert shown.data["pull"]["number"] == 1 and shown.data["draft_state"] == "proposed"

    # the entry changes: the same PR gets one commit
    runner.execute(f"catalog add {QWEN_7B} --tag chat --tag qwen", user="U_ADMIN")
    runner.execute(f"catalog validate {ID}", user="U_ADMIN")
    again = approve_and_run(runner, core, runner.execute(f"catalog pr {ID}", user="U_ADMIN"))
    assert (again["action"], again["pull"], again["github_calls"]) == ("updated", 1, 5)
    assert len(github.pulls(CATALOG_REPO)) == 1

    github.merge_pull(CATALOG_REPO, 1)
    catalog_tasks.register(core)
    core.tasks.sync()
    synced = core.tasks.run_tick("catalog_sync", None, None, manual=True)
    assert synced.status == "ok", synced.summary
    assert "PR #1 (qwen2.5-7b-instruct) merged" in (synced.summary or "")
    listed = runner.execute("catalog list --status approved", user="U_VIEWER")
    assert [e["id"] for e in listed.data["entries"]] == [ID]

    # deprecation is a PR like any other edit
    no_reason = runner.execute(f"catalog status {ID} deprecated", user="U_ADMIN")
    assert not no_reason.ok and "--reason" in no_reason.text
    status = runner.execute(
        f'catalog status {ID} deprecated --reason "superseded by Qwen3"', user="U_ADMIN"
    )
    assert status.ok, status.text
    assert '+  "status": "deprecated",' in status.text
    result = approve_and_run(runner, core, status)
    assert (result["pull"], result["action"]) == (2, "opened")
    assert github.issue_labels(CATALOG_REPO, 2) == ["catalog", "deprecation"]
    reverted = runner.execute(f"revert {status.data['change']}", user="U_ADMIN")
    assert reverted.ok, reverted.text
    assert "Mark qwen2.5-7b-instruct approved" in reverted.text

    github.merge_pull(CATALOG_REPO, 2)
    core.clock.advance(60)  # type: ignore[attr-defined]
    synced = core.tasks.run_tick("catalog_sync", None, None, manual=True)
    assert "PR #2 (qwen2.5-7b-instruct) merged" in (synced.summary or ""), synced
    shown = runner.execute(f"catalog show {ID}", user="U_VIEWER")
    assert shown.data["git_status"] == "deprecated"
    assert "Why deprecated: superseded by Qwen3" in shown.text


def test_renovate_style_prs_from_the_daemon(
    runner, core: Core, hub: FakeHub, github: FakeGitHub
) -> None:  # type: ignore[no-untyped-def]
    install_verified(core, QWEN_7B, hub.repo(QWEN_7B).head.sha)
    runner.execute(f"catalog add {QWEN_7B}", user="U_ADMIN")
    runner.execute(f"catalog validate {ID}", user="U_ADMIN")
    approve_and_run(runner, core, runner.execute(f"catalog pr {ID}", user="U_ADMIN"))
    github.merge_pull(CATALOG_REPO, 1)
    catalog_tasks.register(core)
    core.tasks.sync()
    core.tasks.run_tick("catalog_sync", None, None, manual=True)

    newer = hub.commit(QWEN_7B, {"README.md": "v2\n"}, message="new revision")
    watched = core.tasks.run_tick("catalog_watch", None, None, manual=True)
    assert watched.status == "ok", watched.summary
    assert "updates for qwen2.5-7b-instruct" in (watched.summary or "")
    assert run_jobs(core) == ["succeeded"]  # no approval: the PR is the review
    pull = github.pulls(CATALOG_REPO)[1]
    assert pull["title"] == f"catalog: update {ID} to {QWEN_7B}@{newer[:7]}"
    assert github.issue_labels(CATALOG_REPO, 2) == ["catalog", "update"]
    updates = runner.execute("catalog updates", user="U_VIEWER")
    [update] = updates.data["updates"]
    assert update["hub_commit"] == newer and update["pull"]["number"] == 2
    history = runner.execute("changes --kind catalog.pr", user="U_VIEWER")
    assert history.data["total"] == 2
    on_branch = json.loads(
        github.file(CATALOG_REPO, f"models/{ID}.json", pull["head"]["ref"]) or b""
    )
    assert on_branch["huggingface"]["commit"] == newer


def test_bad_input_is_one_line_and_usage(runner, core: Core, hub: FakeHub) -> None:  # type: ignore[no-untyped-def]
    for text, words in [
        ("catalog add not-a-repo!", "not a Hugging Face model id"),
        (f"catalog add {QWEN_7B} --id a/b", "contains '/'"),
        (f"catalog add {QWEN_7B} --id ../x", "contains '..'"),
        ("catalog add nobody/nothing", "no such model"),
        ("catalog show a..b", "contains '..'"),
        ("catalog status x shiny --reason r", "must be one of approved, deprecated, retired"),
        ("catalog validate", "name an entry id or give --file"),
        ("catalog list --status shiny", "must be one of"),
    ]:
        reply = runner.execute(text, user="U_ADMIN")
        assert not reply.ok, text
        assert words in reply.text, (text, reply.text)
        assert "Traceback" not in reply.text
    denied = runner.execute("catalog validate --file /etc/passwd.json", user="U_OPERATOR")
    assert not denied.ok


def test_catalog_schema_command(runner) -> None:  # type: ignore[no-untyped-def]
    reply = runner.execute("catalog schema", user="U_VIEWER")
    assert reply.ok and reply.files[0].filename == "catalog-entry.schema.json"
    assert reply.data["schema"]["$id"] == "urn:modelarium:catalog-entry:1"


def test_info_shows_the_catalog_entry(runner, core: Core, hub: FakeHub) -> None:  # type: ignore[no-untyped-def]
    runner.execute(f"catalog add {QWEN_7B}", user="U_ADMIN")
    info = runner.execute(f"info {QWEN_7B}", user="U_VIEWER")
    assert info.ok, info.text
    assert f"*Catalog*: `{ID}` draft, pins {hub.repo(QWEN_7B).head.sha[:7]}" in info.text
    assert info.data["catalog"][0]["id"] == ID


def _validated(runner, core: Core, hub: FakeHub) -> None:  # type: ignore[no-untyped-def]
    install_verified(core, QWEN_7B, hub.repo(QWEN_7B).head.sha)
    runner.execute(f"catalog add {QWEN_7B}", user="U_ADMIN")
    assert runner.execute(f"catalog validate {ID}", user="U_ADMIN").ok


def test_no_push_rights_fail_the_change_clearly(
    runner, core: Core, hub: FakeHub, github: FakeGitHub
) -> None:  # type: ignore[no-untyped-def]
    _validated(runner, core, hub)
    github.set_push(CATALOG_REPO, "modelarium-bot", False)
    proposed = runner.execute(f"catalog pr {ID}", user="U_ADMIN")
    runner.execute(f"approve {proposed.data['approval']}", user="U_ADMIN2")
    assert run_jobs(core) == ["failed"]  # a refusal is not retried
    change = core.changes.get(proposed.data["change"])
    assert change.status == "failed"
    assert change.outcome == (
        "GitHub token cannot push to acme/catalog: give it write access (contents and pull "
        "requests) to open catalog pull requests"
    )
    job = core.jobs.get(proposed.data["job"] or change.job_id)
    card = render_plain(core.notify.get(f"change:{change.id}")[0])
    records = [job.error or "", json.dumps(job.params), json.dumps(job.state), card]
    records += [json.dumps(r.__dict__, default=str) for r in core.audit.query(limit=100)]
    assert all(DEFAULT_TOKEN not in text for text in records)
    assert github.pulls(CATALOG_REPO) == [] and github.count("POST") == 0


def test_github_down_is_retried_by_the_job_then_succeeds(
    runner, core: Core, hub: FakeHub, github: FakeGitHub
) -> None:  # type: ignore[no-untyped-def]
    _validated(runner, core, hub)
    proposed = runner.execute(f"catalog pr {ID}", user="U_ADMIN")
    runner.execute(f"approve {proposed.data['approval']}", user="U_ADMIN2")
    github.go_down(503)
    first = WorkerPool(core.jobs, size=0).run_one()
    assert first is not None and first.status == "queued"  # waiting for a retry
    assert first.error == (
        "GitHub is unavailable (HTTP 503) while reading acme/catalog, after 0 retries"
    )
    github.come_up()
    core.clock.advance(60)  # type: ignore[attr-defined]
    assert run_jobs(core) == ["succeeded"]
    assert len(github.pulls(CATALOG_REPO)) == 1


def test_several_ids_propose_one_change_each(
    runner, core: Core, hub: FakeHub, github: FakeGitHub
) -> None:  # type: ignore[no-untyped-def]
    _validated(runner, core, hub)
    reply = runner.execute(f"catalog pr {ID} missing-one", user="U_ADMIN")
    assert not reply.ok  # one of them could not be proposed
    ok, bad = reply.data["proposals"]
    assert ok["entry_id"] == ID and ok["approval"] is not None
    assert bad == {
        "entry_id": "missing-one",
        "error": "no catalog entry 'missing-one' (see `catalog list`)",
    }
    assert "❌ missing-one: no catalog entry" in reply.text
