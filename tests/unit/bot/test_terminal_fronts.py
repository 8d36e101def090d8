"""The terminal fronts: numbered buttons, forms as prompts, daemon messages, `cmd --json`."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from modelarium.bot.shell.console import Console, TerminalSender
from modelarium.bot.shell.oneshot import run_once
from modelarium.core.jobs import WorkerPool
from modelarium.core.rbac import Role


def _console(runner, user: str, answers: list[str] | None = None) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    queue = list(answers or [])
    console = Console(
        runner, user, out=out, ask=lambda _p: queue.pop(0), ask_secret=lambda _p: queue.pop(0)
    )
    return console, out


def test_grant_admin_through_an_approval_card_in_the_shell(runner, core):
    alice, alice_out = _console(runner, "U_ADMIN")
    alice.handle("/model role grant <@U_CAROL> admin")
    assert "needs 1 approval(s) from an admin" in alice_out.getvalue()

    # the daemon/outbox shows the card in the terminal with numbered buttons
    bob, bob_out = _console(runner, "U_ADMIN2", answers=["y"])
    report = core.notify.deliver_pending(TerminalSender(bob))
    assert report.sent == 1
    shown = bob_out.getvalue()
    assert "[1] Approve  [2] Reject" in shown
    assert "@U_CAROL" in shown and "<@" not in shown
    bob.handle("1")  # press Approve, confirm "y"
    assert "approved by @U_ADMIN2" in bob_out.getvalue()
    assert WorkerPool(core.jobs, size=0).run_one().status == "succeeded"  # the daemon's part
    assert core.rbac.role_of("U_CAROL") == Role.ADMIN


def test_reject_button_asks_for_the_reason(runner, core):
    view = core.changes.propose("role.grant", {"user": "U9", "role": "admin"}, "U_ADMIN").approval
    console, _out = _console(runner, "U_ADMIN2", answers=["not today"])
    console.handle(f"approval {view.id}")
    console.handle("2")
    assert core.approvals.get(view.id).status == "rejected"
    assert "rejected by U_ADMIN2: not today" in core.approvals.get(view.id).result


def test_unknown_button_and_user_switching(runner):
    console, out = _console(runner, "U_ADMIN")
    console.handle("7")
    console.handle(":user U_SOMEONE")
    console.handle("whoami")
    text = out.getvalue()
    assert "no button [7] on screen" in text
    assert "now acting as U_SOMEONE (viewer)" in text
    assert "You are @U_SOMEONE" in text
    assert console.handle(":quit") is False


def test_cmd_json_and_exit_codes(runner):
    out = io.StringIO()
    code = run_once(runner, "whoami", user="U_ADMIN", as_json=True, out=out)
    payload = json.loads(out.getvalue())
    assert code == 0
    assert payload == {
        "ok": True,
        "text": payload["text"],
        "data": {"user": "U_ADMIN", "role": "admin"},
    }
    out = io.StringIO()
    assert run_once(runner, "role grant U1 admin", user="U_VIEWER", as_json=True, out=out) == 1
    assert json.loads(out.getvalue())["ok"] is False


def test_audit_export_writes_a_file(runner, core):
    runner.execute("whoami", user="U_ADMIN")
    runner.execute("role grant U5 operator", user="U_ADMIN")
    out = io.StringIO()
    assert (
        run_once(runner, "audit export --format json", user="U_ADMIN", as_json=True, out=out) == 0
    )
    path = Path(json.loads(out.getvalue())["data"]["files"][0])
    rows = json.loads(path.read_text())
    assert any(r["action"] == "command.role.grant" for r in rows)


@pytest.mark.slow  # six `modelarium cmd` processes
def test_cli_cmd_end_to_end(tmp_path):
    env = {
        "PATH": "/usr/bin:/bin",
        "MODELARIUM_DATA_DIR": str(tmp_path),
        "MODELARIUM_ADMINS": "alice",
        "HOME": str(tmp_path),
    }
    base = [sys.executable, "-m", "modelarium", "cmd", "--user", "alice", "--json", "--"]
    root = Path(__file__).parents[3]
    ok = subprocess.run(
        [*base, "role", "grant", "bob", "operator"],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    data = json.loads(ok.stdout)["data"]
    assert (data["user"], data["role"], data["status"]) == ("bob", "operator", "succeeded")
    assert {"change", "approval", "job", "digest"} <= set(data)

    def cmd(*words: str) -> dict:
        done = subprocess.run(
            [*base, *words], capture_output=True, text=True, env=env, cwd=root, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return json.loads(done.stdout)

    listed = cmd("changes", "bob")["data"]["changes"]
    assert [(c["id"], c["kind"]) for c in listed] == [(data["change"], "role.grant")]
    shown = cmd("change", str(data["change"]))
    assert shown["data"]["status"] == "succeeded" and "+ bob: operator" in shown["text"]
    reverted = cmd("revert", str(data["change"]))["data"]
    assert reverted["kind"] == "role.revoke" and reverted["status"] == "succeeded"
    assert {"change", "approval", "job", "digest"} <= set(reverted)
    bad = subprocess.run(
        [*base, "jobs", "nope"], capture_output=True, text=True, env=env, cwd=root, check=False
    )
    assert bad.returncode == 1
    assert "Traceback" not in bad.stdout + bad.stderr
    assert json.loads(bad.stdout)["data"]["error"].startswith("<id>: expected a whole number")


ANSI_NOTE = "\x1b[2J\x1b[31mall clear\x1b]0;pwned\x07\x1b[0m \u202eevil"


def test_escape_sequences_in_stored_text_are_shown_escaped(runner, core):
    """Issue 13, item 13: a note full of ANSI codes must not drive the reader's terminal."""
    view = core.approvals.request("role.grant", {"user": "U9", "role": "admin"}, "U_ADMIN")
    assert runner.execute(f"reject {view.id} --note '{ANSI_NOTE}'", user="U_ADMIN2").ok
    console, out = _console(runner, "U_ADMIN")
    console.handle(f"approval {view.id}")
    console.handle("audit --user U_ADMIN2")
    buffer = io.StringIO()
    run_once(runner, f"approval {view.id}", user="U_ADMIN", as_json=False, out=buffer)
    for shown in (out.getvalue(), buffer.getvalue()):
        assert "all clear" in shown
        assert "\x1b" not in shown and "\x07" not in shown and "\u202e" not in shown
        assert "\\x1b[31m" in shown and "\\u202e" in shown
