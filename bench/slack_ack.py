"""Slack ack latency: the real bot vs. a bolt app that only acks, served the same way.

Slack needs the HTTP answer within 3 s; we aim for p99 < 100 ms at 50 concurrent requests. This
script starts each server in its own process (as in production, "Slack" is another process):

* ``modelarium``: the real bot (``BotServer``: Starlette + bolt + the command pool, SQLite in a
  temp dir) answering ``/model help``;
* ``bolt-ack``: a bolt ``App`` whose only listener calls ``ack()``, behind the same
  ``slack_route`` (worker-thread dispatch, ``process_before_response=True``) and uvicorn;
* ``bolt-default`` (reference): the same trivial listener with bolt's default
  ``process_before_response=False``, which polls for the ack every 10 ms.

The parent process plays Slack: it hosts FakeSlack (Web API and response_urls), fires N signed
slash commands over C kept-alive connections, and measures ack latency (send -> HTTP answer) and,
for the bot, answer latency (send -> response_url POST). It prints p50/p95/p99 of each and the
bot/baseline ratio measured in the same run.

    python bench/slack_ack.py [--requests 1000] [--concurrency 50]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SECRET = "bench-signing-secret"


# -- server side (child process) ---------------------------------------------------------------
def serve(kind: str, api_url: str, token: str) -> None:
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
    from slack_bolt import Ack, App
    from slack_sdk import WebClient
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from modelarium.bot.slack.server import slack_route
    from modelarium.entrypoints.processes import freeze_startup_objects
    from modelarium.entrypoints.web import HttpServer

    if kind == "modelarium":
        from modelarium.config import Settings
        from modelarium.core.app import Core
        from modelarium.core.logging import configure_logging
        from modelarium.entrypoints.web import BotServer

        configure_logging("info", "json")  # production logging; stderr goes to /dev/null
        tmp = Path(tempfile.mkdtemp(prefix="slack-bench-"))
        settings = Settings(
            data_dir=tmp,
            database_url=f"sqlite:///{tmp / 'modelarium.db'}",
            slack_bot_token=token,
            slack_signing_secret=SECRET,
            slack_api_url=api_url,
            host="127.0.0.1",
            port=0,
        )  # type: ignore[call-arg]
        core = Core(settings)
        core.migrate()
        bot = BotServer(core, deliver_outbox=True)
        bot.start()
        port = bot.http.port
    else:
        app = App(
            signing_secret=SECRET,
            client=WebClient(token=token, base_url=api_url),
            process_before_response=kind == "bolt-ack",
        )

        @app.command("/model")
        def ack_only(ack: Ack) -> None:
            ack()

        def metrics(_request: Request) -> Response:
            return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

        starlette = Starlette(routes=[slack_route(app), Route("/metrics", metrics)])
        server = HttpServer(starlette, "127.0.0.1", 0)
        server.start()
        port = server.port
    freeze_startup_objects()  # as `modelarium bot` does, for every server measured
    print(f"PORT {port}", flush=True)
    sys.stdin.read()  # run until the parent closes our stdin


# -- Slack side (parent process) ---------------------------------------------------------------
def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {
        "p50": pick(0.50),
        "p95": pick(0.95),
        "p99": pick(0.99),
        "max": ordered[-1],
        "mean": statistics.fmean(ordered),
    }


def server_ack_mean(metrics: str) -> float | None:
    total = count = None
    for line in metrics.splitlines():
        if line.startswith("modelarium_slack_ack_seconds_sum"):
            total = float(line.split()[-1])
        elif line.startswith("modelarium_slack_ack_seconds_count"):
            count = float(line.split()[-1])
    return total / count if total is not None and count else None


async def _post(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, bool]:
    """One HTTP/1.1 exchange on a kept-alive connection: (status, connection still open)."""
    writer.write(request)
    await writer.drain()
    status = int((await reader.readline()).split()[1])
    length, keep = 0, True
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value)
        elif name.lower() == "connection" and value.strip().lower() == "close":
            keep = False
    await reader.readexactly(length)
    return status, keep


async def fire(
    port: int, requests: list[tuple[bytes, dict[str, str]]], concurrency: int
) -> tuple[list[float], list[float], float]:
    """(latencies, send timestamps, wall time) with ``concurrency`` kept-alive connections.

    A minimal asyncio HTTP/1.1 client: httpx's own overhead (a few ms per request at 50
    connections) would otherwise dominate what we measure.
    """
    latencies: list[float] = [0.0] * len(requests)
    sent: list[float] = [0.0] * len(requests)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(len(requests)):
        queue.put_nowait(index)

    def raw(body: bytes, headers: dict[str, str]) -> bytes:
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        return (
            f"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{head}"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while True:
                try:
                    index = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                request = raw(*requests[index])
                sent[index] = time.time()
                started = time.perf_counter()
                status, keep = await _post(reader, writer, request)
                latencies[index] = time.perf_counter() - started
                if status != 200:
                    raise RuntimeError(f"HTTP {status} from the server")
                if not keep:
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
        finally:
            writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, sent, time.perf_counter() - began


def run_one(kind: str, n: int, concurrency: int, warmup: int) -> dict[str, Any]:
    import httpx

    from tests.fakes.slack import FakeSlack, SlackRequestSigner

    with FakeSlack() as fake:
        child = subprocess.Popen(
            [sys.executable, __file__, "--serve", kind, fake.api_url, fake.token],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            assert child.stdout is not None
            line = child.stdout.readline()
            if not line.startswith("PORT "):
                raise RuntimeError(f"{kind} server did not start")
            port = int(line.split()[1])
            base = f"http://127.0.0.1:{port}"
            signer = SlackRequestSigner(SECRET)

            def build(count: int) -> tuple[list[Any], list[tuple[bytes, dict[str, str]]]]:
                inbound = [
                    fake.slash_command("/model", "help", user_id=f"U{i % 200:05d}")
                    for i in range(count)
                ]
                return inbound, [(c.body, signer.headers(c.body)) for c in inbound]

            _, warm = build(warmup)
            asyncio.run(fire(port, warm, concurrency))
            if kind == "modelarium":  # let the warm-up answers finish before measuring
                fake.wait_for(lambda: len(fake.responses()) >= warmup, timeout=60)
            inbound, measured = build(n)
            latencies, sent, wall = asyncio.run(fire(port, measured, concurrency))
            result: dict[str, Any] = {
                "kind": kind,
                "ack": percentiles(latencies),
                "throughput": n / wall,
            }
            if kind == "modelarium":
                fake.wait_for(lambda: len(fake.responses()) >= warmup + n, timeout=120)
                answered = {r.url: r.timestamp for r in fake.responses()}
                answers = [answered[c.response_url] - sent[i] for i, c in enumerate(inbound)]
                result["answer"] = percentiles(answers)
                result["answer_errors"] = sum(1 for r in fake.responses() if r.error)
            result["server_ack_mean"] = server_ack_mean(httpx.get(base + "/metrics").text)
            return result
        finally:
            if child.stdin:
                child.stdin.close()
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:7.1f}"


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve(*sys.argv[2:5])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--skip-default", action="store_true", help="skip the bolt-default run")
    args = parser.parse_args()

    kinds = ["bolt-ack", "modelarium"] + ([] if args.skip_default else ["bolt-default"])
    results = {k: run_one(k, args.requests, args.concurrency, args.warmup) for k in kinds}
    print(
        f"Slack ack latency: {args.requests} signed `/model help` commands, "
        f"{args.concurrency} concurrent, server in its own process (ms)"
    )
    print(f"{'server':<14}{'p50':>8}{'p95':>8}{'p99':>8}{'max':>8}{'srv mean':>10}{'req/s':>8}")
    for kind, r in results.items():
        a = r["ack"]
        print(
            f"{kind:<14}{ms(a['p50'])} {ms(a['p95'])} {ms(a['p99'])} {ms(a['max'])}"
            f"{ms(r['server_ack_mean']):>10}{r['throughput']:8.0f}"
        )
    bot, base = results["modelarium"], results["bolt-ack"]
    answer = bot["answer"]
    print(
        f"modelarium answer on response_url: p50 {ms(answer['p50']).strip()}  "
        f"p95 {ms(answer['p95']).strip()}  p99 {ms(answer['p99']).strip()}  "
        f"(errors: {bot['answer_errors']})"
    )
    for q in ("p50", "p99"):
        print(f"ratio modelarium/bolt-ack {q}: {bot['ack'][q] / base['ack'][q]:.2f}")
    target = bot["ack"]["p99"] < 0.100
    print(f"target p99 < 100 ms: {'met' if target else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
