"""Progressive promotion of a canary group (`group promote --steps`) on the fake cluster: each
step is a deployment of the same InferenceService with another canaryTrafficPercent, Ready
before the analysis; a significant breach puts the traffic back and fails the change."""

from __future__ import annotations

from modelarium.core.app import Core
from modelarium.core.db.models.catalog import CatalogEntryRow
from tests.fakes.kubernetes import FakeKubernetes
from tests.unit.catalog.helpers import COMMIT, entry_json
from tests.unit.deployments.conftest import run_jobs
from tests.unit.deployments.test_group_canary import (  # noqa: F401 - the settings fixture
    CHALLENGER,
    CHAMPION,
    _canary_group,
    _events,
    _ok,
    _predictor,
    _traffic,
    settings,
)
from tests.unit.discovery.hubdata import LLAMA_8B


def _promote_in_steps(core: Core, runner, steps: str):
    core.settings = core.settings.model_copy(update={"group_step_interval": 0.05})
    proposed = _ok(runner.execute(f"group promote chat --steps {steps}", user="U_ADMIN"))
    change = core.changes.get(proposed.data["change"])
    assert "in steps" in change.summary
    for approver in ("U_ADMIN2", "U_ADMIN3"):
        _ok(runner.execute(f"approve {proposed.data['approval']}", user=approver))
    run_jobs(core)
    return core.changes.get(change.id)


def test_canary_promotion_in_steps_sets_each_share_on_kserve(
    core: Core, runner, cluster: FakeKubernetes
) -> None:
    _canary_group(core, runner, cluster)
    _events(core, {CHAMPION: (30, 0.200, 0.0), CHALLENGER: (30, 0.100, 0.0)})
    with core.db.transaction() as session:  # the catalog lists the challenger's model
        data = entry_json("llama-3.1-8b", huggingface={"repo": LLAMA_8B, "commit": COMMIT})
        session.add(
            CatalogEntryRow(
                entry_id="llama-3.1-8b", path="models/llama-3.1-8b.json", blob_sha="0" * 40,
                data=data, status="approved", repo_id=LLAMA_8B, commit=COMMIT,
                git_commit="1" * 40,
            )
        )  # fmt: skip
    change = _promote_in_steps(core, runner, "25,50")
    assert change.status == "succeeded", change.outcome
    assert "canaryTrafficPercent" not in _predictor(cluster)
    assert _traffic(cluster) == [("chat-predictor-00003", 100)]
    group = core.groups.get("chat")
    assert group.status == "promoted"
    assert [(m.name, m.role, m.traffic) for m in group.members] == [
        (CHALLENGER, "champion", 100),
        (CHAMPION, "retired", 0),
    ]
    assert [e.action for e in core.groups.history("chat")][-3:] == [
        "promote step 25%", "promote step 50%", "promote",
    ]  # fmt: skip
    steps = [e.detail["members"] for e in core.groups.history("chat")[-3:-1]]
    assert [{m["name"]: m["traffic"] for m in s}[CHALLENGER] for s in steps] == [25, 50]
    # every step was a deployment event of its own
    history = runner.execute("deployment history dev/chat", user="U_VIEWER").data["history"]
    assert [(h["action"], h["outcome"]) for h in history][-3:] == [
        ("canary 25%", "succeeded"), ("canary 50%", "succeeded"), ("apply", "succeeded"),
    ]  # fmt: skip
    # the deployment wants the promoted spec (not a step's)
    assert (
        "canaryTrafficPercent"
        not in core.groups.ports.deployment_canary.current("dev/chat")[0]["spec"]["predictor"]
    )
    shown = _ok(runner.execute("catalog show llama-3.1-8b", user="U_VIEWER"))
    assert [h["text"] for h in shown.data["history"]] == [
        f"{CHALLENGER}: promoted to champion of group chat, replacing {CHAMPION}"
    ]
    bad = runner.execute("group promote chat --steps 10,5", user="U_ADMIN")
    assert not bad.ok and "Traceback" not in bad.text


def test_canary_steps_stop_and_restore_the_traffic_on_a_breach(
    core: Core, runner, cluster: FakeKubernetes
) -> None:
    _canary_group(core, runner, cluster)
    # recorded now: the step's analysis (over the last interval) sees the challenger failing
    now = core.clock.now().timestamp()
    rows = [
        {"ts": now, "member": member, "source": "eval", "ok": not (bad and i % 2),
         "latency_ms": 100.0 + i % 5, "completion_tokens": 10}
        for member, bad in ((CHAMPION, False), (CHALLENGER, True)) for i in range(40)
    ]  # fmt: skip
    core.groups.record(core.groups.get("chat"), rows)
    core.settings = core.settings.model_copy(update={"group_step_interval": 0.05})
    proposed = _ok(runner.execute("group promote chat --steps 50", user="U_ADMIN"))
    change = core.changes.get(proposed.data["change"])
    for approver in ("U_ADMIN2", "U_ADMIN3"):
        _ok(runner.execute(f"approve {proposed.data['approval']}", user=approver))
    run_jobs(core)
    change = core.changes.get(change.id)
    assert change.status == "failed", change.outcome
    assert "step 50%: a rule was breached" in change.outcome
    assert _predictor(cluster)["canaryTrafficPercent"] == 10  # back where it was
    group = core.groups.get("chat")
    assert group.status == "running"
    assert group.member(CHALLENGER).traffic == 10 and group.member(CHAMPION).traffic == 90
    assert [e.action for e in core.groups.history("chat")][-2:] == [
        "promote step 50%", "promote aborted",
    ]  # fmt: skip


def test_pick_of_a_canary_group_draws_by_kserves_split_and_gives_the_revisions_url(
    core: Core, runner, cluster: FakeKubernetes
) -> None:
    _canary_group(core, runner, cluster)
    annotations = cluster.custom_object("dev", "chat")["metadata"]["annotations"]
    assert annotations["serving.kserve.io/enable-tag-routing"] == "true"
    core.groups._random = lambda: 0.05  # within the challenger's 10%
    picked = _ok(runner.execute("group pick chat", user="U_VIEWER"))
    assert picked.data["member"] == CHALLENGER and picked.data["role"] == "challenger"
    assert picked.data["url"].startswith("http://latest-chat-predictor.dev.")
    assert "KServe's live split of dev/chat" in picked.text and "90%" in picked.text
    core.groups._random = lambda: 0.5
    picked = _ok(runner.execute("pick chat", user="U_VIEWER"))  # the spelling
    assert picked.data["member"] == CHAMPION
    assert picked.data["url"].startswith("http://prev-chat-predictor.dev.")
