"""POST /inference/events/<group>/<member>: KServe's logger CloudEvents, paired into rows."""

from __future__ import annotations

import hashlib
import threading
import uuid

import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY
from starlette.testclient import TestClient

from modelarium.bot.inference import InferenceEvents
from modelarium.core.groups.ingest import parse
from modelarium.entrypoints.web import build_app
from tests.fakes import kserve_logger as kl
from tests.integration.groups.conftest import ADMIN
from tests.integration.groups.test_split import CHALLENGER, CHAMPION, _group


@pytest.fixture
def server(core):
    events = InferenceEvents(core)
    client = TestClient(build_app(core, routes=events.routes))
    yield client
    client.close()
    events.close()


def _path(member: str, token: str | None = None) -> str:
    query = f"?token={token}" if token else ""
    return f"/inference/events/chat/{member.replace('/', '%2F')}{query}"


def _rows(core) -> list[dict]:
    table = core.groups.table(core.groups.get("chat"))
    with core.db.engine.connect() as connection:
        return [
            dict(r) for r in connection.execute(sa.select(table).order_by(table.c.id)).mappings()
        ]


def _rejected(reason: str) -> float:
    return (
        REGISTRY.get_sample_value("modelarium_inference_events_rejected_total", {"reason": reason})
        or 0.0
    )


def test_request_and_response_become_one_row_with_latency_and_usage(runner, core, endpoints,
                                                                    server):  # fmt: skip
    _group(runner)
    token = core.groups.token("chat")
    t0 = core.clock.now().timestamp()
    # the response of one request arrives before its request (another replica, a retry)
    h, b = kl.binary(kl.RESPONSE, "r-2", t0 + 0.250, kl.chat_response("m", "hi there", 7, 2))
    assert server.post(_path(CHAMPION, token), headers=h, content=b).status_code == 202
    h, b = kl.binary(kl.REQUEST, "r-1", t0, kl.chat_request("m", "hello"))
    assert server.post(_path(CHAMPION, token), headers=h, content=b).status_code == 202
    assert _rows(core) == []  # waiting for its response
    h, b = kl.binary(kl.RESPONSE, "r-1", t0 + 0.1234567, kl.chat_response("m", "hey", 5, 3))
    assert server.post(_path(CHAMPION), headers={**h, "X-Modelarium-Token": token},
                       content=b).status_code == 202  # fmt: skip
    h, b = kl.structured(kl.REQUEST, "r-2", t0 + 0.050, kl.chat_request("m", "again"))
    assert server.post(_path(CHAMPION), headers={**h, "Authorization": f"Bearer {token}"},
                       content=b).status_code == 202  # fmt: skip
    h, b = kl.binary(kl.REQUEST, "r-3", t0 + 1, kl.chat_request("m", "boom"), endpoint="canary")
    server.post(_path(CHALLENGER, token), headers=h, content=b)
    h, b = kl.binary(kl.RESPONSE, "r-3", t0 + 1.5, kl.error_response())
    server.post(_path(CHALLENGER, token), headers=h, content=b)

    rows = _rows(core)
    assert [(r["request_id"], r["member"], r["ok"], r["source"]) for r in rows] == [
        ("r-1", CHAMPION, True, "logger"),
        ("r-2", CHAMPION, True, "logger"),
        ("r-3", CHALLENGER, False, "logger"),
    ]
    assert rows[0]["latency_ms"] == pytest.approx(123.4567, abs=0.01)
    assert rows[1]["latency_ms"] == pytest.approx(200.0, abs=0.01)
    assert (rows[0]["prompt_tokens"], rows[0]["completion_tokens"]) == (5, 3)
    assert rows[2]["error"] == "CUDA out of memory"
    assert rows[0]["prompt"] is None and rows[0]["completion"] is None  # payloads: off
    compared = runner.execute("group compare chat --no-chart", user=ADMIN).data["members"]
    assert compared[CHAMPION]["requests"] == 2 and compared[CHALLENGER]["errors"] == 1


@pytest.mark.parametrize("mode", ["hashes", "full"])
def test_payload_privacy_setting(runner, core, endpoints, server, mode):
    core.settings = core.settings.model_copy(update={"group_payloads": mode})
    _group(runner)
    token = core.groups.token("chat")
    t0 = core.clock.now().timestamp()
    for kind, at, data in (
        (kl.REQUEST, t0, kl.chat_request("m", "secret prompt")),
        (kl.RESPONSE, t0 + 0.1, kl.chat_response("m", "secret answer", 2, 2)),
    ):
        h, b = kl.binary(kind, "p-1", at, data)
        assert server.post(_path(CHAMPION, token), headers=h, content=b).status_code == 202
    row = _rows(core)[0]
    if mode == "full":
        assert (row["prompt"], row["completion"]) == ("secret prompt", "secret answer")
    else:
        assert row["prompt"] == "sha256:" + hashlib.sha256(b"secret prompt").hexdigest()
        assert "secret" not in row["completion"]


def test_refusals_are_answered_and_counted(runner, core, endpoints, server):
    _group(runner)
    token = core.groups.token("chat")
    t0 = core.clock.now().timestamp()
    h, b = kl.binary(kl.REQUEST, "x", t0, kl.chat_request("m", "x"))
    before = {r: _rejected(r) for r in ("auth", "malformed", "unknown_member")}
    assert server.post(_path(CHAMPION, "wrong"), headers=h, content=b).status_code == 401
    assert server.post(_path(CHAMPION), headers=h, content=b).status_code == 401
    assert server.post(_path("gpu-1/other", token), headers=h, content=b).status_code == 404
    bad = [
        ({"Content-Type": "application/json"}, b"{}"),  # not a CloudEvent
        ({**h, "Ce-Type": "com.example.other"}, b),
        ({**h, "Ce-Specversion": "0.3"}, b),
        ({**h, "Ce-Time": "yesterday"}, b),
        ({**h, "Ce-Type": kl.RESPONSE}, b"{not json"),  # a response's figures are read
        ({"Content-Type": "application/cloudevents+json"}, b"[1, 2"),
    ]
    for headers, body in bad:
        answer = server.post(_path(CHAMPION, token), headers=headers, content=body)
        assert answer.status_code == 400, answer.text
        assert "Traceback" not in answer.text and answer.json()["error"]
    assert _rejected("auth") - before["auth"] == 2
    assert _rejected("unknown_member") - before["unknown_member"] == 1
    assert _rejected("malformed") - before["malformed"] == len(bad)
    assert _rows(core) == []
    metrics = server.get("/metrics").text
    assert 'modelarium_inference_events_rejected_total{reason="malformed"}' in metrics


def test_concurrent_posts_are_written_in_batches(runner, core, endpoints):
    _group(runner)
    group = core.groups.get("chat")
    events = InferenceEvents(core)
    batches: list[int] = []
    write = events.ingestor.write

    def counting(items):
        batches.append(sum(len(i.events) for i in items))
        return write(items)

    events.ingestor.write = counting
    t0 = core.clock.now().timestamp()
    futures = []
    lock = threading.Lock()

    def post(n: int) -> None:
        eid = uuid.uuid4().hex
        pair = (
            (kl.REQUEST, t0 + n, {"prompt": "p"}),
            (kl.RESPONSE, t0 + n + 0.2, kl.chat_response("m", "a", 1, 1)),
        )
        for kind, at, data in pair:
            h, b = kl.binary(kind, eid, at, data)
            parsed = parse({k.lower(): v for k, v in h.items()}, b)
            with lock:
                futures.append(events.ingestor.submit(group, CHAMPION, parsed, t0))

    threads = [threading.Thread(target=post, args=(n,)) for n in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for future in futures:
        future.result(timeout=30)
    events.close()
    assert len(_rows(core)) == 200
    assert sum(batches) == 400 and len(batches) < 200  # far fewer transactions than posts
