"""The bot's HTTP surface and process wiring: /healthz, /metrics, Slack's handshakes, run_bot."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from modelarium.core.app import Core
from modelarium.core.messages import Message
from modelarium.entrypoints.web import BotServer
from tests.fakes.slack import FakeSlack, SlackRequestSigner
from tests.integration.slack.conftest import ADMIN_A, CHANNEL, SECRET, Harness


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_healthz_and_metrics(slack: Harness) -> None:
    slack.command("help")
    status, body = _get(slack.bot.url + "/healthz")
    assert status == 200
    health = json.loads(body)
    assert health["ok"] is True
    assert health["checks"]["database"]["ok"] and health["checks"]["slack"]["detail"] == "http"
    status, metrics = _get(slack.bot.url + "/metrics")
    assert status == 200
    text = metrics.decode()
    count = next(
        line for line in text.splitlines() if line.startswith("modelarium_slack_ack_seconds_count")
    )
    assert float(count.split()[-1]) >= 1
    assert 'modelarium_command_seconds_count{command="help",outcome="ok"}' in text


def test_slack_handshakes(slack: Harness) -> None:
    challenge = json.dumps({"type": "url_verification", "challenge": "abc123", "token": "t"})
    reply = slack.post(challenge.encode(), headers={"Content-Type": "application/json"})
    assert reply.status == 200 and reply.json() == {"challenge": "abc123"}
    request = urllib.request.Request(
        slack.url, data=b"ssl_check=1&token=x", method="POST"
    )  # unsigned, as Slack sends it
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    assert _get(slack.url)[0] == 405


def test_outbox_loop_delivers_in_the_bot_process(core: Core, fake_slack: FakeSlack) -> None:
    bot = BotServer(core, deliver_outbox=True, outbox_interval=0.05)
    with bot:
        core.notify.publish("alert:9", Message().text("🔥 endpoint down"), channel=CHANNEL)
        (message,) = fake_slack.wait_for(lambda: fake_slack.messages(CHANNEL))
        assert "endpoint down" in message.text
        core.notify.publish("alert:9", Message().text("✅ endpoint recovered"), channel=CHANNEL)
        fake_slack.wait_for(lambda: fake_slack.calls("chat.update"))
        fake_slack.wait_for(lambda: "recovered" in fake_slack.messages(CHANNEL)[0].text)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow  # a `modelarium bot` process
def test_modelarium_bot_process(tmp_path: Path, fake_slack: FakeSlack) -> None:
    """`modelarium bot` serves Slack and health on MODELARIUM_PORT and stops on SIGTERM.

    Process wiring does not depend on the database, so this runs once, on SQLite.
    """
    database_url = f"sqlite:///{tmp_path / 'bot.db'}"
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parents[3]),
        "SLACK_BOT_TOKEN": fake_slack.token,
        "SLACK_SIGNING_SECRET": SECRET,
        "MODELARIUM_SLACK_API_URL": fake_slack.api_url,
        "MODELARIUM_DATA_DIR": str(tmp_path / "data"),
        "MODELARIUM_DATABASE_URL": database_url,
        "MODELARIUM_ADMINS": ADMIN_A,
        "MODELARIUM_HOST": "127.0.0.1",
        "MODELARIUM_LOG_FORMAT": "json",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from modelarium.entrypoints.cli import main; raise SystemExit(main())",
            "bot",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if _get(f"http://127.0.0.1:{port}/healthz")[0] == 200:
                    break
            except OSError:
                pass
            assert process.poll() is None, process.stdout.read().decode()  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "bot did not start"
            time.sleep(0.1)
        cmd = fake_slack.slash_command("/model", "whoami", user_id=ADMIN_A)
        reply = SlackRequestSigner(SECRET).post(f"http://127.0.0.1:{port}/slack/events", cmd)
        assert reply.status == 200
        fake_slack.wait_for(lambda: fake_slack.responses(cmd.response_url), timeout=10)
        assert "admin" in (fake_slack.responses(cmd.response_url)[0].text or "")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert code == 0


def test_socket_mode_serves_health_but_no_events_route(
    tmp_path: Path, database_url: str, fake_slack: FakeSlack, make_core
) -> None:
    """With an app token the requests come over the websocket; the port keeps /healthz."""
    from modelarium.bot.slack.app import SlackFront
    from tests.conftest import make_settings

    settings = make_settings(
        tmp_path,
        database_url,
        slack_bot_token=fake_slack.token,
        slack_app_token="xapp-1-A0FAKE-1-abcdef",
        slack_api_url=fake_slack.api_url,
        host="127.0.0.1",
        port=0,
    )
    core = make_core(settings)
    front = SlackFront(core)  # no signing secret needed: Socket Mode is not signed
    assert front.socket_mode
    bot = BotServer(core, front=front, deliver_outbox=False)
    assert bot.mode == "socket_mode"
    bot.http.start()  # the HTTP half only: the fake has no websocket endpoint
    try:
        assert _get(bot.url + "/healthz")[0] == 200
        request = urllib.request.Request(bot.events_url, data=b"x=1", method="POST")
        try:
            urllib.request.urlopen(request, timeout=10)
            status = 200
        except urllib.error.HTTPError as err:
            status = err.code
        assert status == 404
    finally:
        bot.http.stop()
        front.close()


def test_a_bad_token_is_one_clear_error(core: Core, fake_slack: FakeSlack) -> None:
    from modelarium.bot.slack.app import SlackFront
    from modelarium.core.errors import ModelariumError

    fake_slack.tokens.clear()
    with pytest.raises(ModelariumError) as failure:
        SlackFront(core)
    message = str(failure.value)
    assert "invalid_auth" in message
    assert "SLACK_BOT_TOKEN" in message
    assert fake_slack.token not in message
