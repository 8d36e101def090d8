"""The HTTP API through a real socket: envelopes and statuses, tokens, scopes, approvals, waits,
limits, CORS and the docs page."""

from __future__ import annotations

import io
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
import sqlalchemy as sa

from modelarium.bot.api.scopes import COMMAND_SCOPES, FALLBACK, scope_for
from modelarium.bot.commands.registry import registry
from modelarium.bot.shell.oneshot import run_once
from modelarium.core.app import Core
from modelarium.core.clock import FakeClock
from modelarium.core.db.models.tokens import ApiToken
from modelarium.core.jobs import WorkerPool
from modelarium.core.tokens import SCOPES
from tests.fakes.hf_hub import FakeHub
from tests.integration.api.conftest import ADMIN_A, ADMIN_B, VIEWER, Api
from tests.unit.weights.helpers import MiB, add_model, run_jobs


def test_the_api_shares_the_bot_port_and_documents_every_route(api: Api) -> None:
    base = api.slack.bot.url
    assert httpx.get(base + "/healthz").json()["ok"] is True
    assert httpx.get(api.slack.bot.events_url).status_code == 405  # Slack's route, same port
    document = httpx.get(api.url + "/openapi.json").json()
    assert document["servers"] == [{"url": "/api/v1"}]
    assert set(document["paths"]) == {
        "/commands",
        "/jobs/{id}",
        "/changes/{id}",
        "/approvals",
        "/approvals/{id}/approve",
        "/approvals/{id}/reject",
        "/weights",
        "/deployments",
        "/catalog",
    }
    assert document["components"]["securitySchemes"]["token"]["scheme"] == "bearer"

    page = httpx.get(api.url + "/docs")
    assert page.status_code == 200 and "SwaggerUIBundle" in page.text
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets and all(a.startswith("/api/v1/docs/static/") for a in assets)  # no CDN
    assert "http" not in page.text.lower().replace("http-equiv", "")
    for asset in assets:
        served = httpx.get(base + asset)
        assert served.status_code == 200 and len(served.content) > 1000, asset
    bundle = httpx.get(base + "/api/v1/docs/static/swagger-ui-bundle.js").text
    assert "5." in re.search(r'"(5\.\d+\.\d+)"', bundle).group(1)  # Swagger UI 5: OpenAPI 3.1


def test_commands_answer_the_envelope_of_cmd_json(api: Api) -> None:
    token = api.token(ADMIN_A, "read")
    answer = api.command(token, "role list")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    out = io.StringIO()
    assert run_once(api.runner, "role list", user=ADMIN_A, as_json=True, out=out) == 0
    assert {k: body[k] for k in ("ok", "text", "data")} == json.loads(out.getvalue())
    assert body["files"] == []


def test_the_status_follows_how_the_command_ended(api: Api, clock: FakeClock) -> None:
    admin = api.token(ADMIN_A, "admin")
    reader = api.token(ADMIN_A, "read")
    viewer = api.token(VIEWER, "admin")
    cases = [
        (admin, "whoami", 200, None),
        (admin, "nonsense", 404, "unknown"),
        (admin, "jobs 424242", 404, "not_found"),
        (admin, "jobs abc", 400, "usage"),
        (admin, "endpoint", 400, "usage"),
        (admin, "jobs 99999999999", 400, "usage"),  # beyond INTEGER: refused, not a crash
        (admin, "token create t1", 409, "conflict"),  # t1 is the admin token itself
        (viewer, "role grant U0X operator", 403, "denied"),  # the owner's role
        (reader, "install org/m", 403, "denied"),  # the token's scopes
        (reader, "token list", 403, "denied"),
        (admin, "upload m --file /etc/hostname", 501, "not_built"),  # a path on our disk
    ]
    for token, text, status, code in cases:
        answer = api.command(token, text)
        assert answer.status_code == status, (text, answer.text)
        body = answer.json()
        assert body["ok"] is (status == 200)
        if code is not None:
            assert body["data"]["code"] == code
            assert body["data"]["error"] and "\n" not in body["data"]["error"]
            assert body["text"].startswith("⚠️ ")
    scope_refusal = api.command(reader, "install org/m").json()["data"]["error"]
    assert "needs the deploy scope" in scope_refusal and "has read" in scope_refusal
    (denied,) = api.core.audit.query(action="command.install", limit=1)
    assert denied.result == "denied" and denied.params["via"].startswith("api mdl_")

    for body, error in [
        ({}, "text: Field required"),
        ({"text": "status", "extra": 1}, "extra: Extra inputs are not permitted"),
        ({"text": "x" * 20_001}, "text: String should have at most"),
    ]:
        answer = api.http.post("/commands", json=body, headers=api.auth(admin))
        assert answer.status_code == 422 and answer.json()["data"]["code"] == "invalid_request"
        assert answer.json()["data"]["error"].startswith(error)
    answer = api.http.post(
        "/commands",
        content=b"{not json",
        headers={**api.auth(admin), "Content-Type": "application/json"},
    )
    assert answer.status_code == 422 and answer.json()["ok"] is False
    missing = api.http.get("/nothing-here", headers=api.auth(admin))
    assert missing.status_code == 404 and missing.json()["data"]["code"] == "not_found"
    wrong = api.http.delete("/commands", headers=api.auth(admin))
    assert wrong.status_code == 405 and "POST" in wrong.headers["allow"]


def test_missing_unknown_expired_revoked_and_rotated_tokens_get_401(
    api: Api, clock: FakeClock
) -> None:
    def refused(headers: dict[str, str]) -> str:
        answer = api.http.post("/commands", json={"text": "whoami"}, headers=headers)
        assert answer.status_code == 401, answer.text
        assert answer.headers["www-authenticate"].startswith("Bearer")
        error = answer.json()["data"]["error"]
        assert "\n" not in error and answer.json()["data"]["code"] == "unauthorized"
        return error

    assert "missing API token" in refused({})
    assert "missing API token" in refused({"Authorization": "Basic YWxpY2U6eA=="})
    assert "not a Modelarium API token" in refused(api.auth("hunter2"))
    assert refused(api.auth("mdl_aaaaaaaa_" + "b" * 40)) == "unknown API token"

    token = api.token(ADMIN_A, "read", name="ci")
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")  # right prefix, wrong secret
    assert refused(api.auth(forged)) == "unknown API token"
    assert api.command(token, "whoami").status_code == 200

    # revoked in Slack: refused on the very next request
    api.slack.command("token revoke ci", user=ADMIN_A)
    assert "Revoked API token" in api.slack.last_response().text
    assert re.fullmatch(
        r"API token mdl_\w{8} was revoked on \d{4}-\d\d-\d\dT\d\d:\d\dZ", refused(api.auth(token))
    )

    # rotated: the old secret is refused with the reason, the new one works
    old = api.token(ADMIN_A, "read", name="ci")
    new = api.runner.execute("token rotate ci", user=ADMIN_A).data["token"]
    assert "was rotated on" in refused(api.auth(old)) and "use the new one" in refused(
        api.auth(old)
    )
    assert api.command(new, "whoami").json()["data"]["user"] == ADMIN_A

    # expired: by the server's clock
    short = api.runner.execute("token create short --expires 1h", user=ADMIN_A).data["token"]
    assert api.command(short, "whoami").status_code == 200
    clock.advance(3601)
    assert "expired on" in refused(api.auth(short))


def test_a_token_acts_with_its_owners_current_role(api: Api) -> None:
    token = api.token(VIEWER, "admin")
    assert api.command(token, "whoami").json()["data"]["role"] == "viewer"
    assert api.command(token, "install org/m").status_code == 403  # role: operator needed
    api.runner.execute(f"role grant {VIEWER} operator", user=ADMIN_A)
    WorkerPool(api.core.jobs, size=0).run_one()
    assert api.command(token, "whoami").json()["data"]["role"] == "operator"


def test_every_command_has_a_row_in_the_scope_table() -> None:
    import modelarium.bot.commands  # noqa: F401  (registers every command)

    assert set(COMMAND_SCOPES.values()) <= set(SCOPES)
    unlisted = [
        c.name
        for c in registry.commands()
        if not any(" ".join(c.path[:n]) in COMMAND_SCOPES for n in range(len(c.path), 0, -1))
    ]
    assert unlisted == [], f"add these to modelarium/bot/api/scopes.py: {unlisted}"
    assert scope_for(("endpoint", "list")) == "read" and scope_for(("endpoint", "add")) == "deploy"
    assert scope_for(("approve",)) == "approve" and scope_for(("no-such",)) == FALLBACK == "admin"


def test_approval_rules_hold_through_the_api(api: Api, fake_hub: FakeHub) -> None:
    add_model(fake_hub, "org/big", size=6 * MiB)
    requester = api.token(ADMIN_A, "deploy,approve,read")
    proposed = api.command(requester, "install org/big")
    assert proposed.status_code == 200, proposed.text
    data = proposed.json()["data"]
    approval, change = data["approval"], data["change"]
    assert approval and data["status"] == "pending_approval" and data["job"] is None

    pending = api.get("/approvals", requester).json()["pending"]
    assert [p["id"] for p in pending] == [approval] and pending[0]["requester"] == ADMIN_A

    # the requester's token cannot approve its own change
    own = api.post(f"/approvals/{approval}/approve", requester)
    assert own.status_code == 403 and "someone else must approve" in own.json()["data"]["error"]
    # another admin's token without the approve scope is refused by scope
    reader = api.token(ADMIN_B, "read")
    assert api.post(f"/approvals/{approval}/approve", reader).status_code == 403
    # a wrong digest is a conflict, nothing decided
    approver = api.token(ADMIN_B, "approve")
    wrong = api.post(f"/approvals/{approval}/approve", approver, {"digest": "0000000"})
    assert wrong.status_code == 409 and "does not match" in wrong.json()["data"]["error"]
    assert api.get(f"/changes/{change}", requester).json()["status"] == "pending_approval"

    decided = api.post(
        f"/approvals/{approval}/approve", approver, {"digest": data["digest"][:12], "note": "ok"}
    )
    assert decided.status_code == 200, decided.text
    outcome = decided.json()
    assert (outcome["id"], outcome["status"], outcome["change"]) == (approval, "approved", change)
    again = api.post(f"/approvals/{approval}/reject", approver)
    assert again.status_code == 409

    # the same audit entries as a slash command, marked with the token
    (entry,) = api.core.audit.query(action="command.approve", user=ADMIN_B, limit=5)[:1]
    assert entry.result == "ok" and entry.params["via"].startswith("api mdl_")
    assert entry.params["text"].startswith(f"approve {approval} --digest ")


def test_job_wait_returns_when_the_job_ends_without_a_thread_per_waiter(
    api: Api, fake_hub: FakeHub
) -> None:
    add_model(fake_hub, "org/small", size=1 * MiB)
    token = api.token(ADMIN_A, "deploy,read")
    job = api.command(token, "install org/small").json()["data"]["job"]
    assert job

    # the wait expires: the job is still queued
    started = time.monotonic()
    expired = api.get(f"/jobs/{job}", token, wait="400ms")
    assert expired.status_code == 200 and expired.json()["status"] == "queued"
    assert 0.35 < time.monotonic() - started < 5

    answers: list[httpx.Response] = []

    def wait() -> None:
        with httpx.Client(base_url=api.url, timeout=60) as client:
            answers.append(
                client.get(f"/jobs/{job}", params={"wait": "30s"}, headers=api.auth(token))
            )

    waiters = [threading.Thread(target=wait) for _ in range(20)]
    for thread in waiters:
        thread.start()
    front = api.slack.bot.api
    deadline = time.monotonic() + 10
    while front.jobs.waiting < 20 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert front.jobs.waiting == 20
    assert front._threads is not None and front._threads.borrowed_tokens == 0  # parked, no thread
    started = time.monotonic()
    assert [v.status for v in run_jobs(api.core)] == ["succeeded"]
    for thread in waiters:
        thread.join(30)
    assert len(answers) == 20 and time.monotonic() - started < 5
    assert {a.json()["status"] for a in answers} == {"succeeded"}
    assert front.jobs.waiting == 0

    assert api.get(f"/jobs/{job}", token, wait="1h").json()["status"] == "succeeded"  # at once
    assert api.get(f"/jobs/{job}", token, wait="soon").status_code == 422
    assert api.get("/jobs/0", token).status_code == 422
    assert api.get("/jobs/424242", token, wait="5s").status_code == 404


def test_weights_route(api: Api, fake_hub: FakeHub) -> None:
    add_model(fake_hub, "org/small", size=1 * MiB)
    token = api.token(ADMIN_A, "deploy,read")
    api.command(token, "install org/small")
    run_jobs(api.core)
    listed = api.get("/weights", token, status="installed").json()
    assert [w["repo"] for w in listed["weights"]] == ["org/small"]
    assert listed["total"] == 1 and listed["locations"][0]["name"] == "default"
    assert api.get("/weights", token, location="nowhere").status_code == 400
    assert api.get("/weights", token, status="bogus").status_code == 422


def test_request_body_limit(make_api: Callable[..., Api]) -> None:
    api = make_api(api_max_body=2048)
    token = api.token(ADMIN_A, "read")
    big = json.dumps({"text": "x" * 4096}).encode()
    answer = api.http.post("/commands", content=big, headers=api.auth(token))
    assert answer.status_code == 413 and answer.json()["data"]["code"] == "too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while streaming
        yield b'{"text": "'
        for _ in range(10):
            yield b"x" * 512
        yield b'"}'

    answer = api.http.post("/commands", content=chunks(), headers=api.auth(token))
    assert answer.status_code == 413
    assert api.command(token, "whoami").status_code == 200


def test_rate_limit_per_token_with_retry_after(make_api: Callable[..., Api]) -> None:
    api = make_api(api_rate_limit=6, api_rate_burst=2)
    first, second = api.token(ADMIN_A, "read"), api.token(ADMIN_B, "read")
    assert [api.command(first, "whoami").status_code for _ in range(2)] == [200, 200]
    limited = api.command(first, "whoami")
    assert limited.status_code == 429 and limited.json()["data"]["code"] == "rate_limited"
    assert 1 <= int(limited.headers["retry-after"]) <= 10
    assert api.command(second, "whoami").status_code == 200  # per token


def test_cors_is_off_unless_origins_are_configured(make_api: Callable[..., Api]) -> None:
    preflight = {
        "Origin": "https://ui.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    api = make_api()
    answer = api.http.options("/commands", headers=preflight)
    assert "access-control-allow-origin" not in answer.headers
    token = api.token(ADMIN_A, "read")
    answer = api.http.post(
        "/commands",
        json={"text": "whoami"},
        headers={**api.auth(token), "Origin": "https://ui.example"},
    )
    assert answer.status_code == 200 and "access-control-allow-origin" not in answer.headers

    api = make_api(api_cors_origins=["https://ui.example"])
    answer = api.http.options("/commands", headers=preflight)
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == "https://ui.example"
    other = api.http.options("/commands", headers={**preflight, "Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def test_tokens_are_stored_hashed_never_logged_and_last_use_is_recorded(
    api: Api, clock: FakeClock, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = api.token(ADMIN_A, "read", name="ci")
    assert api.runner.execute("token list", user=ADMIN_A).data["tokens"][0]["last_used_at"] is None
    assert api.command(token, "whoami").status_code == 200
    assert api.command(token + "x", "whoami").status_code == 401
    first_use = clock.now()
    used = api.runner.execute("token list", user=ADMIN_A).data["tokens"][0]
    assert used["last_used_at"] == first_use.isoformat()
    clock.advance(30)  # within a minute of the last write: not written again
    api.command(token, "whoami")
    assert api.core.tokens.list(ADMIN_A)[0].last_used_at == first_use
    clock.advance(31)
    api.command(token, "whoami")
    assert api.core.tokens.list(ADMIN_A)[0].last_used_at == clock.now()

    with api.core.db.transaction() as session:
        (row,) = session.scalars(sa.select(ApiToken)).all()
        stored = json.dumps([str(getattr(row, c.name)) for c in ApiToken.__table__.columns])
    secret = token.split("_", 2)[2]
    assert token[:12] == row.prefix and secret not in stored and token not in stored
    assert len(row.secret_hash) == 64 and row.secret_hash != token
    audit = json.dumps([e.params for e in api.core.audit.query(limit=100)], default=str)
    assert secret not in audit
    out, err = capfd.readouterr()
    logged = out + err + caplog.text
    assert "front=api" in logged and "api.unauthorized" in logged
    assert secret not in logged


def test_stdin_reaches_commands_that_read_a_secret(api: Api) -> None:
    token = api.token(ADMIN_A, "deploy,read")
    answer = api.command(
        token,
        "endpoint add gpu-1 http://8.8.8.8:11434 --api-key - --no-check",
        stdin="sk-test-0123456789abcdef\n",
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"]["endpoint"]["api_key"] == {"set": True, "last4": "cdef"}
    refused = api.command(token, "endpoint import --file /etc/hostname")
    assert refused.status_code == 400 and "bot's machine" in refused.json()["data"]["error"]
    needs_text = api.command(token, "endpoint import")
    assert needs_text.status_code == 400
    assert needs_text.json()["data"]["error"] == "give the export with --text '...'"


def test_up_with_the_terminal_front_serves_the_api_too(core: Core) -> None:
    """`modelarium up` without Slack: the port of the shell's process has the API as well."""
    from modelarium.entrypoints.processes import _health_server

    server = _health_server(core, None, api=True)
    assert server is not None
    try:
        base = f"http://127.0.0.1:{server.port}"  # type: ignore[attr-defined]
        assert httpx.get(base + "/api/v1/openapi.json").status_code == 200
        assert httpx.post(base + "/api/v1/commands", json={"text": "x"}).status_code == 401
    finally:
        server.stop()  # type: ignore[attr-defined]
