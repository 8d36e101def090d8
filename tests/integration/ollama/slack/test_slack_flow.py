"""From Slack: paste a Modelfile in a modal, save it, create it on Ollama, and watch a pull's
progress edit one channel message in place (real bolt front, FakeSlack, fake Ollama)."""

from __future__ import annotations

import json
import threading
import time

from tests.integration.ollama.conftest import run_jobs
from tests.integration.slack.conftest import ADMIN_A, CHANNEL, Harness, shown

GOOD = 'FROM llama3.2\nSYSTEM """You are a pirate."""\nPARAMETER temperature 0.9\n'


def _modal(slack: Harness) -> dict:
    opened = [c for c in slack.fake.calls("views.open") if c.ok]
    view = opened[-1].params["view"]
    return json.loads(view) if isinstance(view, str) else view


def _job_updates(slack: Harness, ts: str) -> list[str]:
    texts = []
    for call in slack.fake.calls("chat.update"):
        if call.ok and call.params.get("ts") == ts:
            blocks = call.params.get("blocks")
            blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
            texts.append(json.dumps(blocks, ensure_ascii=False))
    return texts


def test_paste_in_a_modal_save_and_create_on_ollama(slack: Harness, gpu1) -> None:
    slack.command("modelfile import pirate", user=ADMIN_A)
    modal = _modal(slack)
    assert json.loads(modal["private_metadata"])["command"] == "modelfile import pirate"
    text_block = next(b for b in modal["blocks"] if b["block_id"] == "f.text")
    assert text_block["element"]["multiline"] is True

    # a Modelfile that does not parse keeps the modal open with the reason on the field
    bad = slack.post(
        slack.fake.view_submission(
            values={"f.text": {"value": "FROM llama3.2\nBOGUS x\n"}}, user_id=ADMIN_A
        )
    )
    errors = bad.json()["errors"]["f.text"]
    assert errors.startswith("the Modelfile does not parse: line 2, column 1")

    good = slack.post(
        slack.fake.view_submission(
            values={"f.text": {"value": GOOD}, "f.message": {"value": "first"}}, user_id=ADMIN_A
        )
    )
    assert good.status == 200
    slack.drain()
    view = slack.core.modelfiles.library.revision("pirate")
    assert (view.text, view.message, view.author) == (GOOD, "first", ADMIN_A)
    answer = [e for e in slack.fake.ephemerals(CHANNEL, ADMIN_A) if "Saved pirate" in shown(e)]
    assert answer, "the saved preview is shown to the submitter"

    slack.command("ollama create pirate-bot --modelfile pirate --endpoint gpu1", user=ADMIN_A)
    assert "job *#1*" in shown(slack.last_response())
    slack.deliver()
    (card,) = [m for m in slack.fake.messages(CHANNEL) if "create pirate-bot" in shown(m)]
    (done,) = run_jobs(slack.core)
    assert done.status == "succeeded", done.error
    slack.deliver()
    assert "succeeded" in shown(slack.fake.message(CHANNEL, card.ts))
    assert gpu1.model("pirate-bot") is not None
    assert not slack.core.modelfiles.library.revision("pirate").draft


def test_a_pasted_modelfile_keeps_typographic_quotes_and_entities(slack: Harness) -> None:
    """Modal values arrive raw (not HTML-escaped, quotes as typed) and must be saved as such."""
    text = 'FROM llama3.2\nSYSTEM """Don’t say &amp; or “quotes”; a <b> tag."""\n'
    slack.command("modelfile import quotes", user=ADMIN_A)
    response = slack.post(
        slack.fake.view_submission(values={"f.text": {"value": text}}, user_id=ADMIN_A)
    )
    assert response.status == 200
    slack.drain()
    assert slack.core.modelfiles.library.revision("quotes").text == text


def test_export_as_a_file_upload(slack: Harness, gpu1) -> None:
    slack.core.modelfiles.library.save("pirate", GOOD, author=ADMIN_A)
    slack.command("modelfile export pirate --as file", user=ADMIN_A)
    (upload,) = [f for f in slack.fake.files() if f.filename == "pirate-r1.Modelfile"]
    assert upload.content == GOOD.encode()


def test_pull_progress_edits_one_message_in_place(slack: Harness, gpu1) -> None:
    gpu1.pull_delay = 0.2  # about two seconds of streaming: several deliveries see it
    slack.command("ollama pull qwen3:0.6b --endpoint gpu1", user=ADMIN_A)
    slack.deliver()
    (card,) = [m for m in slack.fake.messages(CHANNEL) if "pull qwen3:0.6b" in shown(m)]
    worker = threading.Thread(target=run_jobs, args=(slack.core, 1))
    worker.start()
    deadline = time.monotonic() + 30
    while worker.is_alive() and time.monotonic() < deadline:
        slack.deliver()
        time.sleep(0.05)
    worker.join(5)
    slack.deliver()
    updates = _job_updates(slack, card.ts)
    assert len(updates) >= 2, "the card was edited as the pull went on"
    assert any("pulling" in u and "%" in u for u in updates), "a progress bar was shown"
    assert "succeeded" in updates[-1]
    slack.deliver()  # the follow-up waits for its parent's ts
    posted = [
        c for c in slack.fake.calls("chat.postMessage") if "pull qwen3" in json.dumps(c.params)
    ]
    top, replies = (
        [c for c in posted if not c.params.get("thread_ts")],
        [c for c in posted if c.params.get("thread_ts")],
    )
    assert len(top) == 1, "one message, edited in place"
    # the result goes back to whoever asked, in the card's thread
    [reply] = replies
    assert reply.params["thread_ts"] == card.ts and f"<@{ADMIN_A}>" in json.dumps(reply.params)
