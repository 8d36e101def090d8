"""Slack ack latency under attack: signed commands beside oversized and malformed requests.

Anyone who can reach ``POST /slack/events`` can send it anything, signed or not; before issue 13 a
single 64 KB unsigned body delayed every ack by over 20 s. This benchmark runs the real bot
(``BotServer``, production JSON logging, SQLite in a temp dir) in its own process, twice, exactly
as ``bench/slack_ack.py`` does:

* ``quiet``: N signed ``/model help`` commands over C kept-alive connections;
* ``attack``: the same, while an attacker process (another machine, in production) keeps A
  connections busy with, in turn: a declared 100 MB body (413 at once), an endless chunked body
  (413 at the limit), 900 KB form bodies without a signature (401 before reading) and with a
  well-formed wrong one (401 after reading and one HMAC), a 200 KB body built to make
  backtracking regular expressions quadratic, and malformed requests (not UTF-8, superscript or
  empty timestamps, wrong signatures, broken ``payload``, truncated bodies).

It alternates the two ``--rounds`` times (a busy moment of a shared machine then hits both), and
prints each run's ack p50/p95/p99 and the server's CPU, what the attacker got (statuses,
requests/s, MB/s), and the ratio of the median p99s. Goal: at most 1.5x.

    python bench/attack_load.py [--requests 1000] [--concurrency 50] [--attackers 8]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from slack_ack import SECRET, fire, ms, percentiles  # noqa: E402

GOAL = 1.5
HUNDRED_MB = 100 * 1024 * 1024


# -- the attacker (its own process) ------------------------------------------------------------
def _head(port: int, headers: dict[str, str]) -> bytes:
    lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return (f"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{lines}\r\n").encode(
        "latin-1"
    )


def _attacks(port: int) -> list[tuple[str, bytes, bytes | None]]:
    """(name, request head + body, then endless chunks to stream until answered)."""
    now = str(int(time.time()))
    form = "application/x-www-form-urlencoded"
    big = b"token=x&command=%2Fmodel&text=" + b"a" * 900_000
    bomb = b"a://b:" * 35_000
    forged = {"Content-Type": form, "X-Slack-Request-Timestamp": now}
    # A fresh timestamp and a well-formed (wrong) signature: the server must read the body to
    # find out, as it would for Slack.
    plausible = {**forged, "X-Slack-Signature": "v0=" + "0" * 64}
    command = b"command=%2Fmodel&text=help"

    def plain(name: str, body: bytes, **headers: str) -> tuple[str, bytes, None]:
        merged = {**forged, **headers, "Content-Length": str(len(body))}
        return name, _head(port, merged) + body, None

    return [
        (
            "declared-100MB",
            _head(port, {**plausible, "Content-Length": str(HUNDRED_MB)}) + b"a" * 65536,
            None,
        ),
        (
            "chunked-endless",
            _head(port, {**plausible, "Transfer-Encoding": "chunked"}),
            b"10000\r\n" + b"a" * 65536 + b"\r\n",
        ),
        plain("unsigned-900KB", big),
        plain("forged-900KB", big, **plausible),
        plain("regex-bomb-200KB", bomb, **plausible),
        plain("not-utf8", b"\xff\xfe\xfd" * 1000),
        plain("superscript-ts", command, **{"X-Slack-Request-Timestamp": "¹²³"}),
        plain("empty-ts", command, **{"X-Slack-Request-Timestamp": ""}),
        plain("bad-signature", command, **{"X-Slack-Signature": "v0=00"}),
        plain("broken-payload", b"payload=%7B%22type%22%3A", **{"X-Slack-Signature": "v0=1"}),
        plain("json-null", b"null", **{"Content-Type": "application/json"}),
        (
            "truncated",
            _head(port, {**forged, "Content-Length": "5000"}) + b"text=short",
            None,
        ),
    ]


async def _attack_once(port: int, name: str, first: bytes, more: bytes | None) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(first)
        if name == "truncated":
            await writer.drain()
            writer.close()  # the client gives up mid-body
            return "closed"
        if more is not None:
            answer = asyncio.ensure_future(reader.readline())
            sent = 0
            while not answer.done() and sent < 8 * 1024 * 1024:
                writer.write(more)
                sent += len(more)
                try:
                    await asyncio.wait_for(writer.drain(), 1.0)
                except (TimeoutError, ConnectionError):
                    break
            status_line = await asyncio.wait_for(answer, 10)
        else:
            await writer.drain()
            status_line = await asyncio.wait_for(reader.readline(), 10)
        parts = status_line.split()
        return parts[1].decode() if len(parts) > 1 else "no answer"
    except (TimeoutError, ConnectionError, OSError):
        return "error"
    finally:
        writer.close()


async def _attack(port: int, workers: int, stop: asyncio.Event) -> dict[str, Any]:
    counts: collections.Counter[str] = collections.Counter()
    sent_bytes = 0
    attacks = _attacks(port)

    async def worker(offset: int) -> None:
        nonlocal sent_bytes, attacks
        i = offset
        while not stop.is_set():
            if i % len(attacks) == 0:
                attacks = _attacks(port)  # fresh timestamps
            name, first, more = attacks[i % len(attacks)]
            counts[f"{name} -> {await _attack_once(port, name, first, more)}"] += 1
            sent_bytes += len(first)
            i += 1

    began, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker(n) for n in range(workers)))
    elapsed = time.perf_counter() - began
    return {
        "counts": dict(counts),
        "seconds": elapsed,
        "requests": sum(counts.values()),
        "bytes": sent_bytes,
        "cpu": time.process_time() - cpu,
    }


def attacker_main(port: int, workers: int) -> None:
    """Attack until stdin closes, then print what happened as JSON."""

    async def main() -> dict[str, Any]:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not sys.stdin.read(1) else None)
        print("READY", flush=True)
        return await _attack(port, workers, stop)

    print(json.dumps(asyncio.run(main())), flush=True)


# -- the measured side (as slack_ack's run_one, with an optional attacker beside it) ------------
def run(with_attack: bool, n: int, concurrency: int, warmup: int, attackers: int) -> dict[str, Any]:
    from tests.fakes.slack import FakeSlack, SlackRequestSigner

    with FakeSlack() as fake:
        server = [sys.executable, str(ROOT / "bench" / "slack_ack.py"), "--serve", "modelarium"]
        child = subprocess.Popen(
            [*server, fake.api_url, fake.token],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        attacker = None
        try:
            assert child.stdout is not None
            line = child.stdout.readline()
            if not line.startswith("PORT "):
                raise RuntimeError("the bot did not start")
            port = int(line.split()[1])
            signer = SlackRequestSigner(SECRET)

            def build(count: int, offset: int) -> tuple[list[Any], list[tuple[bytes, dict]]]:
                inbound = [
                    fake.slash_command("/model", "help", user_id=f"U{(offset + i) % 200:05d}")
                    for i in range(count)
                ]
                return inbound, [(c.body, signer.headers(c.body)) for c in inbound]

            _, warm = build(warmup, 0)
            asyncio.run(fire(port, warm, concurrency))
            fake.wait_for(lambda: len(fake.responses()) >= warmup, timeout=60)
            if with_attack:
                attacker = subprocess.Popen(
                    [sys.executable, __file__, "--attacker", str(port), str(attackers)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
                assert attacker.stdout is not None
                if attacker.stdout.readline().strip() != "READY":
                    raise RuntimeError("the attacker did not start")
                time.sleep(1.0)  # let the attack reach full speed before measuring
            _, measured = build(n, warmup)
            cpu = _cpu_seconds(child.pid)
            latencies, _sent, wall = asyncio.run(fire(port, measured, concurrency))
            result: dict[str, Any] = {
                "ack": percentiles(latencies),
                "throughput": n / wall,
                "wall": wall,
                "server_cpu": _cpu_seconds(child.pid) - cpu,
            }
            if attacker is not None:
                assert attacker.stdin is not None
                assert attacker.stdout is not None
                attacker.stdin.close()
                result["attack"] = json.loads(attacker.stdout.readline())
                attacker.wait(30)
                attacker = None
            fake.wait_for(lambda: len(fake.responses()) >= warmup + n, timeout=120)
            result["answer_errors"] = sum(1 for r in fake.responses() if r.error)
            return result
        finally:
            if attacker is not None:
                attacker.kill()
            if child.stdin:
                child.stdin.close()
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--attacker":
        attacker_main(int(sys.argv[2]), int(sys.argv[3]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--attackers", type=int, default=8, help="attacker connections")
    parser.add_argument("--rounds", type=int, default=2, help="quiet/attack pairs")
    args = parser.parse_args()

    runs: list[tuple[str, dict[str, Any]]] = []
    for _ in range(args.rounds):  # alternated, so a busy moment of the machine hits both
        runs.append(("quiet", run(False, args.requests, args.concurrency, args.warmup, 0)))
        runs.append(
            ("attack", run(True, args.requests, args.concurrency, args.warmup, args.attackers))
        )
    load = os.getloadavg()[0]
    print(
        f"Slack ack latency of {args.requests} signed `/model help` commands, "
        f"{args.concurrency} concurrent, with and without {args.attackers} attacker "
        f"connections, {args.rounds} round(s) ({os.cpu_count()} CPUs, load average {load:.1f}; ms)"
    )
    print(f"{'run':<8}{'p50':>8}{'p95':>8}{'p99':>8}{'max':>8}{'req/s':>8}{'server CPU':>12}")
    for name, r in runs:
        a = r["ack"]
        share = r["server_cpu"] / r["wall"] if r["wall"] else 0.0
        print(
            f"{name:<8}{ms(a['p50'])} {ms(a['p95'])} {ms(a['p99'])} {ms(a['max'])}"
            f"{r['throughput']:8.0f}{share:11.0%}"
        )
    quiet_runs = [r for name, r in runs if name == "quiet"]
    attacked_runs = [r for name, r in runs if name == "attack"]
    attacked = attacked_runs[-1]
    attack = attacked["attack"]  # what the attacker did in the last attacked run
    rate = attack["requests"] / attack["seconds"] if attack["seconds"] else 0.0
    print(
        f"attacker: {attack['requests']} requests in {attack['seconds']:.1f}s ({rate:.0f}/s, "
        f"{attack['bytes'] / attack['seconds'] / 1e6:.0f} MB/s sent, its own CPU "
        f"{attack['cpu'] / attack['seconds']:.0%}):"
    )
    for outcome, count in sorted(attack["counts"].items()):
        print(f"  {count:6d}  {outcome}")
    errors = sum(r["answer_errors"] for _name, r in runs)
    print(f"signed commands answered on their response_url: all (errors: {errors})")
    quiet_p99 = statistics.median(r["ack"]["p99"] for r in quiet_runs)
    attack_p99 = statistics.median(r["ack"]["p99"] for r in attacked_runs)
    print(f"median p99: quiet {ms(quiet_p99).strip()} ms, attack {ms(attack_p99).strip()} ms")
    ratio = attack_p99 / quiet_p99
    verdict = "met" if ratio <= GOAL else "NOT met"
    print(f"ratio attack/quiet p99: {ratio:.2f} (goal <= {GOAL}: {verdict})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
