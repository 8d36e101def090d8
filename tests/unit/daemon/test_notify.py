"""Notifications: the outbox (routing, coalescing, retries, recorded failures) and signed webhooks.

The webhook receiver is a real local HTTP server that checks every signature itself, following
the scheme documented in ``core/notify/webhooks.py`` (not by calling our signing code).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from datetime import timedelta

import pytest

from modelarium.core.alerts import AlertRule, Observation
from modelarium.core.app import Core
from modelarium.core.db.models.notify import OutboundMessage, WebhookDelivery
from modelarium.core.messages import Message
from modelarium.core.notify import DeliveryError
from modelarium.core.notify.webhooks import sign, verify
from tests.conftest import make_settings
from tests.fakes.http import FakeHTTPServer, Request, Response
from tests.waiting import eventually

SECRET = "whsec-test-0123456789"
OPS, JOBS, PAGER = "C0OPS", "C0JOBS", "C0PAGER"


class Receiver(FakeHTTPServer):
    """A webhook endpoint: verifies signatures, answers with scripted statuses."""

    def __init__(self, secret: str = SECRET) -> None:
        super().__init__()
        self.secret = secret
        self.statuses: list[int] = []
        self.delay = 0.0
        self.verified: list[tuple[dict[str, str], dict]] = []
        self.rejected: list[Request] = []

    def handle(self, request: Request) -> Response:
        if self.delay:
            time.sleep(self.delay)
        ts = request.headers.get("x-modelarium-timestamp", "")
        expected = (
            "v1="
            + hmac.new(
                self.secret.encode(), f"{ts}.".encode() + request.body, hashlib.sha256
            ).hexdigest()
        )
        fresh = ts.isdigit() and abs(time.time() - int(ts)) <= 300
        if not (
            fresh
            and hmac.compare_digest(expected, request.headers.get("x-modelarium-signature", ""))
        ):
            with self._lock:
                self.rejected.append(request)
            return Response.json({"error": "bad signature"}, status=401)
        with self._lock:
            self.verified.append((request.headers, json.loads(request.body)))
            status = self.statuses.pop(0) if self.statuses else 200
        return Response.json({"ok": status < 300}, status=status)


@pytest.fixture
def receiver():
    with Receiver() as server:
        yield server


def _core(tmp_path, database_url, clock, receiver=None, **overrides) -> Core:
    hooks = []
    if receiver is not None:
        hooks = [
            {
                "name": "ops-hook",
                "url": f"{receiver.url}/hook",
                "secret": SECRET,
                "kinds": ["alert"],
            },
            {
                "name": "critical-only",
                "url": f"{receiver.url}/critical",
                "secret": SECRET,
                "severities": ["critical"],
            },
        ]
    settings = make_settings(
        tmp_path,
        database_url,
        notify_default_channel=OPS,
        notify_routes=[
            {"channel": PAGER, "severities": ["critical"]},
            {"channel": JOBS, "kinds": ["job"]},
        ],
        webhooks=hooks,
        **overrides,
    )
    core = Core(settings, clock=clock)
    core.migrate()
    return core


@pytest.fixture
def hooked(tmp_path, database_url, clock, receiver):
    core = _core(tmp_path, database_url, clock, receiver, delivery_max_attempts=4)
    yield core
    core.close()


def _deliveries(core: Core) -> list[WebhookDelivery]:
    with core.db.transaction() as session:
        return list(session.query(WebhookDelivery).order_by(WebhookDelivery.id))


# -- webhooks -------------------------------------------------------------------------------


def test_alert_events_reach_webhooks_signed_and_filtered(hooked, clock, receiver):
    hooked.alerts.register(AlertRule("disk_usage", "{loc} full", ">", 0.9))
    hooked.alerts.evaluate("disk_usage", [Observation("disk_usage", 0.95, {"loc": "shared"})])
    hooked.notify.notify("job", Message(fallback="job 1 done"))  # not for the alert hook
    report = hooked.notify.deliver_webhooks()
    assert report.sent == 1
    assert receiver.rejected == []
    [(headers, event)] = receiver.verified
    assert headers["x-modelarium-event"] == "alert"
    assert headers["x-modelarium-delivery"] == str(_deliveries(hooked)[0].id)
    assert headers["content-type"] == "application/json"
    assert event["kind"] == "alert"
    assert event["state"] == "firing"
    assert event["alerts"] == ["disk_usage{loc=shared}"]
    assert event["text"].startswith("1 alert(s) firing")

    hooked.alerts.evaluate("disk_usage", [Observation("disk_usage", 0.2, {"loc": "shared"})])
    assert hooked.notify.deliver_webhooks().sent == 1
    resolved = receiver.verified[-1][1]
    assert resolved["state"] == "resolved"
    assert resolved["alert"] == "disk_usage{loc=shared}"
    assert [d.status for d in _deliveries(hooked)] == ["delivered", "delivered"]

    # Severity filters: only critical events reach the second target.
    hooked.notify.notify("notice", Message(fallback="the sky is falling"), severity="critical")
    hooked.notify.deliver_webhooks()
    assert [e["text"] for h, e in receiver.verified if h.get("x-modelarium-event") == "notice"] == [
        "the sky is falling"
    ]


def test_the_documented_signature_scheme_accepts_only_the_genuine_body():
    body = b'{"kind":"alert","state":"firing"}'
    now = int(time.time())
    signature = sign(SECRET, now, body)
    assert (
        signature
        == "v1=" + hmac.new(SECRET.encode(), f"{now}.".encode() + body, "sha256").hexdigest()
    )
    assert verify(SECRET, str(now), body, signature)
    assert not verify(SECRET, str(now), body.replace(b"firing", b"resolved"), signature)
    assert not verify("other-secret", str(now), body, signature)
    assert not verify(SECRET, str(now + 1), body, signature), "the timestamp is signed too"
    assert not verify(SECRET, str(now - 301), body, sign(SECRET, now - 301, body)), "replay"
    assert not verify(SECRET, "yesterday", body, signature)


def test_a_receiver_with_another_secret_rejects_and_it_is_retried(tmp_path, database_url, clock):
    with Receiver(secret="not-the-configured-secret") as wrong:
        core = _core(tmp_path, database_url, clock, wrong)
        try:
            core.notify.emit_webhooks("alert", {"state": "firing"})
            report = core.notify.deliver_webhooks()
            assert report.failed == 1
            assert len(wrong.rejected) == 1
            [delivery] = _deliveries(core)
            assert delivery.status == "pending"
            assert delivery.last_error == "HTTP 401"
        finally:
            core.close()


def test_failed_webhooks_back_off_exponentially_and_keep_their_delivery_id(hooked, clock, receiver):
    receiver.statuses = [500, 503]
    hooked.notify.emit_webhooks("alert", {"state": "firing", "alert": "x"})
    assert hooked.notify.deliver_webhooks().failed == 1
    [delivery] = _deliveries(hooked)
    assert delivery.attempts == 1
    assert delivery.next_attempt_at == clock.now() + timedelta(seconds=2)
    assert hooked.notify.deliver_webhooks().failed == 0, "not before the backoff"
    assert len(receiver.verified) == 1

    clock.advance(2)
    assert hooked.notify.deliver_webhooks().failed == 1
    [delivery] = _deliveries(hooked)
    assert delivery.last_error == "HTTP 503"
    assert delivery.next_attempt_at == clock.now() + timedelta(seconds=4), "backoff doubles"
    clock.advance(4)
    assert hooked.notify.deliver_webhooks().sent == 1
    ids = {h["x-modelarium-delivery"] for h, _ in receiver.verified}
    assert len(receiver.verified) == 3
    assert ids == {str(delivery.id)}, "one delivery id across retries (receivers can dedupe)"
    assert _deliveries(hooked)[0].status == "delivered"


def test_a_webhook_that_keeps_failing_is_recorded_not_lost(hooked, clock, receiver, runner):
    receiver.statuses = [500] * 10
    hooked.notify.emit_webhooks("alert", {"state": "firing", "alert": "x"})
    for _ in range(10):
        hooked.notify.deliver_webhooks()
        clock.advance(600)
    [delivery] = _deliveries(hooked)
    assert delivery.status == "failed"
    assert delivery.attempts == hooked.notify.max_attempts == 4
    assert delivery.event["alert"] == "x", "the event is kept"
    assert (f"webhook #{delivery.id}", "ops-hook", "HTTP 500") in hooked.notify.failed_deliveries()

    from modelarium.bot.dispatch import CommandRunner

    text = CommandRunner(hooked).execute("status", user="U_ADMIN").text
    assert "1 notification(s) could not be delivered" in text
    assert f"webhook #{delivery.id} -> ops-hook: HTTP 500" in text


def test_an_unreachable_webhook_is_retried_with_the_error_recorded(tmp_path, database_url, clock):
    dead = Receiver()
    dead.start()
    url = dead.url
    dead.stop()  # nothing listens there any more
    core = _core(tmp_path, database_url, clock)
    core.notify.webhooks = [_target("gone", url)]
    try:
        core.notify.emit_webhooks("alert", {"state": "firing"})
        assert core.notify.deliver_webhooks().failed == 1
        [delivery] = _deliveries(core)
        assert delivery.status == "pending"
        assert delivery.last_error.startswith("ConnectError")
    finally:
        core.close()


def _target(name: str, url: str):
    from modelarium.config.settings import WebhookTarget

    return WebhookTarget(name=name, url=f"{url}/hook", secret=SECRET)


def test_a_slow_webhook_does_not_hold_the_database(hooked, clock, receiver):
    """HTTP happens outside any transaction: other writers (the bot, the job workers) carry on
    while a receiver takes its time. On SQLite a write transaction held across the HTTP call
    would block every other writer until the receiver answered."""
    receiver.delay = 3.0
    hooked.notify.emit_webhooks("alert", {"state": "firing"})
    delivering = threading.Thread(target=hooked.notify.deliver_webhooks)
    delivering.start()
    try:
        eventually(lambda: receiver.requests, what="the delivery to start")
        started = time.monotonic()
        hooked.notify.publish("job:1", Message(fallback="progress"), channel=JOBS)
        hooked.audit.record("U1", "test.write")
        blocked = time.monotonic() - started
    finally:
        delivering.join(10)
    # (milliseconds when nothing waits; half the receiver's 3 s leaves room for a loaded machine)
    assert blocked < 1.5, f"a write waited {blocked:.2f}s for the webhook call"
    assert _deliveries(hooked)[0].status == "delivered"


def test_two_dispatchers_deliver_each_webhook_once(hooked, clock, receiver, tmp_path, settings):
    for n in range(20):
        hooked.notify.emit_webhooks("alert", {"state": "firing", "n": n})
    other = Core(hooked.settings, clock=clock)
    receiver.delay = 0.01
    try:

        def run(core: Core) -> None:
            core.notify.deliver_webhooks()

        threads = [threading.Thread(target=run, args=(c,)) for c in (hooked, other, hooked)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    finally:
        other.close()
    numbers = sorted(event["n"] for _h, event in receiver.verified)
    assert numbers == list(range(20))


# -- the chat outbox ------------------------------------------------------------------------


@pytest.fixture
def outbox(tmp_path, database_url, clock):
    core = _core(tmp_path, database_url, clock, delivery_max_attempts=3)
    yield core
    core.close()


def test_notifications_are_routed_by_kind_and_severity(outbox, sender):
    outbox.notify.notify("job", Message(fallback="job done"))
    outbox.notify.notify("alert", Message(fallback="disk on fire"), severity="critical")
    outbox.notify.notify("notice", Message(fallback="fyi"))
    outbox.notify.notify("notice", Message(fallback="explicit"), channel="C0ELSEWHERE")
    outbox.notify.deliver_pending(sender)
    assert [p.text for p in sender.messages(JOBS)] == ["job done"]
    assert [p.text for p in sender.messages(PAGER)] == ["disk on fire"]
    assert [p.text for p in sender.messages(OPS)] == ["fyi"]
    assert [p.text for p in sender.messages("C0ELSEWHERE")] == ["explicit"]


def test_updates_coalesce_and_edit_the_same_message(outbox, clock, sender):
    for n in range(10):
        outbox.notify.publish("job:7", Message(fallback=f"step {n}"), channel=JOBS)
    outbox.notify.deliver_pending(sender)
    [posted] = sender.messages(JOBS)
    assert posted.text == "step 9", "only the newest version is sent"
    assert posted.history == []
    for n in range(10, 13):
        outbox.notify.publish("job:7", Message(fallback=f"step {n}"))
    outbox.notify.deliver_pending(sender)
    [posted] = sender.messages(JOBS)
    assert posted.text == "step 12"
    assert len(posted.history) == 1


def test_edits_of_one_message_are_spaced_by_the_update_interval(
    tmp_path, database_url, clock, sender
):
    core = _core(tmp_path, database_url, clock, message_update_interval=1.5)
    try:
        core.notify.publish("job:1", Message(fallback="v1"), channel=JOBS)
        core.notify.deliver_pending(sender)
        core.notify.publish("job:1", Message(fallback="v2"))
        assert core.notify.deliver_pending(sender).sent == 0, "too soon after the last edit"
        assert sender.messages(JOBS)[0].text == "v1"
        clock.advance(1.5)
        assert core.notify.deliver_pending(sender).sent == 1
        assert sender.messages(JOBS)[0].text == "v2"
    finally:
        core.close()


def _row(core: Core, key: str) -> OutboundMessage:
    with core.db.transaction() as session:
        return session.get(OutboundMessage, key)


def test_chat_failures_back_off_honour_retry_after_and_are_kept(outbox, clock, sender, runner):
    sender.fail = [
        DeliveryError("Slack error: internal_error"),
        DeliveryError("rate", retry_after=30),
    ]
    outbox.notify.notify("notice", Message(fallback="hello"), key="n1")
    assert outbox.notify.deliver_pending(sender).failed == 1
    row = _row(outbox, "n1")
    assert row.pending
    assert row.attempts == 1
    assert row.next_attempt_at == clock.now() + timedelta(seconds=2)
    assert outbox.notify.deliver_pending(sender).sent == 0

    clock.advance(2)
    assert outbox.notify.deliver_pending(sender).failed == 1
    assert _row(outbox, "n1").next_attempt_at == clock.now() + timedelta(seconds=30)
    clock.advance(29)
    assert outbox.notify.deliver_pending(sender).sent == 0
    clock.advance(1)
    assert outbox.notify.deliver_pending(sender).sent == 1
    assert [p.text for p in sender.messages(OPS)] == ["hello"]
    assert _row(outbox, "n1").last_error is None


def test_a_message_that_cannot_be_delivered_is_recorded_and_shown_in_status(
    outbox, clock, sender, runner
):
    sender.fail = [DeliveryError("Slack refused the message: channel_not_found", permanent=True)]
    outbox.notify.notify("notice", Message(fallback="lost?"), key="n2", channel="C0GONE")
    assert outbox.notify.deliver_pending(sender).failed == 1
    row = _row(outbox, "n2")
    assert not row.pending, "a permanent error is not retried"
    assert row.payload["fallback"] == "lost?", "the content is kept"
    assert ("n2", "C0GONE", "Slack refused the message: channel_not_found") in (
        outbox.notify.failed_deliveries()
    )
    clock.advance(3600)
    assert outbox.notify.deliver_pending(sender).sent == 0

    # Transient errors are given up on after max attempts, and recorded the same way.
    sender.fail = [DeliveryError("Slack unreachable")] * 3
    outbox.notify.notify("notice", Message(fallback="flaky"), key="n3")
    for _ in range(5):
        outbox.notify.deliver_pending(sender)
        clock.advance(600)
    row = _row(outbox, "n3")
    assert not row.pending
    assert row.attempts == 3
    assert "n3" in [key for key, _c, _e in outbox.notify.failed_deliveries()]
    status = runner.execute("status", user="U_ADMIN").text
    assert "notification(s) could not be delivered" in status


def test_a_crashing_sender_does_not_wedge_the_outbox(outbox, clock, sender):
    class Broken:
        name = "broken"

        def send(self, channel, message, ref, *, thread=None):
            raise KeyError("bug in a sender")

    outbox.notify.notify("notice", Message(fallback="a"), key="a")
    assert outbox.notify.deliver_pending(Broken()).failed == 1
    assert "KeyError" in _row(outbox, "a").last_error
    clock.advance(2)
    assert outbox.notify.deliver_pending(sender).sent == 1


def test_two_notices_of_one_kind_in_the_same_instant_are_both_kept(outbox, sender):
    first = outbox.notify.notify("notice", Message(fallback="first"))
    second = outbox.notify.notify("notice", Message(fallback="second"))
    assert first != second
    outbox.notify.deliver_pending(sender)
    assert sorted(p.text for p in sender.messages(OPS)) == ["first", "second"]


# -- slow receivers (issue 13, item 6) ----------------------------------------------------------


class Trickle:
    """A webhook receiver that answers one byte at a time, every ``interval`` seconds.

    Every read gets a byte long before any per-read timeout, so only a deadline on the whole
    delivery ends it. It gives up after ``limit`` seconds, so a test that fails still ends.
    """

    def __init__(self, interval: float = 0.25, limit: float = 15.0) -> None:
        import socket

        self.interval, self.limit = interval, limit
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.accepted = 0
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn) -> None:
        answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        answer += b"Content-Length: 200\r\n\r\n" + b" " * 200
        ends = time.monotonic() + self.limit
        with conn:
            try:
                conn.recv(65536)
                for byte in answer:
                    if self.stop.wait(self.interval) or time.monotonic() > ends:
                        return
                    conn.sendall(bytes([byte]))
            except OSError:
                return

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


@pytest.fixture
def trickle():
    server = Trickle()
    yield server
    server.close()


def test_a_trickling_receiver_is_cut_at_the_delivery_deadline(
    tmp_path, database_url, clock, trickle
):
    """One deadline for the whole delivery (connect, send, answer), not one per read."""
    core = _core(tmp_path, database_url, clock, webhook_timeout=0.5)
    core.notify.webhooks = [_target("slow", trickle.url)]
    try:
        core.notify.emit_webhooks("alert", {"state": "firing"})
        started = time.monotonic()
        report = core.notify.deliver_webhooks()
        elapsed = time.monotonic() - started
        assert elapsed < 3.0, f"the delivery took {elapsed:.1f}s"
        assert report.failed == 1 and trickle.accepted == 1
        [delivery] = _deliveries(core)
        assert delivery.status == "pending" and delivery.attempts == 1
        assert delivery.last_error == "no answer within 0.5s"
    finally:
        core.close()


def test_a_slow_webhook_receiver_does_not_stall_chat_messages(
    tmp_path, database_url, clock, trickle, sender
):
    """Approval cards go out while a webhook receiver takes its time: separate workers."""
    from modelarium.automation.daemon import Daemon

    core = _core(tmp_path, database_url, clock)  # the default deadline: 10 s
    core.notify.webhooks = [_target("slow", trickle.url)]
    daemon = Daemon(core, sender=sender, workers=0)
    try:
        core.notify.emit_webhooks("alert", {"state": "firing"})
        daemon.start()
        eventually(lambda: trickle.accepted, what="the webhook delivery to start")
        started = time.monotonic()
        core.notify.publish("approval:1", Message(fallback="Approve?"), channel=OPS)
        eventually(lambda: sender.messages(OPS), what="the card to be posted")
        waited = time.monotonic() - started
        # (the webhook takes its whole 10 s deadline: a card behind it would wait that long)
        assert waited < 4.0, f"the card waited {waited:.1f}s behind the webhook"
    finally:
        trickle.close()
        daemon.stop()
        core.close()
