"""SSRF through endpoints, against real servers on 127.0.0.1 (issue 13, item 3).

The test settings allow ``127.0.0.0/8`` (see conftest.py): without the allowlist the fake servers
could not be used at all. Here the allowlist is taken away, or the name resolves elsewhere
between the add and the check, and the connection itself must refuse.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelarium.bot.dispatch import CommandRunner
from modelarium.core.app import Core
from modelarium.core.clients.addresses import AddressPolicy
from modelarium.core.rbac import Role
from tests.conftest import make_settings
from tests.fakes.http import FakeHTTPServer, Request, Response
from tests.fakes.ollama import FakeOllama
from tests.integration.endpoints.conftest import ADMIN, OWNER, TIMEOUT


def test_the_address_is_checked_again_at_connect_time(
    core: Core, fake_ollama: FakeOllama, tmp_path: Path, database_url: str, make_core
):
    """Added while allowed; the allowlist is then emptied: the daemon must not connect."""
    core.endpoints.add(OWNER, "gpu-1", fake_ollama.url)
    strict = make_core(
        make_settings(tmp_path, database_url, health_timeout=TIMEOUT),
        clock=core.clock,
        migrate=False,
    )
    assert strict.settings.endpoint_allowlist == []
    outcome = strict.endpoints.check(OWNER, "gpu-1")
    assert not outcome.ok
    assert outcome.error.startswith("refused: 127.0.0.1 is a loopback address")
    report = strict.endpoints.check_all()
    assert report.failed == 1
    assert fake_ollama.calls == []


def test_dns_rebinding_is_refused(core: Core, fake_ollama: FakeOllama):
    """The name resolves to a public address when added, to 127.0.0.1 when checked."""
    answers = iter([["93.184.215.14"], ["127.0.0.1"], ["127.0.0.1"]])

    def rebinding(host: str, port: int) -> list[str]:
        assert host == "rebind.example"
        return next(answers)

    core.endpoints.address_policy = AddressPolicy.from_allowlist([], resolver=rebinding)
    port = fake_ollama.url.rsplit(":", 1)[1]
    core.endpoints.add(OWNER, "gpu-1", f"http://rebind.example:{port}")
    outcome = core.endpoints.check(OWNER, "gpu-1")
    assert not outcome.ok
    assert outcome.error.startswith("refused: rebind.example resolves to a loopback address")
    assert fake_ollama.calls == []


class _NotHttp:
    """A TCP server that speaks something else (an SSH banner), like a port scan would find."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\nProtocol mismatch.\r\n")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def not_http() -> Iterator[_NotHttp]:
    server = _NotHttp()
    yield server
    server.close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_viewers_cannot_tell_a_closed_port_from_a_non_http_one(
    core: Core, fake_ollama: FakeOllama, not_http: _NotHttp
):
    """No port-scanner oracle: one message for every way of getting no HTTP answer."""
    runner = CommandRunner(core)
    hanging = FakeOllama(mode="hanging")
    with hanging:
        targets = {
            "closed": f"http://127.0.0.1:{_closed_port()}",
            "ssh": f"http://127.0.0.1:{not_http.port}",
            "hangs": hanging.url,
        }
        for name, url in targets.items():
            core.endpoints.add(OWNER, name, url)
        fake_ollama.set_mode("reset")
        core.endpoints.add(OWNER, "resets", fake_ollama.url)
        seen = {}
        for name in [*targets, "resets"]:
            reply = runner.execute(f"endpoint check {name}", user=OWNER)
            seen[name] = core.endpoints.check(OWNER, name).error
            assert "Errno" not in reply.text and "protocol" not in reply.text
        assert len(set(seen.values())) == 1, seen
        (message,) = set(seen.values())
        assert message.startswith("no HTTP answer")
        shown = core.endpoints.get(OWNER, "ssh")
        assert shown.last_error == message
        assert {c.error for c in core.endpoints.history(OWNER, "closed")} == {message}
        # operators (and admins) keep the detail they need to fix an endpoint
        core.rbac.grant(OWNER, Role.OPERATOR, granted_by=ADMIN)
        detailed = {name: core.endpoints.check(OWNER, name).error for name in seen}
        assert len(set(detailed.values())) >= 3, detailed
        assert "cannot connect" in detailed["closed"]
        assert f"no answer within {TIMEOUT:g}s" in detailed["hangs"]
        hanging.set_mode("healthy")


class _Leaky(FakeHTTPServer):
    """An internal service that puts private things in its error pages."""

    def handle(self, request: Request) -> Response:
        return Response(
            status=500,
            body=b"<html><title>Admin</title>INTERNAL-SECRET db=10.0.0.7 pw=hunter2</html>",
            headers={"Content-Type": "text/html"},
        )


def test_upstream_error_bodies_are_not_echoed(core: Core):
    runner = CommandRunner(core)
    with _Leaky() as leaky:
        core.endpoints.add(OWNER, "leaky", leaky.url)
        listed = runner.execute("ollama list --endpoint leaky", user=OWNER)
        checked = runner.execute("endpoint check leaky", user=OWNER)
        core.endpoints.edit(ADMIN, "leaky", type="custom", health_path="/status")
        custom = runner.execute("endpoint check leaky", user=OWNER)
    for reply in (listed, checked, custom):
        text = reply.text + str(reply.data)
        assert "INTERNAL-SECRET" not in text and "hunter2" not in text
    assert "HTTP 500" in listed.text
