"""Model groups on PostgreSQL (issue 17): logger ingestion against a bare executemany, and
``group compare`` over 1,000,000 rows.

1. Ingest. ``--pairs`` request/response pairs as KServe's logger sends them (binary-mode
   CloudEvents, an OpenAI-compatible chat body and response with ``usage``), posted from
   ``--threads`` threads (default 1, like one event loop): each event is parsed and handed to
   the :class:`Ingestor`, which pairs requests with responses (looking up
   ``model_group_pending`` for partners from earlier batches) and writes batches to the group's
   table (COPY on PostgreSQL). Request bodies are not parsed while payloads are ``off``.
   Baseline, in the same run: a bare
   ``executemany`` of the same final rows into another group's table, as many rows per
   transaction as an ingest batch holds (a request and a response make one row).
   Goal: ingest at least half the baseline's rate (ratio >= 0.5). Start-up objects are frozen
   out of garbage collection first, as the bot process does once started.
2. Compare. ``--rows`` rows (two members, 1% and 2% errors, log-normal latencies) generated in
   SQL, then ``core.groups.compare`` timed: counts, errors, percentiles and token rates are SQL
   aggregates over every row; the tests use a random sample of at most 5,000 latencies per
   member. Reported with the row count.

    python bench/groups.py [--pairs 20000] [--threads 1] [--rounds 3] [--rows 1000000]
                           [--database-url postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from modelarium.config import Settings  # noqa: E402
from modelarium.core.app import Core  # noqa: E402
from modelarium.core.groups.ingest import Ingestor, parse  # noqa: E402
from modelarium.entrypoints.processes import freeze_startup_objects  # noqa: E402
from tests.fakes import kserve_logger as kl  # noqa: E402

MEMBER_A = "bench/model-a"
MEMBER_B = "bench/model-b"


def schema_url(base: str) -> tuple[str, str]:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    url = base.replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}", schema


def events(pairs: int, t0: float) -> list[tuple[dict[str, str], bytes]]:
    """The posts as the HTTP server hands them over (header names lower-cased, as Starlette's
    ``request.headers`` gives them)."""
    out = []
    for n in range(pairs):
        eid = f"{n:08d}-{uuid.uuid4().hex[:8]}"
        out.append(kl.binary(kl.REQUEST, eid, t0 + n * 0.001,
                             kl.chat_request("m", f"prompt number {n}")))  # fmt: skip
        out.append(kl.binary(kl.RESPONSE, eid, t0 + n * 0.001 + 0.2,
                             kl.chat_response("m", "an answer", 12, 40)))  # fmt: skip
    return [({k.lower(): v for k, v in h.items()}, b) for h, b in out]


def ingest_round(core: Core, a, b, pairs: int, threads: int) -> tuple[float, float, int]:
    """One round: (ingest seconds, bare executemany seconds, rows)."""
    t0 = time.time()
    posts = events(pairs, t0)
    ingestor = Ingestor(core.groups)
    chunks = [posts[i::threads] for i in range(threads)]
    futures = []
    lock = threading.Lock()

    def post(chunk: list[tuple[dict[str, str], bytes]]) -> None:
        for headers, body in chunk:
            parsed = parse(headers, body)
            future = ingestor.submit(a, MEMBER_A, parsed, t0)
            with lock:
                futures.append(future)

    started = time.perf_counter()
    workers = [threading.Thread(target=post, args=(c,)) for c in chunks]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    for f in futures:
        f.result(timeout=600)
    ingest_s = time.perf_counter() - started
    ingestor.close()
    table_a, table_b = core.groups.table(a), core.groups.table(b)
    with core.db.engine.begin() as connection:
        rows = [dict(r) for r in connection.execute(sa.select(table_a)).mappings()]
        connection.execute(table_a.delete())
        connection.execute(table_b.delete())
    for row in rows:
        row.pop("id")
    batch = ingestor.batch_size // 2  # rows per transaction: a batch of events is half as many rows
    started = time.perf_counter()
    for i in range(0, len(rows), batch):
        with core.db.engine.begin() as connection:
            connection.execute(table_b.insert(), rows[i : i + batch])
    bare_s = time.perf_counter() - started
    return ingest_s, bare_s, len(rows)


def bench_ingest(core: Core, pairs: int, threads: int, rounds: int) -> None:
    a, _ = core.groups.create("U_ADMIN", "ingest", MEMBER_A)
    b, _ = core.groups.create("U_ADMIN", "baseline", MEMBER_A)
    ingest_round(core, a, b, min(pairs, 500), threads)  # warm-up: connections, compiled SQL
    results = [ingest_round(core, a, b, pairs, threads) for _ in range(rounds)]
    with core.db.engine.connect() as connection:
        pending = connection.scalar(sa.text("select count(*) from model_group_pending"))
    rows = results[0][2]
    rate = rows / min(r[0] for r in results)
    bare = rows / min(r[1] for r in results)
    print(f"ingest: {2 * pairs:,} events -> {rows:,} rows per round ({pending} left pending): "
          f"best of {rounds} {rate:,.0f} rows/s (parse + pair + batched write, "
          f"{threads} posting thread(s))")  # fmt: skip
    print(f"bare executemany of the same rows: best of {rounds} {bare:,.0f} rows/s")
    verdict = "meets" if rate / bare >= 0.5 else "MISSES"
    print(f"ratio ingest/bare = {rate / bare:.2f} ({verdict} the goal >= 0.5)")


def bench_compare(core: Core, rows: int) -> None:
    group, _ = core.groups.create("U_ADMIN", "compare", MEMBER_A)
    members = [
        {"name": MEMBER_A, "role": "champion", "traffic": 90},
        {"name": MEMBER_B, "role": "challenger", "traffic": 10},
    ]
    core.groups.apply_members(
        "compare", members, revision=group.revision, status="running", action="bench",
        user=None, change_id=None,
    )  # fmt: skip
    table = group.table_name
    now = core.clock.now().timestamp()
    started = time.perf_counter()
    with core.db.engine.begin() as connection:
        connection.execute(sa.text(f"""
            insert into {table} (ts, member, source, ok, latency_ms, prompt_tokens,
                                 completion_tokens)
            select :now - (g % 86400),
                   case when g % 2 = 0 then :a else :b end,
                   'logger',
                   random() > case when g % 2 = 0 then 0.01 else 0.02 end,
                   exp(ln(case when g % 2 = 0 then 200 else 180 end) + 0.4 * (
                       sqrt(-2 * ln(greatest(random(), 1e-12))) * cos(2 * pi() * random()))),
                   30, 120
            from generate_series(1, :rows) as g
        """), {"now": now, "a": MEMBER_A, "b": MEMBER_B, "rows": rows})  # fmt: skip
        connection.execute(sa.text(f"analyze {table}"))
    fill_s = time.perf_counter() - started
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        comparison = core.groups.compare("compare")
        timings.append(time.perf_counter() - started)
    print(f"compare: {comparison.rows:,} rows (filled in {fill_s:.1f}s); "
          f"best of 3 {min(timings):.2f}s, median {sorted(timings)[1]:.2f}s")  # fmt: skip
    for m in comparison.members:
        print(f"  {m.member} ({m.role}): {m.requests:,} requests, {m.errors:,} errors, "
              f"p50/p95/p99 {m.p50:.0f}/{m.p95:.0f}/{m.p99:.0f} ms")  # fmt: skip
    for v in comparison.versus:
        print(f"  verdict: {v.verdict} — {v.words}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=20_000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    url, schema = schema_url(args.database_url)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), database_url=url, admins=["U_ADMIN"],
                            endpoint_allowlist=["127.0.0.0/8"])  # fmt: skip
        core = Core(settings)
        try:
            core.migrate()
            core.endpoints.add("U_ADMIN", "bench", "http://127.0.0.1:9", shared_with="everyone")
            freeze_startup_objects()  # as the bot process does once started (it ingests there)
            bench_ingest(core, args.pairs, args.threads, args.rounds)
            bench_compare(core, args.rows)
        finally:
            core.close()
            with psycopg.connect(args.database_url, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


if __name__ == "__main__":
    main()
