"""The change engine through the commands every front shares: propose, approve (bound to the
digest), run as a job, history, revert; on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from modelarium.core.changes import (
    ApprovalPolicy,
    ChangeContext,
    ChangeKind,
    Failed,
    Plan,
    Retryable,
)
from modelarium.core.errors import ConflictError
from modelarium.core.jobs import WorkerPool
from modelarium.core.rbac import Role


def _work(core) -> list:
    pool = WorkerPool(core.jobs, size=0)
    done = []
    while (view := pool.run_one()) is not None:
        done.append(view)
    return done


class Toggle(ChangeKind):
    """A test kind: sets a flag in a dict; ``world`` is what ``check`` compares against."""

    name = "test.toggle"
    stages = ("first", "second")

    def __init__(self) -> None:
        self.world: dict[str, Any] = {"flag": False, "version": 1}
        self.fail: list[Exception] = []

    def plan(self, params: dict[str, Any], user: str) -> Plan:
        return Plan(
            target="toggle:flag",
            summary=f"Set the flag to {params['value']}",
            params={"value": params["value"], "version": self.world["version"]},
            approval=ApprovalPolicy.required("flags matter", role=Role.ADMIN)
            if params.get("approve")
            else ApprovalPolicy.none(),
            diff=(f"- flag: {self.world['flag']}", f"+ flag: {params['value']}"),
        )

    def check(self, params: dict[str, Any]) -> None:
        if params["version"] != self.world["version"]:
            raise ConflictError("the flag was changed meanwhile")

    def run_stage(self, ctx: ChangeContext, stage: str) -> None:
        if self.fail:
            raise self.fail.pop(0)
        if stage == "second":
            self.world["flag"] = ctx.params["value"]
            ctx.record(f"flag is {ctx.params['value']}", previous=not ctx.params["value"])


@pytest.fixture
def toggle(core) -> Toggle:
    kind = Toggle()
    core.changes.register(kind)
    return kind


def test_a_change_without_approval_runs_as_a_job_and_is_kept_in_history(core, runner, toggle):
    proposal = core.changes.propose("test.toggle", {"value": True}, "U_ADMIN", "C1")
    assert proposal.approval is None and proposal.job is not None
    assert proposal.change.status == "queued" and not toggle.world["flag"]
    [job] = _work(core)
    assert job.status == "succeeded" and toggle.world["flag"] is True
    change = core.changes.get(proposal.change.id)
    assert change.status == "succeeded" and change.report == ["flag is True"]
    assert change.job_id == job.id and change.finished_at is not None
    listed = runner.execute("changes toggle", user="U_VIEWER")
    assert [c["id"] for c in listed.data["changes"]] == [change.id]


def test_approval_is_bound_to_the_change_digest_and_the_work_goes_to_a_worker(core, runner, toggle):
    proposal = core.changes.propose("test.toggle", {"value": True, "approve": True}, "U_ADMIN")
    assert proposal.approval is not None and proposal.job is None
    assert proposal.approval.digest == proposal.change.digest
    stale = runner.execute(f"approve {proposal.approval.id} --digest 0000deadbeef", user="U_ADMIN2")
    assert not stale.ok and "does not match what you saw" in stale.text
    done = runner.execute(
        f"approve {proposal.approval.id} --digest {proposal.change.short_digest}", user="U_ADMIN2"
    )
    assert done.ok and done.data["change"] == proposal.change.id
    assert not toggle.world["flag"], "nothing runs in the process that took the click"
    assert core.changes.get(proposal.change.id).status == "queued"
    [job] = _work(core)
    assert job.status == "succeeded" and toggle.world["flag"] is True


def test_the_world_moving_after_approval_refuses_to_run(core, toggle):
    proposal = core.changes.propose("test.toggle", {"value": True, "approve": True}, "U_ADMIN")
    core.approvals.decide(proposal.approval.id, "U_ADMIN2", "approve")
    toggle.world["version"] = 2  # someone changed the flag meanwhile
    [job] = _work(core)
    assert job.status == "failed" and job.attempts == 1  # a conflict is not retried
    change = core.changes.get(proposal.change.id)
    assert change.status == "failed" and "changed meanwhile" in (change.outcome or "")
    assert toggle.world["flag"] is False


def test_one_rule_for_retries(core, toggle):
    toggle.fail = [Retryable("cluster busy")]
    proposal = core.changes.propose("test.toggle", {"value": True}, "U_ADMIN")
    [job] = _work(core)
    assert job.status == "queued" and job.attempts == 1  # backing off, then again
    assert core.changes.get(proposal.change.id).status == "queued"
    toggle.fail = [Failed("bad manifest")]
    with core.db.transaction() as session:  # the backoff is over
        from modelarium.core.db.models.jobs import Job

        session.get(Job, job.id).run_after = core.clock.now()
    [again] = _work(core)
    assert again.status == "failed" and again.attempts == 2 and again.error == "bad manifest"


def test_one_unfinished_change_per_target(core, toggle):
    first = core.changes.propose("test.toggle", {"value": True, "approve": True}, "U_ADMIN")
    with pytest.raises(ConflictError, match=f"change #{first.change.id} on toggle:flag is still"):
        core.changes.propose("test.toggle", {"value": False}, "U_ADMIN")
    core.approvals.decide(first.approval.id, "U_ADMIN2", "reject", note="no")
    assert core.changes.get(first.change.id).status == "rejected"
    assert core.changes.propose("test.toggle", {"value": False}, "U_ADMIN").job is not None


def test_change_shows_plan_approvals_job_outcome_and_what_reverted_it(core, runner):
    granted = runner.execute("role grant carol operator", user="U_ADMIN")
    assert granted.ok and core.rbac.role_of("carol") == Role.OPERATOR
    shown = runner.execute(f"change {granted.data['change']}", user="U_VIEWER")
    assert (
        shown.ok and "- carol: viewer (default)" in shown.text and "+ carol: operator" in shown.text
    )
    assert shown.data["status"] == "succeeded" and shown.data["job_status"] == "succeeded"

    reverted = runner.execute(f"revert {granted.data['change']}", user="U_ADMIN")
    assert reverted.ok, reverted.text
    assert (
        reverted.data["kind"] == "role.revoke"
        and reverted.data["reverts"] == granted.data["change"]
    )
    assert core.rbac.role_of("carol") == Role.VIEWER
    shown = runner.execute(f"change {granted.data['change']}", user="U_VIEWER")
    assert f"reverted by change #{reverted.data['change']}" in shown.text
    assert shown.data["reverted_by"] == reverted.data["change"]
    again = runner.execute(f"revert {granted.data['change']}", user="U_ADMIN")
    assert not again.ok and "already reverted" in again.text


def test_an_admin_grant_is_reverted_with_revert_after_its_own_approval(core, runner):
    granted = runner.execute("role grant bob admin", user="U_ADMIN")
    runner.execute(f"approve {granted.data['approval']}", user="U_ADMIN2")
    _work(core)
    assert core.rbac.role_of("bob") == Role.ADMIN
    revert = runner.execute(f"revert {granted.data['change']}", user="U_ADMIN")
    assert revert.ok and revert.data["approval"], "the inverse is approved like any change"
    assert core.rbac.role_of("bob") == Role.ADMIN
    assert runner.execute(f"approve {revert.data['approval']}", user="U_ADMIN2").ok
    _work(core)
    assert core.rbac.role_of("bob") == Role.VIEWER
    history = runner.execute("changes role:bob", user="U_ADMIN").data["changes"]
    assert [(c["kind"], c["status"]) for c in history] == [
        ("role.revoke", "succeeded"),
        ("role.grant", "succeeded"),
    ]
    assert history[0]["reverts"] == granted.data["change"]


def test_revert_needs_the_role_of_the_inverse_change(core, runner):
    granted = runner.execute("role grant carol operator", user="U_ADMIN")
    core.rbac.grant("U_OP", Role.OPERATOR, "t")
    denied = runner.execute(f"revert {granted.data['change']}", user="U_OP")
    assert not denied.ok and "needs the admin role" in denied.text
    assert core.rbac.role_of("carol") == Role.OPERATOR


def test_not_revertible_says_why(core, runner, toggle):
    proposal = core.changes.propose("test.toggle", {"value": True}, "U_ADMIN")
    _work(core)
    reply = runner.execute(f"revert {proposal.change.id}", user="U_ADMIN")
    assert not reply.ok and "cannot be reverted" in reply.text


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("changes --kind bogus", "no change kind 'bogus'"),
        ("changes --page 9", "there is no page 9"),
        ("change 999", "no change #999"),
        ("change x", "id"),
        ("revert 999", "no change #999"),
    ],
)
def test_bad_input_is_one_line_and_the_usage(runner, text: str, error: str) -> None:
    reply = runner.execute(text, user="U_ADMIN")
    assert not reply.ok and error in reply.text and "Traceback" not in reply.text


def test_changes_filters_by_user_and_kind(core, runner):
    runner.execute("role grant carol operator", user="U_ADMIN")
    runner.execute("role grant dave operator", user="U_ADMIN2")
    mine = runner.execute("changes --user U_ADMIN2", user="U_VIEWER").data["changes"]
    assert [c["target"] for c in mine] == ["role:dave"]
    grants = runner.execute("changes --kind role.grant", user="U_VIEWER").data
    assert grants["total"] == 2


def test_the_card_names_who_must_act_by_group_or_by_name_and_can_dm_them(
    tmp_path, database_url, make_core
):
    from modelarium.core.messages import render_plain
    from tests.conftest import make_settings

    settings = make_settings(
        tmp_path,
        database_url,
        admins=["U_A", "U_B", "U_C"],
        approver_groups={"S0ADMINS": "admin"},
        approval_dm=True,
    )
    core = make_core(settings)
    proposal = core.changes.propose("role.grant", {"user": "bob", "role": "admin"}, "U_A", "C1")
    card = render_plain(core.notify.get(f"change:{proposal.change.id}")[0])
    assert "Waiting for: <!subteam^S0ADMINS>" in card
    for approver in ("U_B", "U_C"):  # everyone who may approve but the requester
        message, _ref, channel = core.notify.get(f"change:{proposal.change.id}:ask:{approver}")
        assert channel == approver and "asks for your approval" in render_plain(message)
    assert core.notify.get(f"change:{proposal.change.id}:ask:U_A") is None
    core.changes.approver_groups = {}
    core.approvals.decide(proposal.approval.id, "U_B", "reject")
    decided = render_plain(core.notify.get(f"change:{proposal.change.id}")[0])
    assert "Waiting for" not in decided and "rejected" in decided
    other = core.changes.propose("role.grant", {"user": "eve", "role": "admin"}, "U_A")
    card = render_plain(core.notify.get(f"change:{other.change.id}")[0])
    assert "Waiting for: <@U_B> <@U_C>" in card  # by name, without the requester


def test_retrying_a_failed_change_job_resumes_the_same_change(core, runner, toggle):
    """One mechanism: `jobs retry` re-queues the job; the change engine takes its change back
    from failed to queued, re-runs its pre-flight check, and reports the new outcome."""
    proposal = core.changes.propose("test.toggle", {"value": True}, "U_ADMIN", "C1")
    toggle.fail = [Failed("the volume is read-only")]
    [job] = _work(core)
    assert job.status == "failed" and core.changes.get(proposal.change.id).status == "failed"

    toggle.world["version"] = 2  # the world moved while it was failed
    reply = runner.execute(f"jobs retry {job.id}", user="U_ADMIN")
    assert reply.ok and reply.data["change"] == proposal.change.id, reply.text
    change = core.changes.get(proposal.change.id)
    assert change.status == "queued" and change.finished_at is None and change.outcome is None
    [rerun] = _work(core)
    assert rerun.status == "failed" and "changed meanwhile" in (rerun.error or "")
    assert not toggle.world["flag"]  # the check ran again before anything was touched

    toggle.world["version"] = 1
    assert runner.execute(f"jobs retry {job.id}", user="U_ADMIN").ok
    [last] = _work(core)
    assert last.status == "succeeded" and toggle.world["flag"] is True
    assert core.changes.get(proposal.change.id).status == "succeeded"
    assert not runner.execute(f"jobs retry {job.id}", user="U_ADMIN").ok
