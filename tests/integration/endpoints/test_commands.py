"""`/model endpoint ...`, `where`, `pick` through the dispatcher, `modelarium cmd` and the shell."""

from __future__ import annotations

import io
import json

import pytest
import sqlalchemy as sa

from modelarium.bot.shell.console import Console
from modelarium.bot.shell.oneshot import run_once
from modelarium.config import Settings
from modelarium.core.rbac import Role
from tests.fakes.ollama import FakeOllama, FakeOpenAI
from tests.integration.endpoints.conftest import ADMIN, KEY, OTHER, OWNER

NEW = "U_NEWBIE"


def _key(value: str = KEY):
    def read_secret(_prompt: str) -> str:
        return value

    return read_secret


def _no_secret(_prompt: str) -> str:
    raise AssertionError("this command must not read a secret")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Nothing here hangs: a healthy endpoint must never time out on a loaded machine."""
    return settings.model_copy(update={"health_timeout": 5.0})


@pytest.fixture
def ollama(fake_ollama: FakeOllama) -> FakeOllama:
    fake_ollama.add_model("llama3.2")
    fake_ollama.add_model("qwen3:0.6b")
    return fake_ollama


@pytest.fixture
def openai(fake_openai: FakeOpenAI) -> FakeOpenAI:
    fake_openai.api_key = KEY
    fake_openai.set_models(["llama3.2", "mistral-7b"])
    return fake_openai


def test_a_new_user_registers_sees_health_and_models_and_gets_picks(
    runner, core, ollama: FakeOllama, openai: FakeOpenAI
):
    assert core.rbac.role_of(NEW) == Role.VIEWER
    added = runner.execute(f"endpoint add gpu-1 {ollama.url}", user=NEW, read_secret=_no_secret)
    assert added.ok, added.text
    assert added.data["endpoint"]["status"] == "healthy"
    assert added.data["check"] == {
        "ok": True,
        "response_ms": added.data["check"]["response_ms"],
        "error": None,
        "previous_status": "unknown",
        "status": "healthy",
        "changed": True,
    }
    assert "2 model(s): `llama3.2:latest`, `qwen3:0.6b`" in added.text

    keyed = runner.execute(
        f"endpoint add vllm {openai.url}/v1 --type openai-compatible --api-key -",
        user=NEW,
        read_secret=_key(),
    )
    assert keyed.ok, keyed.text
    assert keyed.data["endpoint"]["api_key"] == {"set": True, "last4": "cdef"}
    assert "API key: set (…cdef)" in keyed.text and KEY not in keyed.text

    listed = runner.execute("endpoint list", user=NEW)
    assert [(e["name"], e["status"]) for e in listed.data["endpoints"]] == [
        ("gpu-1", "healthy"),
        ("vllm", "healthy"),
    ]
    assert "set (…cdef)" in listed.text

    where = runner.execute("where llama3.2", user=NEW)
    assert sorted(e["name"] for e in where.data["endpoints"]) == ["gpu-1", "vllm"]
    assert runner.execute("where mistral-7b", user=NEW).data["endpoints"][0]["name"] == "vllm"
    nowhere = runner.execute("where gpt-5", user=NEW)
    assert nowhere.ok and nowhere.data["endpoints"] == [] and "No endpoint" in nowhere.text

    picked = runner.execute("pick llama3.2", user=NEW)
    assert picked.ok and picked.data["endpoint"] in ("gpu-1", "vllm")
    assert picked.data["reason"].startswith("healthy, serves llama3.2, fastest recent response")
    assert {c["name"] for c in picked.data["candidates"]} == {"gpu-1", "vllm"}
    assert all(e.use_count == 0 for e in core.endpoints.list(NEW))  # showing is not using

    shown = runner.execute("endpoint show vllm", user=NEW)
    assert shown.ok and shown.data["endpoint"]["models"] == ["llama3.2", "mistral-7b"]
    assert [c["manual"] for c in shown.data["checks"]] == [True]
    assert "Recent checks" in shown.text

    openai.add_model("qwen3-coder")
    models = runner.execute("endpoint models vllm", user=NEW)
    assert models.data["models"] == ["llama3.2", "mistral-7b", "qwen3-coder"]
    assert models.data["refreshed"] is True

    ollama.set_mode("failing")
    checked = runner.execute("endpoint check gpu-1", user=NEW)
    assert checked.ok and checked.data["check"]["ok"] is False
    assert "HTTP 500 from /api/version" in checked.text
    assert "marked down after 3 failures in a row (1 so far)" in checked.text
    stale = runner.execute("endpoint models gpu-1", user=NEW)
    assert stale.data["refreshed"] is False and stale.data["models"] == [
        "llama3.2:latest",
        "qwen3:0.6b",
    ]
    assert "Refresh failed" in stale.text

    removed = runner.execute("endpoint remove gpu-1", user=NEW)
    assert removed.ok and [e.name for e in core.endpoints.list(NEW)] == ["vllm"]


def test_a_typed_key_is_refused_and_never_recorded(runner, core):
    secret = "sk-typed-in-chat-0123456789"
    reply = runner.execute(
        f"endpoint add vllm http://vllm:8000 --type openai-compatible --api-key {secret}",
        user=OWNER,
    )
    assert not reply.ok
    assert reply.data["error"].startswith("never type an API key into a command")
    assert "Usage: `/model endpoint add" in reply.text
    assert core.endpoints.list(ADMIN) == []
    (entry,) = core.audit.query(action="command.endpoint.add", limit=5)
    assert secret not in json.dumps(entry.params) and "[REDACTED]" in entry.params["text"]


def test_bad_input_is_one_line_and_the_usage(runner, core):
    for text, error in [
        ("endpoint add gpu-1 ftp://gpu-1", "the URL must start with http:// or https://"),
        ("endpoint add gpu-1 http://u:pw@gpu-1", "the URL must not contain credentials"),
        ("endpoint add 'bad name' http://x:1", "bad endpoint name 'bad name'"),
        ("endpoint add x http://x:1 --type vllm", "--type must be one of"),
        ("endpoint add x http://x:1 --health-path /h", "--health-path applies to custom"),
        ("endpoint add x http://x:1 --endpoint-name y", "give the name once"),
        ("endpoint edit nothing", "no endpoint named 'nothing'"),
    ]:
        reply = runner.execute(text, user=OWNER)
        assert not reply.ok, text
        assert reply.data["error"].startswith(error), (text, reply.data["error"])
        assert "\n" not in reply.data["error"] and "pw" not in reply.data["error"]
    usage = runner.execute("endpoint add gpu-1 ftp://gpu-1", user=OWNER)
    assert "Usage: `/model endpoint add [<name>] [<url>]" in usage.text
    runner.execute("endpoint add x http://x:1 --no-check", user=OWNER)
    nothing = runner.execute("endpoint edit x", user=OWNER)
    assert nothing.data["error"].startswith("nothing to change")


def test_slack_adds_through_a_modal_with_a_secret_field(runner, core, openai: FakeOpenAI):
    # A slash command never carries the key: even a complete one opens the form, prefilled.
    reply = runner.execute(
        f"endpoint add vllm {openai.url} --type openai-compatible --api-key -",
        user=OWNER,
        front="slack",
    )
    assert reply.ok and reply.form is not None
    fields = {f.name: f for f in reply.form.fields}
    assert list(fields) == [
        "endpoint-name",
        "base-url",
        "type",
        "shared-with",
        "health-path",
        "api-key",
    ]
    assert fields["api-key"].secret and fields["api-key"].optional
    assert (fields["endpoint-name"].initial, fields["base-url"].initial) == ("vllm", openai.url)
    assert fields["type"].initial == "openai-compatible"
    assert core.endpoints.list(ADMIN) == []
    # What the Slack front runs on submit: values as flags, the secret through read_secret.
    submitted = (
        f"{reply.form.command} --endpoint-name vllm --base-url {openai.url} "
        "--type openai-compatible --shared-with owner --api-key -"
    )
    done = runner.execute(submitted, user=OWNER, front="slack", read_secret=_key())
    assert done.ok, done.text
    assert done.data["check"]["ok"] and done.data["endpoint"]["api_key"]["last4"] == "cdef"
    assert core.endpoints.resolve("vllm", OWNER).api_key == KEY

    # Setting a key later in Slack: a form with just the key, keeping the other changes.
    edit = runner.execute(
        "endpoint edit vllm --api-key - --shared-with owner", user=OWNER, front="slack"
    )
    assert edit.form is not None
    assert edit.form.command == "endpoint edit vllm --shared-with owner"
    assert [(f.name, f.secret) for f in edit.form.fields] == [("api-key", True)]
    rotated = runner.execute(
        edit.form.command + " --api-key -",
        user=OWNER,
        front="slack",
        read_secret=_key("sk-rotated-000000000000wxyz"),
    )
    assert rotated.ok and rotated.data["changed"] == ["API key set"]
    assert rotated.data["endpoint"]["api_key"]["last4"] == "wxyz"
    assert rotated.data["check"]["ok"] is False  # the fake still wants the old key


def test_who_sees_and_changes_what_through_commands(runner, core, ollama: FakeOllama):
    assert runner.execute(f"endpoint add mine {ollama.url} --no-check", user=OWNER).ok
    denied = runner.execute(
        f"endpoint add ours {ollama.url} --shared-with everyone --no-check", user=OWNER
    )
    assert not denied.ok and "needs the operator role" in denied.data["error"]
    core.rbac.grant(OWNER, Role.OPERATOR, granted_by=ADMIN)
    assert runner.execute(
        f"endpoint add ours {ollama.url} --shared-with everyone --no-check", user=OWNER
    ).ok
    assert [e["name"] for e in runner.execute("endpoint list", user=OTHER).data["endpoints"]] == [
        "ours"
    ]
    for text in ("endpoint show mine", "endpoint check mine", "endpoint remove mine"):
        reply = runner.execute(text, user=OTHER)
        assert not reply.ok and "no endpoint named 'mine'" in reply.data["error"], text
    edit = runner.execute("endpoint edit ours --url http://elsewhere:1", user=OTHER)
    assert not edit.ok and "only <@U_OWNER> (its owner) or an admin" in edit.data["error"]
    assert runner.execute("endpoint check ours", user=OTHER).ok  # checking is not changing
    no_form = runner.execute("endpoint edit ours --api-key -", user=OTHER, front="slack")
    assert no_form.form is None and "only <@U_OWNER>" in no_form.data["error"]
    admin = runner.execute("endpoint edit mine --active no", user=ADMIN)
    assert admin.ok and admin.data["changed"] == ["disabled"]
    assert admin.data["endpoint"]["active"] is False and "check" not in admin.data
    mine = runner.execute("endpoint list --mine", user=OWNER)
    assert [e["name"] for e in mine.data["endpoints"]] == ["mine", "ours"]
    healthy = runner.execute("endpoint list --status healthy", user=OWNER)
    assert [e["name"] for e in healthy.data["endpoints"]] == ["ours"]  # OTHER checked it


def test_export_and_import_commands(runner, core, ollama: FakeOllama, tmp_path):
    runner.execute(f"endpoint add a {ollama.url} --no-check", user=OWNER)
    runner.execute(
        "endpoint add b http://b:8000/v1 --type openai-compatible --api-key - --no-check",
        user=OWNER,
        read_secret=_key(),
    )
    exported = runner.execute("endpoint export", user=OWNER)
    assert exported.ok
    (attachment,) = exported.files
    assert attachment.filename == "endpoints.json"
    document = json.loads(attachment.content)
    assert document == exported.data and KEY not in attachment.content.decode()
    assert [e["name"] for e in document["endpoints"]] == ["a", "b"]

    path = tmp_path / "endpoints.json"
    path.write_bytes(attachment.content)
    for name in ("a", "b"):
        runner.execute(f"endpoint remove {name}", user=OWNER)
    imported = runner.execute(f"endpoint import --file {path}", user=OTHER)
    assert imported.ok, imported.text
    assert imported.data == {"created": ["a", "b"], "updated": []}
    assert {e.owner for e in core.endpoints.list(ADMIN)} == {OTHER}

    again = runner.execute(f"endpoint import --file {path}", user=OTHER)
    assert not again.ok
    assert again.data["error"] == (
        "entry 1 (a): an endpoint with this name exists (import with --replace to update it); "
        "nothing was imported"
    )
    text = json.dumps({"endpoints": [{"name": "c", "base_url": "http://c:1"}]})
    pasted = runner.execute(f"endpoint import --text '{text}'", user=OTHER)
    assert pasted.ok and pasted.data["created"] == ["c"]

    # Slack: the JSON is pasted in a form; a file on the bot's machine is never read.
    form = runner.execute("endpoint import --replace", user=OTHER, front="slack")
    assert form.form is not None and form.form.command == "endpoint import --replace"
    assert [(f.name, f.multiline) for f in form.form.fields] == [("text", True)]
    refused = runner.execute(f"endpoint import --file {path}", user=OTHER, front="slack")
    assert not refused.ok and "--file reads a file on the bot's machine" in refused.data["error"]
    terminal = runner.execute("endpoint import", user=OTHER)
    assert not terminal.ok and "--file PATH" in terminal.data["error"]


def test_modelarium_cmd_reads_the_key_from_standard_input(runner, core, openai: FakeOpenAI):
    out = io.StringIO()
    code = run_once(
        runner,
        f"endpoint add vllm {openai.url} --type openai-compatible --api-key -",
        user=OWNER,
        as_json=True,
        stdin=io.StringIO(KEY + "\n"),
        out=out,
    )
    result = json.loads(out.getvalue())
    assert code == 0 and result["ok"], result
    assert result["data"]["endpoint"]["api_key"] == {"set": True, "last4": "cdef"}
    assert KEY not in out.getvalue()
    assert core.endpoints.resolve("vllm", OWNER).api_key == KEY

    out = io.StringIO()
    code = run_once(runner, "endpoint add", user=OWNER, as_json=True, out=out)
    result = json.loads(out.getvalue())
    assert code == 1 and result["data"]["error"] == (
        "this command needs input; pass --endpoint-name, --base-url, --type, --shared-with"
    )

    out = io.StringIO()
    assert run_once(runner, "pick llama3.2", user=OWNER, as_json=False, out=out) == 0
    assert "vllm" in out.getvalue() and "for `llama3.2`" in out.getvalue()


def test_the_shell_asks_for_the_key_without_echo(runner, core, openai: FakeOpenAI):
    out = io.StringIO()
    answers = iter(["vllm", openai.url, "openai-compatible", "", "", ""])
    secrets = iter([KEY])
    prompts: list[str] = []

    def ask(prompt: str) -> str:
        prompts.append(prompt)
        return next(answers)

    def ask_secret(prompt: str) -> str:
        prompts.append("secret:" + prompt)
        return next(secrets)

    console = Console(runner, OWNER, out=out, ask=ask, ask_secret=ask_secret)
    reply = console.run("endpoint add")
    assert reply.ok, out.getvalue()
    assert "secret:  API key (optional): " in prompts
    assert KEY not in out.getvalue()
    view = core.endpoints.get(OWNER, "vllm")
    assert view.status == "healthy" and view.api_key_last4 == "cdef"
    assert view.shared_with == "owner"  # the blank answer took the initial value
    with core.db.engine.connect() as connection:
        token = connection.execute(sa.text("SELECT api_key_token FROM endpoints")).scalar_one()
    assert KEY not in token
