"""`/model ollama ...` end to end: the command runner, the endpoint registry, jobs and approvals
against the fake Ollama, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time

import pytest

from modelarium.core.messages import render_plain
from modelarium.core.modelfiles.ollama_ops import CREATE_JOB, PULL_JOB
from tests.integration.ollama.conftest import OP, OP2, run_jobs

GOOD = (
    "FROM llama3.2\n"
    'SYSTEM """You are a pirate. Answer in one sentence."""\n'
    "PARAMETER temperature 0.9\n"
    "PARAMETER num_ctx 4096\n"
)


def run(runner, text, user=OP, front="cmd", channel="C1"):
    return runner.execute(text, user=user, front=front, channel=channel)


def test_list_and_show(runner, gpu1):
    listed = run(runner, "ollama list --endpoint gpu1", user="U_VIEWER")
    assert listed.ok, listed.text
    assert [m["name"] for m in listed.data["models"]] == ["llama3.2:latest"]
    assert "llama3.2:latest" in listed.text and "GB" in listed.text
    shown = run(runner, "ollama show llama3.2 --endpoint gpu1", user="U_VIEWER")
    assert shown.ok, shown.text
    assert shown.data["modelfile"].startswith("FROM llama3.2:latest\n")
    assert shown.data["elements"]["system"] == "You are helpful."
    assert shown.data["elements"]["parameters"] == {"stop": ["<|user|>"], "temperature": "0.6"}
    assert shown.data["dropped"][0].startswith("FROM /root/.ollama/models/blobs/")
    assert "Left out 1 line(s)" in shown.text
    assert [b.label for b in shown.message.all_buttons] == ["Save Modelfile", "Split into elements"]


def test_show_can_save_the_modelfile_and_split_it(runner, core, gpu1):
    denied = run(runner, "ollama show llama3.2 --endpoint gpu1 --save base", user="U_VIEWER")
    assert not denied.ok and "needs the operator role" in denied.data["error"]
    reply = run(runner, "ollama show llama3.2 --endpoint gpu1 --save base --split llama")
    assert reply.ok, reply.text
    view = core.modelfiles.library.revision("base")
    assert view.source == "extract" and view.message == "extracted from llama3.2 on gpu1"
    assert [e["name"] for e in reply.data["split"]] == [
        "llama-system",
        "llama-template",
        "llama-parameters",
    ]
    kinds = {e.name: e.kind for e in core.modelfiles.library.elements()}
    assert kinds == {
        "llama-system": "system",
        "llama-template": "template",
        "llama-parameters": "parameters",
    }
    again = run(runner, "ollama show llama3.2 --endpoint gpu1 --save base")
    assert not again.ok and "unchanged" in again.data["error"]


def test_create_from_a_stored_modelfile_is_a_job_that_records_where_it_applied(runner, core, gpu1):
    run(runner, f"modelfile import pirate --text '{GOOD}'")
    reply = run(runner, "ollama create pirate-bot --modelfile pirate --endpoint gpu1")
    assert reply.ok, reply.text
    job_id = reply.data["job_id"]
    assert reply.data["kind"] == CREATE_JOB and "job *#" in reply.text
    assert core.modelfiles.library.revision("pirate").draft
    (done,) = run_jobs(core)
    assert done.status == "succeeded", done.error
    created = gpu1.model("pirate-bot")
    assert created is not None
    assert created.system == "You are a pirate. Answer in one sentence."
    assert created.parameters["num_ctx"] == 4096 and created.parameters["temperature"] == 0.9
    view = core.modelfiles.library.revision("pirate")
    assert not view.draft
    (application,) = view.applications
    assert (application.endpoint, application.model, application.job_id) == (
        "gpu1",
        "pirate-bot",
        job_id,
    )
    history = run(runner, "modelfile history pirate", user="U_VIEWER")
    assert "applied: pirate-bot on gpu1" in history.text
    card, _, _ = core.notify.get(f"job:{job_id}")
    assert "succeeded" in render_plain(card)
    assert "create pirate-bot on gpu1 from pirate@1" in render_plain(card)


def test_create_refuses_what_would_fail_before_queueing(runner, core, gpu1):
    core.modelfiles.library.save(
        "broken", "FROM llama3.2\nPARAMETER top_k many\n", author=OP, force=True
    )
    core.modelfiles.library.save("local", "FROM ./weights.gguf\n", author=OP)
    bad = run(runner, "ollama create x --modelfile broken --endpoint gpu1")
    assert not bad.ok and "invalid int value [many]" in bad.data["error"]
    local = run(runner, "ollama create x --modelfile local --endpoint gpu1")
    assert not local.ok and "is a local file" in local.data["error"]
    missing = run(runner, "ollama create x --endpoint gpu1")
    assert not missing.ok and "--modelfile is required" in missing.data["error"]
    assert "Usage:" in missing.text
    ghost = run(runner, "ollama create x --modelfile pirate --endpoint nowhere")
    assert not ghost.ok
    assert core.jobs.list() == []


def test_create_fails_cleanly_when_ollama_refuses(runner, core, gpu1):
    core.modelfiles.library.save("tiny", "FROM not-anywhere\n", author=OP)
    reply = run(runner, "ollama create tiny --modelfile tiny --endpoint gpu1")
    (done,) = run_jobs(core)
    assert done.status == "failed" and done.attempts == 1
    assert "pull model manifest: file does not exist" in (done.error or "")
    assert core.modelfiles.library.revision("tiny").draft
    assert reply.data["job_id"] == done.id


def test_pull_reports_streamed_progress_in_one_message(runner, core, gpu1, monkeypatch):
    published: list[tuple[str, str]] = []
    original = core.notify.publish

    def spy(key, message, **kwargs):
        published.append((key, render_plain(message)))
        return original(key, message, **kwargs)

    monkeypatch.setattr(core.notify, "publish", spy)
    reply = run(runner, "ollama pull qwen3:0.6b --endpoint gpu1")
    assert reply.ok and reply.data["kind"] == PULL_JOB
    (done,) = run_jobs(core)
    assert done.status == "succeeded", done.error
    assert gpu1.model("qwen3:0.6b") is not None
    keys = {key for key, _ in published}
    assert keys == {f"job:{done.id}", f"job:{done.id}:outcome"}
    texts = [text for key, text in published if key == f"job:{done.id}"]  # edited in place
    assert any("pulling manifest" in t for t in texts)
    assert any("MB /" in t for t in texts), "byte progress is shown"
    assert "succeeded" in texts[-1]
    assert done.progress["message"].startswith("success")
    assert done.progress["total"] >= 600_000_000


def test_pull_of_an_unknown_model_fails_without_retrying(runner, core, gpu1):
    run(runner, "ollama pull nope --endpoint gpu1")
    (done,) = run_jobs(core)
    assert done.status == "failed" and done.attempts == 1
    assert done.error == "Ollama gpu1: pull model manifest: file does not exist"


def test_an_unreachable_endpoint_is_retried(runner, core, gpu1):
    run(runner, "ollama pull qwen3:0.6b --endpoint gpu1")
    gpu1.set_mode("failing")
    (done,) = run_jobs(core)
    assert done.status == "queued" and done.attempts == 1, "retried later with backoff"
    assert "HTTP 500" in (done.error or "")


def test_a_pull_can_be_cancelled_mid_stream(runner, core, gpu1):
    gpu1.pull_delay = 0.3
    reply = run(runner, "ollama pull qwen3:0.6b --endpoint gpu1")
    job_id = reply.data["job_id"]
    results = []
    worker = threading.Thread(target=lambda: results.extend(run_jobs(core, 1)))
    worker.start()
    deadline = time.monotonic() + 10
    while core.jobs.get(job_id).status != "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    core.jobs.cancel(job_id, OP)
    worker.join(20)
    assert not worker.is_alive()
    assert results[0].status == "cancelled"
    assert gpu1.model("qwen3:0.6b") is None


def test_push(runner, core, gpu1):
    reply = run(runner, "ollama push llama3.2 --endpoint gpu1")
    (done,) = run_jobs(core)
    assert done.status == "succeeded" and done.id == reply.data["job_id"]
    assert done.summary == "push llama3.2 from gpu1"


def test_copy(runner, gpu1):
    reply = run(runner, "ollama copy llama3.2 llama-backup --endpoint gpu1")
    assert reply.ok and gpu1.model("llama-backup") is not None
    ghost = run(runner, "ollama copy ghost x --endpoint gpu1")
    assert not ghost.ok and "not found (HTTP 404)" in ghost.data["error"]
    viewer = run(runner, "ollama copy llama3.2 y --endpoint gpu1", user="U_VIEWER")
    assert not viewer.ok and "needs the operator role" in viewer.data["error"]


def test_rm_needs_an_approval_from_someone_else(runner, core, gpu1):
    reply = run(runner, "ollama rm llama3.2 --endpoint gpu1")
    assert reply.ok, reply.text
    approval = reply.data["approval"]
    assert reply.data["change"] and reply.data["digest"] and reply.data["job"] is None
    assert gpu1.model("llama3.2") is not None, "nothing is deleted before the approval"
    own = run(runner, f"approve {approval}")
    assert not own.ok and "someone else must approve" in own.data["error"]
    approved = run(runner, f"approve {approval}", user=OP2)
    assert approved.ok, approved.text
    assert gpu1.model("llama3.2") is not None, "the deletion is the daemon's job"
    (done,) = run_jobs(core)
    assert done.status == "succeeded", done.error
    assert gpu1.model("llama3.2") is None
    change = core.changes.get(reply.data["change"])
    assert change.status == "succeeded" and "Deleted llama3.2 from gpu1" in change.report[0]
    missing = run(runner, "ollama rm llama3.2 --endpoint gpu1")
    assert not missing.ok and missing.data["error"] == "Ollama gpu1 has no model llama3.2"


def test_rm_approval_is_bound_to_what_the_endpoint_points_at(runner, core, gpu1):
    """Request on a scratch endpoint, repoint it at production, approve: nothing is deleted."""
    from tests.fakes.ollama import FakeOllama

    reply = run(runner, "ollama rm llama3.2 --endpoint gpu1")
    with FakeOllama() as production:
        production.add_model("llama3.2")
        core.endpoints.edit(core.settings.admins[0], "gpu1", base_url=production.url)
        assert run(runner, f"approve {reply.data['approval']}", user=OP2).ok
        (done,) = run_jobs(core)
        assert done.status == "failed" and "was edited after this was approved" in done.error
        assert production.model("llama3.2") is not None
    assert gpu1.model("llama3.2") is not None
    assert core.changes.get(reply.data["change"]).status == "failed"


def test_endpoint_errors_are_one_line(runner, core, gpu1):
    none = run(runner, "ollama list")
    assert not none.ok and "--endpoint is required" in none.data["error"]
    unknown = run(runner, "ollama list --endpoint nowhere")
    assert not unknown.ok and "no endpoint named" in unknown.data["error"]
    core.endpoints.add(OP2, "private-box", gpu1.url, "ollama")
    private = run(runner, "ollama list --endpoint private-box")
    assert not private.ok and "private" in private.data["error"]
    core.endpoints.add(
        "U_ADMIN", "vllm1", "http://127.0.0.1:9", "openai-compatible", shared_with="everyone"
    )
    wrong = run(runner, "ollama list --endpoint vllm1")
    assert not wrong.ok and "is a openai-compatible endpoint" in wrong.data["error"]
    gpu1.stop()
    down = run(runner, "ollama list --endpoint gpu1")
    assert not down.ok and "is unreachable" in down.data["error"]
    assert "\n" not in down.data["error"]


@pytest.mark.parametrize("verb", ["pull", "push", "create", "copy", "rm"])
def test_viewers_cannot_change_an_endpoint(runner, gpu1, verb):
    reply = run(runner, f"ollama {verb} a b --endpoint gpu1", user="U_VIEWER")
    assert not reply.ok and "needs the operator role" in reply.data["error"]


def test_a_new_user_pastes_composes_and_creates(runner, core, gpu1, tmp_path):
    """The whole path: paste -> check -> save -> compose from elements -> create -> applied."""
    path = tmp_path / "Modelfile"
    path.write_text(GOOD + "PARAMETER temprature 0.1\n")
    checked = run(runner, f"modelfile check --file {path}")
    assert not checked.ok and "did you mean 'temperature'" in checked.text
    path.write_text(GOOD)
    saved = run(runner, f"modelfile import pirate --file {path}")
    assert saved.ok and saved.data["draft"]
    split = run(runner, "modelfile split pirate")
    assert split.ok
    assert run(runner, "modelfile element save parameters long-context --set num_ctx=16384").ok
    preview = run(
        runner,
        "modelfile compose --from llama3.2 --system pirate-system --params pirate-parameters "
        "--params long-context",
    )
    assert preview.ok and "PARAMETER num_ctx 16384" in preview.data["text"]
    composed = run(runner, preview.message.all_buttons[0].command + " --save pirate-long")
    assert composed.ok, composed.text
    create_button = composed.message.all_buttons[0]
    assert create_button.form is not None
    created = run(runner, create_button.form.command + " --endpoint gpu1")
    assert created.ok, created.text
    (done,) = run_jobs(core)
    assert done.status == "succeeded", done.error
    model = gpu1.model("pirate-long")
    assert model is not None and model.parameters["num_ctx"] == 16384
    assert model.system == "You are a pirate. Answer in one sentence."
    listed = run(runner, "modelfile list")
    status = {m["name"]: m["applied"] for m in listed.data["modelfiles"]}
    assert status == {"pirate": 0, "pirate-long": 1}
    popular = run(runner, "modelfile popular")
    assert popular.data["combinations"][0]["elements"] == [
        "long-context",
        "pirate-parameters",
        "pirate-system",
    ]


def test_a_job_whose_endpoint_went_away_fails_at_once(runner, core, gpu1):
    run(runner, "ollama pull qwen3:0.6b --endpoint gpu1")
    core.endpoints.remove(core.settings.admins[0], "gpu1")
    (done,) = run_jobs(core)
    assert done.status == "failed" and done.attempts == 1
    assert done.error == "no endpoint named 'gpu1'"
