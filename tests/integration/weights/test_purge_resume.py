"""An approved purge is a job in the daemon's workers: killed mid-way, it completes after a
restart, and its final message lists every revision it removed with a reinstall hint."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelarium.core.app import Core
from modelarium.core.messages import render_plain
from tests.fakes.hf_hub import FakeHub
from tests.integration.weights.test_crash_resume import _finish, _killed, _worker, setup  # noqa: F401
from tests.unit.weights.helpers import MiB, add_model, repo_dir, run_jobs

pytestmark = pytest.mark.slow  # worker processes, SIGKILLed

REPOS = ("org/a", "org/b", "org/c")


def test_a_killed_purge_completes_after_restart(
    setup: tuple[Core, dict],  # noqa: F811
    fake_hub: FakeHub,
) -> None:
    core, env = setup
    for seed, repo in enumerate(REPOS):
        add_model(fake_hub, repo, size=2 * MiB, seed=seed)
        assert core.changes.propose("weights.install", {"repo": repo}, "U_ADMIN").job
    assert [v.status for v in run_jobs(core)] == ["succeeded"] * 3
    core.settings.purge_approval_threshold = MiB  # so the purge needs an approval
    commits = {v.repo_id: v.commit for v in core.weights.inventory()}
    proposal = core.changes.propose(
        "weights.purge",
        {"location": "default", "select": [f"{r}@{commits[r]}" for r in REPOS]},
        "U_ADMIN",
        "C1",
    )
    assert proposal.approval is not None and proposal.job is None
    core.approvals.decide(proposal.approval.id, "U_ADMIN2", "approve")
    job = core.changes.get(proposal.change.id).job_id
    assert job is not None and len(core.weights.inventory()) == 3  # nothing removed inline

    _killed(_worker(env, job, "--die", "purge-after-remove:2"))
    root: Path = core.settings.locations[0].path
    gone = [r for r in REPOS if not (repo_dir(root, r) / "snapshots").exists()]
    assert len(gone) == 2, "killed after the files of the second revision were deleted"
    assert core.changes.get(proposal.change.id).status == "running"

    out = _finish(env, job)
    assert "2 attempt(s)" in out
    change = core.changes.get(proposal.change.id)
    assert change.status == "succeeded", change.outcome
    assert core.weights.inventory() == []
    assert sorted(change.result["removed"]) == sorted(f"{r}@{commits[r]}" for r in REPOS)
    card = render_plain(core.notify.get(f"change:{change.id}")[0])
    assert "Removed 3 revision(s)" in card
    for repo in REPOS:
        assert f"install {repo}@{commits[repo]}" in card  # the reinstall hint
    removals = core.audit.query(action="weights.remove", limit=10)
    assert len(removals) == 3
