"""Model groups with the canary strategy, on the fake cluster: a group from a deployment, a
challenger as a new revision on 10% (KServe's canaryTrafficPercent, each revision with its own
logger URL), comparisons fed by logger events, promotion after two approvals with the evidence
on the card, and the guard cutting a worse challenger by itself."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from starlette.testclient import TestClient

from modelarium.bot.inference import InferenceEvents
from modelarium.config import Settings
from modelarium.core.app import Core
from modelarium.core.groups.guard import run_guard
from modelarium.core.ports import LOGGER_TOKEN_MASK
from modelarium.entrypoints.web import build_app
from tests.fakes import kserve_logger as kl
from tests.fakes.kubernetes import FakeKubernetes
from tests.fakes.ollama import FakeOpenAI
from tests.unit.deployments.conftest import install, run_jobs
from tests.unit.discovery.hubdata import LLAMA_8B

PUBLIC = "https://modelarium.example.com"
CHAMPION = "rev1-Llama-3.1-8B-Instruct@c0ffee0"
CHALLENGER = "rev2-Llama-3.1-8B-Instruct@c0ffee0"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "public_url": PUBLIC,
            "group_min_requests": 20,
            "endpoint_allowlist": ["127.0.0.0/8"],  # the fake revisions answer on loopback
        }
    )


def _ok(reply):
    assert reply.ok, reply.text
    return reply


def _predictor(cluster: FakeKubernetes) -> dict:
    return cluster.custom_object("dev", "chat")["spec"]["predictor"]


def _traffic(cluster: FakeKubernetes) -> list[tuple[str, int]]:
    status = cluster.custom_object("dev", "chat")["status"]["components"]["predictor"]
    return [(t["revisionName"], t["percent"]) for t in status["traffic"]]


def _canary_group(core: Core, runner, cluster: FakeKubernetes) -> None:
    install(core, LLAMA_8B)
    _ok(runner.execute(f"deploy {LLAMA_8B} --name chat --namespace dev --context 8k",
                       user="U_ADMIN"))  # fmt: skip
    assert [j.status for j in run_jobs(core)] == ["succeeded"]
    created = _ok(runner.execute("group create chat --strategy canary --champion dev/chat",
                                 user="U_ADMIN"))  # fmt: skip
    assert created.data.get("change"), (created.text, created.data)
    assert created.data["deployment"] == "dev/chat"
    assert [j.status for j in run_jobs(core)] == ["succeeded"]
    token = core.groups.token("chat")
    logger = _predictor(cluster)["logger"]
    assert logger == {
        "mode": "all",
        "url": f"{PUBLIC}/inference/events/chat/{quote(CHAMPION, safe='')}?token={token}",
    }
    command = f"group challenge chat {LLAMA_8B} --traffic 10 --set max-num-seqs=64"
    challenged = _ok(runner.execute(command, user="U_ADMIN"))
    assert [j.status for j in run_jobs(core)] == ["succeeded"], core.changes.get(
        challenged.data["change"]
    ).outcome
    predictor = _predictor(cluster)
    assert predictor["canaryTrafficPercent"] == 10
    assert quote(CHALLENGER, safe="") in predictor["logger"]["url"]
    assert "--max-num-seqs=64" in predictor["model"]["args"]
    assert _traffic(cluster) == [("chat-predictor-00003", 10), ("chat-predictor-00002", 90)]
    group = core.groups.get("chat")
    assert [(m.name, m.role, m.traffic) for m in group.members] == [
        (CHAMPION, "champion", 90),
        (CHALLENGER, "challenger", 10),
    ]
    shown = _ok(runner.execute("group show chat", user="U_VIEWER"))
    assert [(t["revisionName"], t["percent"], t["tag"]) for t in shown.data["live"]["traffic"]] == [
        ("chat-predictor-00003", 10, "latest"),
        ("chat-predictor-00002", 90, "prev"),
    ]
    assert "KServe splits `dev/chat` now: 10% chat-predictor-00003 (latest)" in shown.text
    assert shown.data["logger_urls"] == {CHAMPION: None, CHALLENGER: None}  # viewers: no token


def _events(core: Core, pairs: dict[str, tuple[int, float, float]]) -> None:
    """Logger events per member: (count, latency s, error share)."""
    events = InferenceEvents(core)
    client = TestClient(build_app(core, routes=events.routes))
    token = core.groups.token("chat")
    t0 = core.clock.now().timestamp() - 600
    try:
        for member, (count, latency, errors) in pairs.items():
            path = f"/inference/events/chat/{quote(member, safe='')}?token={token}"
            for n in range(count):
                eid = f"{member}-{n}"
                at = t0 + n
                body = (kl.error_response() if n < count * errors
                        else kl.chat_response("chat", "ok", 10, 20))  # fmt: skip
                pair = (
                    (kl.REQUEST, at, kl.chat_request("chat", "hi")),
                    (kl.RESPONSE, at + latency + n % 7 * 0.001, body),
                )
                for kind, when, data in pair:
                    headers, raw = kl.binary(kind, eid, when, data, service="chat",
                                             namespace="dev")  # fmt: skip
                    assert client.post(path, headers=headers, content=raw).status_code == 202
    finally:
        client.close()
        events.close()


def test_canary_challenger_compared_on_logger_events_and_promoted(
    core: Core, runner, cluster: FakeKubernetes
) -> None:
    _canary_group(core, runner, cluster)
    _events(core, {CHAMPION: (30, 0.200, 0.0), CHALLENGER: (30, 0.100, 0.0)})
    compared = _ok(runner.execute("group compare chat --no-chart", user="U_VIEWER"))
    assert compared.data["members"][CHALLENGER]["requests"] == 30
    assert compared.data["members"][CHALLENGER]["verdict"] == "better"
    proposed = _ok(runner.execute("group promote chat", user="U_ADMIN"))
    change = core.changes.get(proposed.data["change"])
    assert change.plan["approvals_required"] == 2
    assert "— evidence —" in change.diff and any("verdict: better" in d for d in change.diff)
    assert any("canaryTrafficPercent" in line for line in change.diff)  # the spec's diff
    assert run_jobs(core) == []  # not before two approvals
    for approver in ("U_ADMIN2", "U_ADMIN3"):
        _ok(runner.execute(f"approve {proposed.data['approval']}", user=approver))
    assert [j.status for j in run_jobs(core)] == ["succeeded"]
    assert "canaryTrafficPercent" not in _predictor(cluster)
    assert _traffic(cluster) == [("chat-predictor-00003", 100)]
    group = core.groups.get("chat")
    assert group.status == "promoted"
    assert [(m.name, m.role, m.traffic) for m in group.members] == [
        (CHALLENGER, "champion", 100),
        (CHAMPION, "retired", 0),
    ]
    history = runner.execute("deployment history dev/chat", user="U_VIEWER").data["history"]
    assert [h["outcome"] for h in history] == [
        "succeeded"
    ] * 4  # deploy, attach, challenge, promote
    # Once promoted, the spec serves everything: deleting the group takes the logger off it
    deleting = _ok(runner.execute("group delete chat", user="U_ADMIN"))
    change = core.changes.get(deleting.data["change"])
    assert change.kind == "group.canary" and change.params["op"] == "delete"
    assert "- group chat (2 member(s))" in change.diff
    assert any("logger" in line for line in change.diff)  # the spec's diff shows it going
    assert run_jobs(core) == []  # an operator approves a deletion
    _ok(runner.execute(f"approve {deleting.data['approval']}", user="U_ADMIN2"))
    assert [j.status for j in run_jobs(core)] == ["succeeded"]
    predictor = _predictor(cluster)
    assert "logger" not in predictor and "canaryTrafficPercent" not in predictor
    assert "--max-num-seqs=64" in predictor["model"]["args"]  # the promoted spec, kept
    assert _traffic(cluster)[0][1] == 100  # the new revision (no logger) serves everything
    assert not core.groups.exists("chat")


def test_guard_cuts_a_worse_canary_to_zero(core: Core, runner, cluster: FakeKubernetes) -> None:
    _canary_group(core, runner, cluster)
    _events(core, {CHAMPION: (40, 0.1, 0.0), CHALLENGER: (40, 0.1, 0.5)})
    report = run_guard(core.groups)
    assert report.cut == [f"chat/{CHALLENGER}"]
    assert [j.status for j in run_jobs(core)] == ["succeeded"]  # the automatic change ran
    assert _predictor(cluster)["canaryTrafficPercent"] == 0
    assert _traffic(cluster) == [("chat-predictor-00003", 0), ("chat-predictor-00002", 100)]
    assert core.groups.get("chat").member(CHALLENGER).traffic == 0
    # The split is still in place (0%): a new spec would not reach the serving revision, so
    # the deletion leaves the logger and says so
    deleting = _ok(runner.execute("group delete chat", user="U_ADMIN"))
    change = core.changes.get(deleting.data["change"])
    assert change.kind == "group.delete"
    assert change.warnings == [
        "dev/chat keeps its logger: it still splits traffic between revisions "
        "(canaryTrafficPercent), so a new spec would not reach the one that serves; its events "
        "will be refused (401, counted as auth)"
    ]


def test_eval_sends_the_prompts_to_each_revision_at_its_tag_url(
    core: Core, runner, cluster: FakeKubernetes
) -> None:
    """KServe's tag routing gives each revision its own URL; the Hugging Face runtime serves
    the OpenAI API under /openai with the InferenceService's name as the model."""
    with (
        FakeOpenAI(prefix="/openai", models=["chat"]) as prev,
        FakeOpenAI(prefix="/openai", models=["chat"]) as latest,
    ):
        latest.set_chat(error_rate=1.0)
        cluster.kserve.tag_urls = {"prev": prev.url, "latest": latest.url}
        _canary_group(core, runner, cluster)
        reply = _ok(runner.execute("group eval chat --n 6", user="U_ADMIN"))
        assert (prev.chats, latest.chats) == (6, 6)
        assert [path for _, path in prev.calls] == ["/v1/chat/completions"] * 6
    members = reply.data["members"]
    assert (members[CHAMPION]["requests"], members[CHAMPION]["errors"]) == (6, 0)
    assert (members[CHALLENGER]["requests"], members[CHALLENGER]["errors"]) == (6, 6)
    assert members[CHALLENGER]["error"] == "HTTP 500"
    compared = _ok(runner.execute("group compare chat --no-chart", user="U_VIEWER")).data
    assert compared["members"][CHAMPION]["requests"] == 6
    assert compared["members"][CHALLENGER]["errors"] == 6


def test_eval_of_revisions_without_their_own_urls_says_why(
    core: Core, runner, cluster: FakeKubernetes
) -> None:
    _canary_group(core, runner, cluster)
    obj = cluster.custom_object("dev", "chat")
    for entry in obj["status"]["components"]["predictor"]["traffic"]:
        entry.pop("url", None)  # tag routing off
    cluster.set_custom_object_status("dev", "chat", obj["status"])
    reply = runner.execute("group eval chat", user="U_ADMIN")
    assert not reply.ok
    assert "no URL per revision of dev/chat" in reply.text
    assert "enable-tag-routing" in reply.text


def _rows_holding(core: Core, secret: str) -> list[str]:
    """Every table row, any column, that holds ``secret`` in clear text."""
    import sqlalchemy as sa

    found = []
    with core.db.engine.connect() as conn:
        meta = sa.MetaData()
        meta.reflect(conn)
        for table in meta.sorted_tables:
            rows = conn.execute(sa.select(table))  # (a Row's repr shortens long values)
            found += [table.name for row in rows if secret in repr(tuple(row))]
    return found


def test_the_logger_token_reaches_the_cluster_and_nowhere_else(
    core: Core, runner, cluster: FakeKubernetes
) -> None:
    """KServe's logger can carry a credential only in its URL: the cluster gets the token, but
    Modelarium's changes, jobs, messages, applied specs and history keep a mask, and what it
    reads back from the cluster is masked too, so the applied and live specs agree."""
    _canary_group(core, runner, cluster)  # asserts the live logger URL carries the token
    token = core.groups.token("chat")
    assert _rows_holding(core, token) == []
    assert _rows_holding(core, LOGGER_TOKEN_MASK)  # the specs are kept, with the mask
    for command in ("deployment show dev/chat", "deployment history dev/chat", "changes",
                    "change 3", "deployments", "group history chat"):  # fmt: skip
        reply = runner.execute(command, user="U_ADMIN")
        assert token not in reply.text and token not in repr(reply.data), command
    assert f"token={token}" in _predictor(cluster)["logger"]["url"]
    assert core.deployments.reconcile().drifted == []  # masked live == masked applied
    shown = _ok(runner.execute("group show chat", user="U_ADMIN"))  # an operator may see it
    assert f"token={token}" in shown.data["logger_urls"][CHALLENGER]
    # What fills the mask in fills in only a URL under this Modelarium's own events path
    masked = f"{PUBLIC}/inference/events/chat/m?token={LOGGER_TOKEN_MASK}"
    assert core.groups.reveal_logger_url(masked) == masked.replace(LOGGER_TOKEN_MASK, token)
    elsewhere = masked.replace(PUBLIC, "https://attacker.example")
    assert core.groups.reveal_logger_url(elsewhere) == elsewhere
    unknown = masked.replace("/chat/", "/other/")
    assert core.groups.reveal_logger_url(unknown) == unknown
