"""`/model modelfile ...` through the command runner, on SQLite and PostgreSQL."""

from __future__ import annotations

import shlex

import pytest

from modelarium.bot.commands.parsing import tokenize
from modelarium.core.rbac import Role

GOOD = 'FROM llama3.2\nSYSTEM """You are a pirate."""\nPARAMETER temperature 0.8\n'
BAD = "FROM llama3.2\nPARAMETER temprature 0.3\nPARAMETER top_k 4k\n"
OP = "U_OP"


@pytest.fixture
def operator(core):
    core.rbac.grant(OP, Role.OPERATOR, granted_by="U_ADMIN")
    return OP


@pytest.fixture
def good_file(tmp_path):
    path = tmp_path / "Modelfile"
    path.write_text(GOOD)
    return path


def run(runner, text, user=OP, front="cmd"):
    return runner.execute(text, user=user, front=front)


# -- check and import -----------------------------------------------------------------------------


def test_check_shows_elements_and_every_problem_with_lines(runner, tmp_path, operator):
    path = tmp_path / "bad"
    path.write_text(BAD)
    reply = run(runner, f"modelfile check --file {path}")
    assert not reply.ok
    assert reply.data["errors"] == 2
    assert [(p["line"], p["severity"]) for p in reply.data["problems"]] == [
        (2, "error"),
        (3, "error"),
    ]
    assert "line 2: unknown parameter 'temprature' (did you mean 'temperature'?)" in reply.text
    assert "line 3: invalid int value [4k]" in reply.text
    assert "Nothing was saved" in reply.text
    ok = run(runner, "modelfile check --text 'FROM llama3.2'", user="U_VIEWER")
    assert ok.ok and ok.data["elements"]["base"] == "llama3.2"
    assert "No problems" in ok.text


def test_parse_errors_are_one_line_with_usage(runner, operator):
    reply = run(runner, "modelfile import x --text 'FROM a\nBOGUS b'")
    assert not reply.ok
    assert reply.data["error"].startswith("the Modelfile does not parse: line 2, column 1")
    assert "Usage: `/model modelfile import <name>" in reply.text
    assert "Traceback" not in reply.text


def test_import_from_a_file_saves_a_draft(runner, core, good_file, operator):
    reply = run(runner, f"modelfile import pirate --file {good_file} --message 'first cut'")
    assert reply.ok, reply.text
    assert reply.data["revision"] == 1 and reply.data["draft"] is True
    assert reply.data["source"] == "file" and reply.data["message"] == "first cut"
    assert reply.data["elements"]["system"] == "You are a pirate."
    assert core.modelfiles.library.revision("pirate").text == GOOD
    create = next(b for b in reply.message.all_buttons if b.label.startswith("Create"))
    assert create.form is not None
    assert create.form.command == "ollama create pirate --modelfile pirate@1"
    assert [f.name for f in create.form.fields] == ["endpoint"]


def test_import_with_errors_is_not_saved_unless_forced(runner, core, tmp_path, operator):
    path = tmp_path / "bad"
    path.write_text(BAD)
    reply = run(runner, f"modelfile import bad --file {path}")
    assert not reply.ok and reply.data["error"] == "2 error(s); not saved"
    assert "add --force" in reply.text
    assert run(runner, "modelfile list").data["total"] == 0
    forced = run(runner, f"modelfile import bad --file {path} --force")
    assert forced.ok and forced.data["errors"] == 2
    assert core.modelfiles.library.revision("bad").number == 1


def test_import_in_slack_asks_with_a_multiline_form(runner, operator):
    reply = run(runner, "modelfile import my-bot", front="slack")
    assert reply.ok and reply.form is not None
    assert reply.form.command == "modelfile import my-bot"
    text_field = reply.form.fields[0]
    assert text_field.name == "text" and text_field.multiline
    assert [f.name for f in reply.form.fields] == ["text", "message"]
    # submitting the modal runs the command with the fields as flags
    submitted = f"{reply.form.command} --text {shlex.quote(GOOD)} --message {shlex.quote('v1')}"
    saved = run(runner, submitted, front="slack")
    assert saved.ok, saved.text
    assert saved.data["text"] == GOOD and saved.data["message"] == "v1"


def test_terminal_fronts_are_told_to_use_file(runner, operator):
    for front in ("cmd", "shell"):
        reply = run(runner, "modelfile import x", front=front)
        assert not reply.ok and reply.form is None
        assert "--file PATH" in reply.data["error"]


def test_file_is_refused_in_slack_and_bad_files_are_one_line(runner, good_file, tmp_path, operator):
    reply = run(runner, f"modelfile import x --file {good_file}", front="slack")
    assert not reply.ok and "--file reads a file on the bot's machine" in reply.data["error"]
    missing = run(runner, f"modelfile import x --file {tmp_path / 'nope'}")
    assert not missing.ok and "cannot read" in missing.data["error"]
    folder = run(runner, f"modelfile import x --file {tmp_path}")
    assert not folder.ok and "is a folder" in folder.data["error"]
    both = run(runner, f"modelfile import x --file {good_file} --text 'FROM a'")
    assert not both.ok and "not both" in both.data["error"]


def test_file_encodings_are_read_as_ollama_does(runner, core, tmp_path, operator):
    path = tmp_path / "utf16"
    path.write_bytes(b"\xff\xfe" + "FROM a\nSYSTEM héllo\n".encode("utf-16-le"))
    assert run(runner, f"modelfile import u --file {path}").ok
    assert core.modelfiles.library.revision("u").modelfile.system == "héllo"


def test_viewers_cannot_import(runner, good_file):
    reply = run(runner, f"modelfile import x --file {good_file}", user="U_VIEWER")
    assert not reply.ok and "needs the operator role" in reply.data["error"]


# -- reading, versions and export -----------------------------------------------------------------


def test_show_history_diff_rollback(runner, core, clock, good_file, operator):
    run(runner, f"modelfile import p --file {good_file}")
    clock.advance(60)
    run(runner, "modelfile import p --text 'FROM llama3.2' --message trimmed")
    show = run(runner, "modelfile show p@1", user="U_VIEWER")
    assert show.ok and show.data["revision"] == 1 and show.data["head"] == 2
    assert "latest is 2" in show.text and "Status: draft" in show.text
    history = run(runner, "modelfile history p", user="U_VIEWER")
    assert [r["revision"] for r in history.data["revisions"]] == [2, 1]
    assert "trimmed" in history.text
    diff = run(runner, "modelfile diff p", user="U_VIEWER")
    assert diff.ok and (diff.data["from"], diff.data["to"]) == (1, 2)
    assert '-SYSTEM """You are a pirate."""' in diff.data["diff"].splitlines()
    assert "--- p@1" in diff.text
    same = run(runner, "modelfile diff p 2 2", user="U_VIEWER")
    assert same.data["diff"] == "" and "No differences" in same.text
    denied = run(runner, "modelfile rollback p 1", user="U_VIEWER")
    assert not denied.ok
    rolled = run(runner, "modelfile rollback p 1 --message back")
    assert rolled.ok and rolled.data["revision"] == 3 and rolled.data["message"] == "back"
    assert core.modelfiles.library.revision("p").text == GOOD
    assert not run(runner, "modelfile rollback p 3").ok
    core.modelfiles.library.record_application("p", 3, endpoint="gpu1", model="p", user=OP)
    listed = run(runner, "modelfile list", user="U_VIEWER")
    assert listed.data["modelfiles"][0]["applied"] == 1
    assert "applied: p on gpu1" in run(runner, "modelfile history p").text


def test_export_as_text_and_as_file(runner, core, good_file, operator):
    run(runner, f"modelfile import team/pirate:v1 --file {good_file}")
    text = run(runner, "modelfile export team/pirate:v1", user="U_VIEWER")
    assert text.ok and not text.files and text.data["text"] == GOOD
    assert GOOD.strip() in text.text
    as_file = run(runner, "modelfile export team/pirate:v1 --as file", user="U_VIEWER")
    assert as_file.ok
    (attachment,) = as_file.files
    assert attachment.filename == "team_pirate_v1-r1.Modelfile"
    assert attachment.content == GOOD.encode()
    long_text = "FROM a\nSYSTEM " + "x" * 3000 + "\n"
    core.modelfiles.library.save("long", long_text, author=OP)
    assert run(runner, "modelfile export long").files[0].content == long_text.encode()


def test_missing_and_bad_arguments(runner, operator):
    assert run(runner, "modelfile show ghost").data["error"] == "no stored Modelfile named ghost"
    reply = run(runner, "modelfile diff x one")
    assert not reply.ok and "Usage:" in reply.text
    assert "invalid Modelfile name" in run(runner, "modelfile import 'a b' --text 'FROM a'").text


# -- composing and elements --------------------------------------------------------------------


def _seed_elements(runner):
    assert run(runner, "modelfile element save system pirate --text 'Talk like a pirate.'").ok
    assert run(
        runner, "modelfile element save parameters creative --set temperature=1.1 --set top_p=0.95"
    ).ok


def test_compose_previews_then_saves(runner, core, operator):
    _seed_elements(runner)
    cmd = "modelfile compose --from llama3.2 --system pirate --params creative --set num_ctx=4096"
    preview = run(runner, cmd, user="U_VIEWER")
    assert preview.ok and preview.data["saved"] is False
    assert preview.data["text"] == (
        "FROM llama3.2\nSYSTEM Talk like a pirate.\nPARAMETER num_ctx 4096\n"
        "PARAMETER temperature 1.1\nPARAMETER top_p 0.95\n"
    )
    assert preview.data["used"] == ["pirate@1", "creative@1"]
    assert "PARAMETER num_ctx 4096" in preview.text
    (save,) = preview.message.all_buttons
    assert save.form is not None and [f.name for f in save.form.fields] == ["save", "message"]
    assert tokenize(save.form.command) == tokenize(cmd)
    denied = run(runner, cmd + " --save pirate-bot", user="U_VIEWER")
    assert not denied.ok and "needs the operator role" in denied.data["error"]
    saved = run(runner, save.form.command + " --save pirate-bot")
    assert saved.ok and saved.data["saved"] and saved.data["source"] == "compose"
    assert saved.data["composed_from"] == ["creative@1", "pirate@1"]
    view = core.modelfiles.library.revision("pirate-bot")
    assert view.text == preview.data["text"]
    assert view.message == "composed from pirate@1, creative@1"
    popular = run(runner, "modelfile popular", user="U_VIEWER")
    assert popular.data["combinations"] == [
        {
            "base": "llama3.2",
            "elements": ["creative", "pirate"],
            "modelfiles": 1,
            "revisions": 1,
        }
    ]
    listed = run(runner, "modelfile element list", user="U_VIEWER")
    assert {e["name"]: e["modelfiles"] for e in listed.data["elements"]} == {
        "creative": 1,
        "pirate": 1,
    }


def test_compose_with_errors_is_not_saved(runner, core, operator):
    reply = run(runner, "modelfile compose --from m --set top_k=lots --save x")
    assert not reply.ok and reply.data["error"] == "1 error(s); not saved"
    assert "invalid int value [lots]" in reply.text
    no_base = run(runner, "modelfile compose --set top_k=1")
    assert not no_base.ok and "no base model" in no_base.data["error"]
    assert "Usage:" in no_base.text
    bad_set = run(runner, "modelfile compose --from m --set top_k")
    assert not bad_set.ok and "expected NAME=VALUE" in bad_set.data["error"]


def test_elements_save_list_show_and_revisions(runner, operator):
    _seed_elements(runner)
    again = run(runner, "modelfile element save system pirate --text 'Talk like a pirate.'")
    assert again.ok and again.data["changed"] is False and "unchanged" in again.text
    new = run(runner, "modelfile element save system pirate --text 'Arr!' --message shorter")
    assert new.data["revision"] == 2 and new.data["changed"]
    show = run(runner, "modelfile element show pirate", user="U_VIEWER")
    assert show.data["revisions"] == [2, 1] and "SYSTEM Arr!" in show.text
    old = run(runner, "modelfile element show pirate@1", user="U_VIEWER")
    assert old.data["content"] == {"text": "Talk like a pirate."}
    kinds = run(runner, "modelfile element list --kind parameters", user="U_VIEWER")
    assert [e["name"] for e in kinds.data["elements"]] == ["creative"]
    wrong = run(runner, "modelfile element save template pirate --text '{{ .Prompt }}'")
    assert not wrong.ok and "is a system prompt, not a template" in wrong.data["error"]
    bad = run(runner, "modelfile element save parameters p --set temprature=1")
    assert not bad.ok and "did you mean 'temperature'" in bad.data["error"]
    bad_kind = run(runner, "modelfile element save lora x --text y")
    assert not bad_kind.ok and "<kind> must be one of" in bad_kind.data["error"]


def test_element_messages_from_a_file_and_a_slack_form(runner, tmp_path, operator):
    path = tmp_path / "msgs"
    path.write_text("MESSAGE user Who are you?\nMESSAGE assistant A pirate.\n")
    reply = run(runner, f"modelfile element save messages intro --file {path}")
    assert reply.ok and len(reply.data["content"]["messages"]) == 2
    form = run(runner, "modelfile element save template chat", front="slack")
    assert form.form is not None and form.form.fields[0].multiline
    assert form.form.command == "modelfile element save template chat"


def test_split_a_stored_modelfile_into_elements(runner, core, good_file, operator):
    run(runner, f"modelfile import pirate --file {good_file}")
    reply = run(runner, "modelfile split pirate")
    assert reply.ok
    assert [(e["name"], e["changed"]) for e in reply.data["elements"]] == [
        ("pirate-system", True),
        ("pirate-parameters", True),
    ]
    again = run(runner, "modelfile split pirate --prefix pirate")
    assert [e["changed"] for e in again.data["elements"]] == [False, False]
    composed = core.modelfiles.library.compose(
        base="llama3.2", system="pirate-system", parameters=["pirate-parameters"]
    )
    assert composed.modelfile.system == "You are a pirate."
    empty = run(runner, "modelfile import bare --text 'FROM x'")
    assert empty.ok
    nothing = run(runner, "modelfile split bare")
    assert not nothing.ok and "nothing to split" in nothing.data["error"]


def test_split_is_all_or_nothing(runner, core, tmp_path, operator):
    path = tmp_path / "bad"
    path.write_text("FROM a\nSYSTEM fine\nPARAMETER bogus 1\n")
    run(runner, f"modelfile import bad --file {path} --force")
    reply = run(runner, "modelfile split bad")
    assert not reply.ok and "unknown parameter 'bogus'" in reply.data["error"]
    assert core.modelfiles.library.elements() == []


def test_form_text_is_read_verbatim_but_typed_text_is_normalised(runner, operator):
    text = "FROM a\nSYSTEM Don’t say &amp; or “quotes”.\n"
    reply = runner.execute(
        f"modelfile import q --text {shlex.quote(text)}", user=OP, front="slack", verbatim=True
    )
    assert reply.ok and reply.data["text"] == text
    # typed into Slack's message box, smart quotes are the user's quoting and &amp; is Slack's
    assert tokenize("say “two words” &amp;") == ["say", "two words", "&"]
