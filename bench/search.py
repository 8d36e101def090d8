"""`/model search` with a warm cache vs. the Hugging Face call the cache saves, in one run.

Both sides run in this process against the same fake Hub (tests/fakes/hf_hub.py, real
``huggingface_hub`` client over HTTP on localhost):

* ``hub call``: ``HfApi.list_models(...)`` with exactly the parameters ``/model search`` sends
  (``limit=100``, the ``expand`` fields it needs): what a search costs without the cache;
* ``search (warm)``: the whole command through ``CommandRunner`` (parse, cache read from the
  database, local filters, vLLM lookups, pagination, card) answered from a fresh cache entry;
* ``search (cold)``: the same command on a cache miss, for reference.

The fake Hub answers from memory on localhost, so ``hub call`` is a floor: the real Hub adds a
WAN round trip (``--hub-latency`` adds a fixed delay per request to model it). It prints p50/p95
of each and the hub/warm ratio.

    python bench/search.py [--iterations 300] [--models 100] [--hub-latency 0]
        [--database-url postgresql://...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_DISABLE_XET", "1")
os.environ.setdefault("HF_HOME", tempfile.mkdtemp(prefix="bench-hf-"))


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered), p95


def _time(fn: Callable[[], object], n: int) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--models", type=int, default=100, help="models in the result list")
    parser.add_argument("--hub-latency", type=float, default=0.0, help="seconds per Hub request")
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temp dir")
    args = parser.parse_args()

    from huggingface_hub import HfApi

    from modelarium.bot.dispatch import CommandRunner
    from modelarium.config import Settings
    from modelarium.core.app import Core
    from modelarium.core.hub import SearchQuery
    from modelarium.core.hub.search import EXPAND
    from modelarium.core.logging import configure_logging
    from tests.fakes.hf_hub import FakeHub
    from tests.unit.discovery.hubdata import populate

    configure_logging("warning", "json")
    with FakeHub() as hub:
        populate(hub, fillers=max(0, args.models - 8))
        if args.hub_latency:
            hub.delay(args.hub_latency)
        tmp = Path(tempfile.mkdtemp(prefix="bench-search-"))
        settings = Settings(
            data_dir=tmp,
            database_url=args.database_url,
            hf_endpoint=hub.url,
            hub_timeout=30,
        )  # type: ignore[call-arg]
        core = Core(settings)
        core.migrate()
        runner = CommandRunner(core)
        text = "search --license apache-2.0"
        params = SearchQuery(license="apache-2.0").hub_params()
        api = HfApi(endpoint=hub.url, token=False)

        def hub_call() -> None:
            found = list(api.list_models(expand=EXPAND, **params))  # type: ignore[arg-type]
            assert found

        def warm() -> None:
            reply = runner.execute(text, user="bench")
            assert reply.ok, reply.text
            assert reply.data["cached"], "a warm search must not ask the Hub"

        cold_counter = iter(range(10**9))

        def cold() -> None:
            # A distinct Hub query each time (sort/text variants): always a cache miss.
            n = next(cold_counter)
            reply = runner.execute(
                f"search --license apache-2.0 --max-params {n + 1000}B", user="bench"
            )
            assert reply.ok, reply.text
            assert not reply.data["cached"], "a cold search must ask the Hub"

        # Warm-up: connection pools, imports, the first cache entry.
        for _ in range(5):
            hub_call()
        runner.execute(text, user="bench")
        for _ in range(5):
            warm()

        rounds = 3
        hub_samples: list[float] = []
        warm_samples: list[float] = []
        for _ in range(rounds):  # interleave so drift hits both sides alike
            hub_samples += _time(hub_call, args.iterations // rounds)
            warm_samples += _time(warm, args.iterations // rounds)
        cold_samples = _time(cold, max(10, args.iterations // 10))
        results = hub.requests_to("/api/models", "GET")
        core.hub.wait_idle(30)
        core.close()

    rows = [
        ("hub call (what the cache saves)", hub_samples),
        ("/model search, warm cache", warm_samples),
        ("/model search, cold (cache miss)", cold_samples),
    ]
    backend = "PostgreSQL" if args.database_url else "SQLite"
    print(
        f"/model search ({args.models} models listed, {backend}, "
        f"hub latency {args.hub_latency * 1000:.0f} ms, {args.iterations} iterations)"
    )
    print(f"{'':36} {'p50 ms':>9} {'p95 ms':>9}")
    for label, samples in rows:
        p50, p95 = _percentiles(samples)
        print(f"{label:36} {p50:9.2f} {p95:9.2f}")
    hub_p50 = _percentiles(hub_samples)[0]
    warm_p50 = _percentiles(warm_samples)[0]
    print(f"ratio hub call / warm search (p50): {hub_p50 / warm_p50:.1f}x")
    print(f"Hub list requests in the run: {len(results)} (warm searches made none)")


if __name__ == "__main__":
    main()
