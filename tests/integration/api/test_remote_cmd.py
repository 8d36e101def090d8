"""`modelarium cmd --server URL`: a CI job with a token and no database, end to end."""

from __future__ import annotations

import io
import json
import re
import shlex
import socket
import threading
from pathlib import Path

import httpx
import pytest

from modelarium.bot.shell.oneshot import run_once
from modelarium.entrypoints import cli
from tests.fakes.hf_hub import FakeHub
from tests.integration.api.conftest import ADMIN_A, ADMIN_B, BOB, CHANNEL, Api
from tests.integration.slack.conftest import shown
from tests.unit.weights.helpers import MiB, add_model, run_jobs


def remote(
    api: Api, text: str, capsys: pytest.CaptureFixture[str], *flags: str
) -> tuple[int, str, str]:
    code = cli.main(["cmd", "--server", api.slack.bot.url, *flags, "--", *shlex.split(text)])
    captured = capsys.readouterr()
    return code, _without_logs(captured.out), captured.err


def _without_logs(out: str) -> str:
    """The server runs in this process: drop its log lines (structlog's console format)."""
    return "".join(line for line in out.splitlines(keepends=True) if not _LOG_LINE.match(line))


_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \[")


def test_remote_cmd_prints_what_local_cmd_prints(
    api: Api, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MODELARIUM_TOKEN", api.token(ADMIN_A, "admin"))
    for text in ("whoami", "role list", "nonsense", "jobs 424242", "jobs abc", "token list"):
        for flags in ((), ("--json",)):
            local = io.StringIO()
            expected = run_once(api.runner, text, user=ADMIN_A, as_json=bool(flags), out=local)
            code, out, _err = remote(api, text, capsys, *flags)
            assert (code, out) == (expected, local.getvalue()), text
    assert remote(api, "nonsense", capsys)[0] == 1


def test_remote_cmd_errors_are_one_line_with_an_exit_code(
    api: Api,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    code, _out, err = remote(api, "whoami", capsys)
    assert code == 2 and "set MODELARIUM_TOKEN or pass --token-file" in err

    token = api.token(ADMIN_A, "read", name="ci")
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    code, out, _err = remote(api, "whoami", capsys, "--token-file", str(token_file), "--json")
    assert code == 0 and json.loads(out)["data"]["user"] == ADMIN_A

    monkeypatch.setenv("MODELARIUM_TOKEN", token)
    code, _out, err = remote(api, "whoami", capsys, "--user", "someone")
    assert code == 2 and "the token says who you are" in err
    code, out, _err = remote(api, "install org/m", capsys)  # scope read
    assert code == 1 and "needs the deploy scope" in out
    api.runner.execute("token revoke ci", user=ADMIN_A)
    code, out, _err = remote(api, "whoami", capsys)
    assert code == 1 and "was revoked on" in out and out.count("\n") == 1

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    code = cli.main(["cmd", "--server", f"http://127.0.0.1:{closed}", "--", "whoami"])
    assert code == 1 and "cannot reach" in capsys.readouterr().err


def test_remote_cmd_saves_files_and_sends_stdin(
    api: Api,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("MODELARIUM_TOKEN", api.token(ADMIN_A, "admin"))
    monkeypatch.chdir(tmp_path)
    code, out, _err = remote(api, "audit export --format json", capsys)
    (saved,) = [
        line.removeprefix("saved ") for line in out.splitlines() if line.startswith("saved ")
    ]
    assert code == 0 and Path(saved).parent == tmp_path
    assert isinstance(json.loads(Path(saved).read_text()), list | dict)

    monkeypatch.setattr("sys.stdin", io.StringIO("sk-remote-0123456789abcd\n"))
    code, out, _err = remote(
        api, "endpoint add gpu-2 http://8.8.8.8:11434 --api-key - --no-check", capsys, "--json"
    )
    assert code == 0, out
    assert json.loads(out)["data"]["endpoint"]["api_key"] == {"set": True, "last4": "abcd"}


def test_a_ci_job_with_only_a_token_proposes_a_change_a_person_approves_and_reads_the_result(
    api: Api,
    fake_hub: FakeHub,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    add_model(fake_hub, "org/big", size=6 * MiB)  # above the 4 MiB threshold: needs approval
    slack = api.slack
    api.runner.execute(f"role grant {BOB} operator", user=ADMIN_A)

    # Bob makes a token for his pipeline in Slack; it is shown once, to him only
    slack.command("token create ci-deploy --scope deploy,read --expires 30d", user=BOB)
    answer = slack.last_response()
    assert answer.response_type == "ephemeral"
    token = next(w.strip("`") for w in shown(answer).split() if w.strip("`").startswith("mdl_"))
    monkeypatch.setenv("MODELARIUM_TOKEN", token)

    # the CI job proposes the install: no database, only the URL and the token
    code, out, _err = remote(api, "install org/big", capsys, "--json")
    assert code == 0, out
    proposal = json.loads(out)["data"]
    assert proposal["status"] == "pending_approval" and proposal["job"] is None
    change, approval = proposal["change"], proposal["approval"]

    # ... and waits for the change to be decided and run (one call: approval, then job)
    waited: list[httpx.Response] = []
    waiter = threading.Thread(
        target=lambda: waited.append(
            httpx.get(
                f"{api.url}/changes/{change}",
                params={"wait": "60s"},
                headers=api.auth(token),
                timeout=90,
            )
        )
    )
    waiter.start()

    # a person approves the change's card in Slack; a daemon worker runs the job
    slack.deliver()
    card = slack.card(CHANNEL)
    slack.click(slack.action_id(card, "Approve"), ADMIN_B)
    assert "queued" in shown(slack.last_response())
    assert [v.status for v in run_jobs(api.core)] == ["succeeded"]

    waiter.join(60)
    (result,) = waited
    assert result.status_code == 200
    outcome = result.json()
    assert outcome["status"] == "succeeded" and outcome["approval"] == approval
    assert outcome["requested_by"] == BOB and outcome["job_status"] == "succeeded"

    # the CI job reads the result: the job, then the weights
    job = httpx.get(f"{api.url}/jobs/{outcome['job']}", headers=api.auth(token)).json()
    assert job["status"] == "succeeded" and job["created_by"] == BOB
    code, out, _err = remote(api, "weights --status installed", capsys, "--json")
    assert code == 0
    assert [w["repo"] for w in json.loads(out)["data"]["weights"]] == ["org/big"]
    # the CI job could not have approved it itself
    self_approval = httpx.post(f"{api.url}/approvals/{approval}/approve", headers=api.auth(token))
    assert self_approval.status_code in (403, 409)


def test_local_cmd_prints_an_error_once(api: Api) -> None:
    """A denial names the user as the terminal shows it, and is not repeated as `error:`."""
    out = io.StringIO()
    assert run_once(api.runner, "role grant U0X admin", user="U0VIEWER", as_json=False, out=out)
    assert out.getvalue().count("needs the admin role") == 1 and "<@" not in out.getvalue()
    out = io.StringIO()
    assert run_once(api.runner, "endpoint add", user=ADMIN_A, as_json=False, out=out) == 1
    assert out.getvalue().splitlines()[-1].startswith("error: this command needs input; pass")
