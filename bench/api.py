"""HTTP API latency: ``POST /api/v1/commands`` for a read command vs. a bare Starlette floor.

Each server runs in its own process (as in production, the client is another machine), one
after the other, served the same way (``HttpServer``: uvicorn in a thread):

* ``modelarium``: the bot's port (``BotServer``: Slack front + the API mounted in Starlette,
  SQLite in a temp dir, or ``--database-url``), a token with the ``read`` scope, the rate limit
  off; each request authenticates the token (one indexed read), runs the command through the
  ``CommandRunner`` (role check, handler, audit rules, metrics) and answers the envelope;
* ``starlette-floor``: a Starlette app whose one POST route reads the JSON body and answers a
  constant envelope of the same shape: what any Python HTTP service pays on this machine.

The parent fires N requests over C kept-alive connections with a minimal asyncio HTTP/1.1
client (httpx's own cost at 50 connections would blur what we measure) and prints p50/p95/p99,
throughput and the modelarium/floor ratios, both measured in the same run.

Both servers are up at once and the rounds alternate between them, so the swings of a shared
machine's load fall on both; each figure is the median over the rounds.

    python bench/api.py [--requests 2000] [--concurrency 50] [--rounds 5] [--command jobs]
                        [--database-url postgresql://...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from slack_ack import ms, percentiles  # noqa: E402

SECRET = "bench-signing-secret"
USER = "U0BENCH"


# -- server side (child process) ---------------------------------------------------------------
def serve(kind: str, api_url: str, slack_token: str, database_url: str) -> None:
    from modelarium.entrypoints.web import HttpServer

    token = ""
    if kind == "modelarium":
        from modelarium.bot.dispatch import CommandRunner
        from modelarium.config import Settings
        from modelarium.core.app import Core
        from modelarium.core.logging import configure_logging
        from modelarium.entrypoints.web import BotServer

        configure_logging("info", "json")  # production logging; stderr goes to /dev/null
        tmp = Path(tempfile.mkdtemp(prefix="api-bench-"))
        settings = Settings(
            data_dir=tmp,
            database_url=database_url or f"sqlite:///{tmp / 'modelarium.db'}",
            slack_bot_token=slack_token,
            slack_signing_secret=SECRET,
            slack_api_url=api_url,
            host="127.0.0.1",
            port=0,
            admins=[USER],
            api_rate_limit=0,
        )  # type: ignore[call-arg]
        core = Core(settings)
        core.migrate()
        token = (
            CommandRunner(core).execute("token create bench --scope read", user=USER).data["token"]
        )
        bot = BotServer(core, deliver_outbox=False)
        bot.start()
        port = bot.http.port
    else:
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import JSONResponse
        from starlette.routing import Route

        async def commands(request: Request) -> JSONResponse:
            body = await request.json()
            return JSONResponse({"ok": True, "text": str(body.get("text", "")), "data": {}})

        server = HttpServer(
            Starlette(routes=[Route("/api/v1/commands", commands, methods=["POST"])]),
            "127.0.0.1",
            0,
        )
        server.start()
        port = server.port
    print(f"PORT {port} {token}", flush=True)
    sys.stdin.read()  # run until the parent closes our stdin


# -- client side (parent process) --------------------------------------------------------------
async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, bytes, bool]:
    """One HTTP/1.1 exchange on a kept-alive connection: (status, body, still open)."""
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
    return status, await reader.readexactly(length), keep


async def fire(
    port: int, token: str, text: str, n: int, concurrency: int
) -> tuple[list[float], float]:
    body = json.dumps({"text": text}).encode()
    request = (
        f"POST /api/v1/commands HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    latencies: list[float] = []
    remaining = n

    async def worker() -> None:
        nonlocal remaining
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                status, answer, keep = await _exchange(reader, writer, request)
                latencies.append(time.perf_counter() - started)
                if status != 200 or not json.loads(answer)["ok"]:
                    raise RuntimeError(f"HTTP {status}: {answer[:200]!r}")
                if not keep:
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
        finally:
            writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, time.perf_counter() - began


class Server:
    """A server in its own process, started before and stopped after every round."""

    def __init__(self, kind: str, slack_url: str, slack_token: str, database_url: str) -> None:
        self.kind = kind
        self.child = subprocess.Popen(
            [sys.executable, __file__, "--serve", kind, slack_url, slack_token, database_url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.child.stdout is not None
        line = self.child.stdout.readline().split()
        if not line or line[0] != "PORT":
            self.stop()
            raise RuntimeError(f"{kind} server did not start")
        self.port, self.token = int(line[1]), (line[2] if len(line) > 2 else "")

    def stop(self) -> None:
        if self.child.stdin:
            self.child.stdin.close()
        try:
            self.child.wait(10)
        except subprocess.TimeoutExpired:
            self.child.kill()


def run(
    text: str, n: int, concurrency: int, warmup: int, rounds: int, database_url: str
) -> dict[str, dict[str, Any]]:
    """Both servers up at once; rounds alternate between them, so a swing in the machine's load
    (it is shared) falls on both. Per kind: the median of each round's percentiles."""
    from tests.fakes.slack import FakeSlack

    kinds = ("starlette-floor", "modelarium")
    per_round: dict[str, list[dict[str, float]]] = {k: [] for k in kinds}
    with FakeSlack() as fake:
        servers = [Server(k, fake.api_url, fake.token, database_url) for k in kinds]
        try:
            for server in servers:
                asyncio.run(fire(server.port, server.token, text, warmup, concurrency))
            for _ in range(rounds):
                for server in servers:
                    latencies, wall = asyncio.run(
                        fire(server.port, server.token, text, n // rounds, concurrency)
                    )
                    figures = percentiles(latencies)
                    figures["throughput"] = len(latencies) / wall
                    per_round[server.kind].append(figures)
        finally:
            for server in servers:
                server.stop()
    return {
        kind: {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        for kind, runs in per_round.items()
    }


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve(*sys.argv[2:6])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--command", default="jobs", help="the read command to run")
    parser.add_argument(
        "--database-url", default="", help="a PostgreSQL URL (an empty database); default SQLite"
    )
    args = parser.parse_args()

    load = os.getloadavg()[0]
    results = run(
        args.command, args.requests, args.concurrency, args.warmup, args.rounds, args.database_url
    )
    store = "PostgreSQL" if args.database_url.startswith("postgres") else "SQLite"
    print(
        f"POST /api/v1/commands `{args.command}`: {args.requests} requests in {args.rounds} "
        f"alternating rounds, {args.concurrency} concurrent, each server in its own process, "
        f"{store}; {os.cpu_count()} CPUs, load average {load:.1f} -> {os.getloadavg()[0]:.1f} "
        "(ms; medians of the rounds)"
    )
    print(f"{'server':<17}{'p50':>8}{'p95':>8}{'p99':>8}{'max':>8}{'req/s':>8}")
    for kind, r in results.items():
        print(
            f"{kind:<17}{ms(r['p50'])} {ms(r['p95'])} {ms(r['p99'])} {ms(r['max'])}"
            f"{r['throughput']:8.0f}"
        )
    api, floor = results["modelarium"], results["starlette-floor"]
    for q in ("p50", "p99"):
        print(f"ratio modelarium/floor {q}: {api[q] / floor[q]:.2f}")
    print(f"ratio floor/modelarium throughput: {floor['throughput'] / api['throughput']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
