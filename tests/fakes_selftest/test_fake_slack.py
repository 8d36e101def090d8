"""Self-tests for FakeSlack: the REAL slack_sdk / slack_bolt clients must accept it as Slack."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import RateLimitErrorRetryHandler
from slack_sdk.http_retry.builtin_handlers import ServerErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook import WebhookClient

from tests.fakes.slack import FakeSlack, SlackRequestSigner, fake_slack

__all__ = ["fake_slack"]  # the fixture is imported for pytest, not unused

SECRET = "test-signing-secret"


@pytest.fixture
def client(fake_slack: FakeSlack) -> WebClient:
    return WebClient(token=fake_slack.token, base_url=fake_slack.api_url)


def _error(exc: pytest.ExceptionInfo[SlackApiError]) -> str:
    return str(exc.value.response["error"])


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


# -- auth ---------------------------------------------------------------------------------------
def test_auth_test_empty_json_body_and_scopes_header(
    fake_slack: FakeSlack, client: WebClient
) -> None:
    resp = client.auth_test()
    assert resp["user_id"] == "U0BOT"
    assert resp["bot_id"] == "B0BOT"
    assert "chat:write" in resp.headers["x-oauth-scopes"]
    (call,) = fake_slack.calls("auth.test")
    assert call.http_method == "POST"
    assert call.params == {}
    assert call.headers["authorization"] == f"Bearer {fake_slack.token}"
    assert fake_slack.requests[0].body == b""


def test_bad_or_missing_token(fake_slack: FakeSlack) -> None:
    with pytest.raises(SlackApiError) as bad:
        WebClient(token="xoxb-wrong", base_url=fake_slack.api_url).auth_test()
    assert _error(bad) == "invalid_auth"
    assert bad.value.response.status_code == 200
    with pytest.raises(SlackApiError) as missing:
        WebClient(base_url=fake_slack.api_url).auth_test()
    assert _error(missing) == "not_authed"


def test_missing_scope() -> None:
    with FakeSlack(scopes=["chat:write"]) as fake:
        client = WebClient(token=fake.token, base_url=fake.api_url)
        with pytest.raises(SlackApiError) as exc:
            client.users_info(user="U0BOT")
        assert exc.value.response["needed"] == "users:read"


def test_get_with_query_string_is_merged(fake_slack: FakeSlack) -> None:
    fake_slack.add_user("U1", "bob")
    req = urllib.request.Request(
        f"{fake_slack.api_url}users.info?user=U1",
        headers={"Authorization": f"Bearer {fake_slack.token}"},
    )
    with urllib.request.urlopen(req) as resp:
        body = json.load(resp)
    assert body["user"]["name"] == "bob"
    assert fake_slack.calls("users.info")[0].http_method == "GET"


# -- messages -----------------------------------------------------------------------------------
def test_post_update_delete_with_history(fake_slack: FakeSlack, client: WebClient) -> None:
    first = client.chat_postMessage(channel="C1", text="hello", blocks=[_section("hi")])
    second = client.chat_postMessage(channel="C1", text="again", thread_ts=first["ts"])
    assert first["channel"] == "C1"
    assert float(second["ts"]) > float(first["ts"])
    assert second["message"]["thread_ts"] == first["ts"]

    client.chat_update(channel="C1", ts=first["ts"], text="edited")
    msg = fake_slack.message("C1", first["ts"])
    assert msg is not None
    assert msg.text == "edited"
    assert msg.blocks == [_section("hi")]  # omitted blocks are kept
    assert msg.history[0]["text"] == "hello"

    with pytest.raises(SlackApiError) as exc:
        client.chat_update(channel="C1", ts="1.000001", text="x")
    assert _error(exc) == "message_not_found"

    client.chat_delete(channel="C1", ts=second["ts"])
    assert [m.ts for m in fake_slack.messages("C1")] == [first["ts"]]
    assert len(fake_slack.messages("C1", include_deleted=True)) == 2


@pytest.mark.filterwarnings("ignore:The top-level `text` argument:UserWarning")
def test_no_text_and_bad_channel(client: WebClient) -> None:
    with pytest.raises(SlackApiError) as no_text:
        client.chat_postMessage(channel="C1")
    assert _error(no_text) == "no_text"
    with pytest.raises(SlackApiError) as bad:
        client.chat_postMessage(channel="#general", text="x")
    assert _error(bad) == "channel_not_found"


def test_restricted_channel_list() -> None:
    with FakeSlack(channels=["C1"]) as fake:
        client = WebClient(token=fake.token, base_url=fake.api_url)
        client.chat_postMessage(channel="C1", text="ok")
        with pytest.raises(SlackApiError):
            client.chat_postMessage(channel="C2", text="no")


def test_dm_conversations_and_ephemeral(fake_slack: FakeSlack, client: WebClient) -> None:
    fake_slack.add_user("U1", "alice", email="alice@example.com")
    opened = client.conversations_open(users=["U1"])
    dm = opened["channel"]["id"]
    assert dm.startswith("D")
    again = client.conversations_open(users="U1", return_im=True)
    assert again["already_open"] is True
    assert again["channel"]["user"] == "U1"
    posted = client.chat_postMessage(channel="U1", text="psst")  # user id → the DM
    assert posted["channel"] == dm
    assert fake_slack.messages(dm)[0].text == "psst"

    eph = client.chat_postEphemeral(channel="C1", user="U1", text="only you")
    assert eph["message_ts"]
    assert fake_slack.ephemerals(user="U1")[0].text == "only you"

    with pytest.raises(SlackApiError) as exc:
        client.conversations_open(users="U404")
    assert _error(exc) == "user_not_found"


def test_users_and_usergroups(fake_slack: FakeSlack, client: WebClient) -> None:
    fake_slack.add_user("U1", "alice", real_name="Alice A", email="a@example.com", is_admin=True)
    user = client.users_info(user="U1", include_locale=True)["user"]
    assert user["profile"]["email"] == "a@example.com"
    assert user["is_admin"] is True
    assert user["locale"] == "en-US"
    with pytest.raises(SlackApiError) as exc:
        client.users_info(user="U404")
    assert _error(exc) == "user_not_found"

    fake_slack.set_usergroup("S1", ["U1", "U2"])
    assert client.usergroups_users_list(usergroup="S1")["users"] == ["U1", "U2"]
    with pytest.raises(SlackApiError) as exc2:
        client.usergroups_users_list(usergroup="S404")
    assert _error(exc2) == "no_such_subteam"


def test_email_hidden_without_scope() -> None:
    with FakeSlack(scopes=["users:read"]) as fake:
        fake.add_user("U1", email="a@example.com")
        client = WebClient(token=fake.token, base_url=fake.api_url)
        assert "email" not in client.users_info(user="U1")["user"]["profile"]


# -- Block Kit limits ---------------------------------------------------------------------------
def _button(**kw: Any) -> dict[str, Any]:
    return {"type": "button", "text": {"type": "plain_text", "text": "Go"}, "action_id": "a", **kw}


BAD_BLOCKS: dict[str, list[dict[str, Any]]] = {
    "51 blocks": [_section("x")] * 51,
    "section text 3001": [_section("x" * 3001)],
    "11 fields": [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}],
    "field 2001": [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2001}]}],
    "block_id 256": [{**_section("x"), "block_id": "b" * 256}],
    "action_id 256": [{"type": "actions", "elements": [_button(action_id="a" * 256)]}],
    "button value 2001": [{"type": "actions", "elements": [_button(value="v" * 2001)]}],
    "26 action elements": [{"type": "actions", "elements": [_button()] * 26}],
    "header 151": [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}],
    "header mrkdwn": [{"type": "header", "text": {"type": "mrkdwn", "text": "h"}}],
    "accessory value 2001": [{**_section("x"), "accessory": _button(value="v" * 2001)}],
}

GOOD_BLOCKS: dict[str, list[dict[str, Any]]] = {
    "50 blocks": [_section("x")] * 50,
    "section text 3000": [_section("x" * 3000)],
    "10 fields of 2000": [
        {"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2000}] * 10}
    ],
    "ids of 255": [
        {"type": "actions", "block_id": "b" * 255, "elements": [_button(action_id="a" * 255)]}
    ],
    "25 elements, value 2000": [{"type": "actions", "elements": [_button(value="v" * 2000)] * 25}],
    "header 150": [{"type": "header", "text": {"type": "plain_text", "text": "h" * 150}}],
}


@pytest.mark.parametrize("blocks", BAD_BLOCKS.values(), ids=BAD_BLOCKS.keys())
def test_invalid_blocks_rejected(client: WebClient, blocks: list[dict[str, Any]]) -> None:
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="C1", text="t", blocks=blocks)
    assert _error(exc) == "invalid_blocks"
    messages = exc.value.response["response_metadata"]["messages"]
    assert messages
    assert all(m.startswith("[ERROR] ") and "[json-pointer:/blocks" in m for m in messages)


@pytest.mark.parametrize("blocks", GOOD_BLOCKS.values(), ids=GOOD_BLOCKS.keys())
def test_blocks_at_the_limit_accepted(client: WebClient, blocks: list[dict[str, Any]]) -> None:
    assert client.chat_postMessage(channel="C1", text="t", blocks=blocks)["ok"]


def test_long_text_truncated_or_rejected(fake_slack: FakeSlack, client: WebClient) -> None:
    resp = client.chat_postMessage(channel="C1", text="x" * 40_001)
    assert len(resp["message"]["text"]) == 40_000
    with FakeSlack(long_text="error") as strict:
        strict_client = WebClient(token=strict.token, base_url=strict.api_url)
        with pytest.raises(SlackApiError) as exc:
            strict_client.chat_postMessage(channel="C1", text="x" * 40_001)
        assert _error(exc) == "msg_too_long"


# -- views --------------------------------------------------------------------------------------
def _modal(title: str = "Deploy", n_blocks: int = 1, **kw: Any) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": "deploy",
        "title": {"type": "plain_text", "text": title},
        "blocks": [_section("x")] * n_blocks,
        **kw,
    }


def test_trigger_ids(fake_slack: FakeSlack, client: WebClient) -> None:
    trigger = fake_slack.new_trigger_id()
    view = client.views_open(trigger_id=trigger, view=_modal())["view"]
    assert view["id"] == view["root_view_id"]
    assert fake_slack.view(view["id"])["callback_id"] == "deploy"
    with pytest.raises(SlackApiError) as reused:
        client.views_open(trigger_id=trigger, view=_modal())
    assert _error(reused) == "exchanged_trigger_id"

    stale = fake_slack.new_trigger_id()
    fake_slack.advance_time(3.1)
    with pytest.raises(SlackApiError) as expired:
        client.views_open(trigger_id=stale, view=_modal())
    assert _error(expired) == "expired_trigger_id"
    with pytest.raises(SlackApiError) as invalid:
        client.views_open(trigger_id="1.2.nope", view=_modal())
    assert _error(invalid) == "invalid_trigger_id"


@pytest.mark.parametrize(
    ("view", "error"),
    [
        (_modal(title="t" * 25), "invalid_arguments"),
        (_modal(n_blocks=101), "invalid_arguments"),
        (_modal(private_metadata="m" * 3001), "invalid_arguments"),
        ({**_modal(), "type": "home"}, "invalid_arguments"),
        (_modal(blocks=[_section("x" * 250_000)]), "view_too_large"),
    ],
    ids=["title 25", "101 blocks", "metadata 3001", "home via open", "too large"],
)
def test_views_open_rejects(
    fake_slack: FakeSlack, client: WebClient, view: dict[str, Any], error: str
) -> None:
    with pytest.raises(SlackApiError) as exc:
        client.views_open(trigger_id=fake_slack.new_trigger_id(), view=view)
    assert _error(exc) == error


def test_views_limits_accepted(fake_slack: FakeSlack, client: WebClient) -> None:
    ok = client.views_open(
        trigger_id=fake_slack.new_trigger_id(), view=_modal(title="t" * 24, n_blocks=100)
    )
    assert len(ok["view"]["blocks"]) == 100


def test_push_update_and_stack_limit(fake_slack: FakeSlack, client: WebClient) -> None:
    root = client.views_open(trigger_id=fake_slack.new_trigger_id(), view=_modal())["view"]
    pushed = client.views_push(
        trigger_id=fake_slack.new_trigger_id(view_id=root["id"]), view=_modal("Step 2")
    )["view"]
    assert pushed["root_view_id"] == root["id"]
    assert pushed["previous_view_id"] == root["id"]
    client.views_push(trigger_id=fake_slack.new_trigger_id(view_id=root["id"]), view=_modal("3"))
    with pytest.raises(SlackApiError) as exc:
        client.views_push(
            trigger_id=fake_slack.new_trigger_id(view_id=root["id"]), view=_modal("4")
        )
    assert _error(exc) == "push_limit_reached"

    updated = client.views_update(view_id=pushed["id"], view=_modal("New"), hash=pushed["hash"])
    assert updated["view"]["title"]["text"] == "New"
    with pytest.raises(SlackApiError) as conflict:
        client.views_update(view_id=pushed["id"], view=_modal("Old"), hash=pushed["hash"])
    assert _error(conflict) == "hash_conflict"
    with pytest.raises(SlackApiError) as missing:
        client.views_update(view_id="V404", view=_modal())
    assert _error(missing) == "not_found"


def test_views_publish_home(fake_slack: FakeSlack, client: WebClient) -> None:
    fake_slack.add_user("U1")
    home = {"type": "home", "blocks": [_section("welcome")]}
    first = client.views_publish(user_id="U1", view=home)["view"]
    second = client.views_publish(user_id="U1", view=home, hash=first["hash"])["view"]
    assert second["id"] == first["id"]
    assert fake_slack.home_view("U1")["blocks"] == home["blocks"]
    with pytest.raises(SlackApiError) as conflict:
        client.views_publish(user_id="U1", view=home, hash=first["hash"])
    assert _error(conflict) == "hash_conflict"
    with pytest.raises(SlackApiError) as submit:
        client.views_publish(
            user_id="U1", view={**home, "submit": {"type": "plain_text", "text": "Go"}}
        )
    assert _error(submit) == "invalid_arguments"


# -- files --------------------------------------------------------------------------------------
def test_files_upload_v2(fake_slack: FakeSlack, client: WebClient) -> None:
    resp = client.files_upload_v2(
        channel="C1",
        content=b"id,name\n1,x\n",
        filename="models.csv",
        title="Models",
        initial_comment="here you go",
    )
    file_id = resp["file"]["id"]
    stored = fake_slack.file(file_id)
    assert stored is not None
    assert stored.content == b"id,name\n1,x\n"
    assert stored.title == "Models"
    assert stored.filename == "models.csv"
    assert stored.channels == ["C1"]
    (msg,) = fake_slack.messages("C1")
    assert msg.files == [file_id]
    assert msg.text == "here you go"
    upload = next(r for r in fake_slack.requests if r.route.startswith("/upload/"))
    assert "authorization" not in upload.headers


# -- faults -------------------------------------------------------------------------------------
def test_rate_limit_without_and_with_retry_handler(
    fake_slack: FakeSlack, client: WebClient
) -> None:
    fake_slack.fail_next("chat.postMessage", status=429, retry_after=1)
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="C1", text="x")
    assert exc.value.response.status_code == 429
    assert exc.value.response.headers["Retry-After"] == "1"
    assert _error(exc) == "ratelimited"

    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=2))
    fake_slack.fail_next("chat.postMessage", status=429, retry_after=1)
    start = time.monotonic()
    assert client.chat_postMessage(channel="C1", text="x")["ok"]
    assert time.monotonic() - start >= 1.0
    assert [c.status for c in fake_slack.calls("chat.postMessage")] == [429, 429, 200]


def test_server_error_retry_handler(fake_slack: FakeSlack, client: WebClient) -> None:
    fake_slack.fail_next("users.info", status=500, count=2)
    fake_slack.add_user("U1")
    with pytest.raises(SlackApiError) as exc:
        client.users_info(user="U1")
    assert exc.value.response.status_code == 500
    client.retry_handlers.append(ServerErrorRetryHandler(max_retry_count=1))
    assert client.users_info(user="U1")["user"]["id"] == "U1"  # 2nd 500, then success


def test_plain_error_injection(fake_slack: FakeSlack, client: WebClient) -> None:
    fake_slack.fail_next("chat.postMessage", status=200, error="is_archived")
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="C1", text="x")
    assert _error(exc) == "is_archived"
    assert client.chat_postMessage(channel="C1", text="x")["ok"]


# -- response_url -------------------------------------------------------------------------------
def test_response_url_uses_and_expiry(fake_slack: FakeSlack) -> None:
    url = fake_slack.new_response_url(channel="C1", user="U1")
    hook = WebhookClient(url)
    assert hook.send(text="working…").status_code == 200
    assert hook.send(text="done", response_type="in_channel").status_code == 200
    assert hook.send(text="replaced", replace_original=True).status_code == 200
    assert fake_slack.ephemerals("C1", "U1")[0].text == "working…"
    (msg,) = fake_slack.messages("C1")
    assert msg.text == "replaced"
    assert msg.history[0]["text"] == "done"
    hook.send(text="4")
    hook.send(text="5")
    sixth = hook.send(text="6")
    assert sixth.status_code != 200
    assert json.loads(sixth.body)["error"] == "used_url"
    assert [r.error for r in fake_slack.responses(url)][-1] == "used_url"

    late = fake_slack.new_response_url()
    fake_slack.advance_time(30 * 60 + 1)
    assert json.loads(WebhookClient(late).send(text="x").body)["error"] == "expired_url"


def test_response_url_rejects_bad_payloads(fake_slack: FakeSlack) -> None:
    hook = WebhookClient(fake_slack.new_response_url())
    assert json.loads(hook.send_dict({}).body)["error"] == "invalid_payload"  # sent as `null`
    assert json.loads(hook.send(response_type="in_channel").body)["error"] == "no_text"
    bad = hook.send(blocks=[_section("x" * 3001)])
    assert json.loads(bad.body)["error"] == "invalid_blocks"


# -- signing and Slack → app builders -----------------------------------------------------------
def test_signer_matches_slack_test_vector() -> None:
    body = (
        "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow"
        "&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner"
        "&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2F"
        "commands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
        "&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
    )
    signer = SlackRequestSigner("8f742231b10e8888abcd99yyyzzz85a5")
    assert (
        signer.signature("1531420618", body)
        == "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
    )


def test_builders_are_signed_and_shaped(fake_slack: FakeSlack) -> None:
    signer = SlackRequestSigner(SECRET)
    verifier = SignatureVerifier(SECRET)
    cmd = fake_slack.slash_command("/model", "search llama 8b", user_id="U1")
    headers = signer.headers(cmd.body)
    assert verifier.is_valid_request(cmd.body, headers)
    assert not verifier.is_valid_request(cmd.body + b"x", headers)
    stale = signer.headers(cmd.body, timestamp=int(time.time()) - 301)
    assert not verifier.is_valid_request(cmd.body, stale)
    fields = {k: v[0] for k, v in parse_qs(cmd.body.decode(), keep_blank_values=True).items()}
    assert fields["command"] == "/model"
    assert fields["text"] == "search llama 8b"
    assert b"command=%2Fmodel" in cmd.body
    assert fields["response_url"] == cmd.response_url
    assert fields["response_url"].startswith(fake_slack.url)
    assert set(fields) >= {
        "token",
        "team_id",
        "team_domain",
        "channel_id",
        "channel_name",
        "user_id",
        "user_name",
        "command",
        "text",
        "api_app_id",
        "is_enterprise_install",
        "response_url",
        "trigger_id",
    }

    client = WebClient(token=fake_slack.token, base_url=fake_slack.api_url)
    blocks = [
        {
            "type": "actions",
            "block_id": "b1",
            "elements": [_button(action_id="approve", value="req-42")],
        }
    ]
    posted = client.chat_postMessage(channel="C1", text="approve?", blocks=blocks)
    click = fake_slack.block_actions("approve", user_id="U1")
    assert click.body.startswith(b"payload=")
    payload = json.loads(parse_qs(click.body.decode())["payload"][0])
    assert payload["type"] == "block_actions"
    assert payload["actions"][0]["value"] == "req-42"
    assert payload["actions"][0]["block_id"] == "b1"
    assert payload["container"]["message_ts"] == posted["ts"]
    assert payload["message"]["blocks"] == blocks
    assert payload["response_url"] == click.response_url


# -- a real bolt App over HTTP --------------------------------------------------------------
class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def bolt_app(fake_slack: FakeSlack) -> Iterator[tuple[App, str]]:
    """A real bolt App (HTTP mode via the WSGI adapter) whose WebClient points at the fake."""
    fake_slack.add_user("U1", "alice")
    app = App(
        signing_secret=SECRET,
        client=WebClient(token=fake_slack.token, base_url=fake_slack.api_url),
    )
    server = make_server("127.0.0.1", 0, SlackRequestHandler(app), handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield app, f"http://127.0.0.1:{server.server_port}/slack/events"
    server.shutdown()
    server.server_close()


def test_bolt_app_auth_test_at_construction(fake_slack: FakeSlack) -> None:
    App(
        signing_secret=SECRET, client=WebClient(token=fake_slack.token, base_url=fake_slack.api_url)
    )
    assert fake_slack.requests[0].route == "/api/auth.test"


def test_bolt_end_to_end(fake_slack: FakeSlack, bolt_app: tuple[App, str]) -> None:
    app, url = bolt_app
    signer = SlackRequestSigner(SECRET)

    @app.command("/model")
    def model(ack: Any, body: dict[str, Any], client: WebClient, respond: Any) -> None:
        ack()
        client.views_open(trigger_id=body["trigger_id"], view=_modal())
        respond(text=f"searching {body['text']}")
        client.chat_postMessage(
            channel=body["channel_id"],
            text="approve?",
            blocks=[{"type": "actions", "elements": [_button(action_id="approve", value="r1")]}],
        )

    @app.action("approve")
    def approve(ack: Any, body: dict[str, Any], respond: Any) -> None:
        ack()
        respond(text=f"approved {body['actions'][0]['value']}", replace_original=True)

    @app.view("deploy")
    def submit(ack: Any, view: dict[str, Any]) -> None:
        name = view["state"]["values"]["b"]["a"]["value"]
        ack(response_action="errors", errors={"b": f"bad {name}"})

    cmd = fake_slack.slash_command("/model", "llama", user_id="U1", channel_id="C1")
    assert signer.post(url, cmd).status == 200
    assert signer.post(url, cmd, timestamp=1).status == 401  # stale signature

    fake_slack.wait_for(lambda: fake_slack.messages("C1"))
    fake_slack.wait_for(lambda: fake_slack.ephemerals("C1"))
    assert fake_slack.ephemerals("C1")[0].text == "searching llama"
    assert fake_slack.views("modal")

    click = fake_slack.block_actions("approve", user_id="U1")
    assert signer.post(url, click).status == 200
    edited = fake_slack.wait_for(
        lambda: [m for m in fake_slack.messages("C1") if m.text.startswith("approved")]
    )
    assert edited[0].text == "approved r1"
    assert edited[0].history[0]["text"] == "approve?"

    @app.event("app_home_opened")
    def home(event: dict[str, Any], client: WebClient) -> None:
        client.views_publish(
            user_id=event["user"], view={"type": "home", "blocks": [_section("hi")]}
        )

    opened = {"type": "app_home_opened", "user": "U1", "channel": "D1", "tab": "home"}
    assert signer.post(url, fake_slack.event(opened)).status == 200
    fake_slack.wait_for(lambda: fake_slack.home_view("U1"))

    sub = fake_slack.view_submission(values={"b": {"a": "x"}})
    reply = signer.post(url, sub)
    assert reply.status == 200
    assert reply.json() == {"response_action": "errors", "errors": {"b": "bad x"}}


# -- helpers ------------------------------------------------------------------------------------
def test_wait_for_times_out(fake_slack: FakeSlack) -> None:
    with pytest.raises(AssertionError):
        fake_slack.wait_for(lambda: False, timeout=0.1)


def test_reset_keeps_configuration(fake_slack: FakeSlack, client: WebClient) -> None:
    fake_slack.add_user("U1")
    client.chat_postMessage(channel="C1", text="x")
    fake_slack.reset()
    assert fake_slack.calls() == []
    assert fake_slack.messages("C1") == []
    assert fake_slack.requests == []
    assert client.users_info(user="U1")["ok"]
