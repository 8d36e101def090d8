"""Health-check cycle: 1,000 endpoints, 10% of them hanging, against twice the per-check timeout.

The goal (issue #7): one cycle over every active endpoint finishes within ``2 x health_timeout``
on this machine, while a tenth of the endpoints never answer. The baseline is that bound, so the
ratio printed is ``cycle time / (2 x timeout)``; under 1.0 meets the goal.

Setup, not measured: :class:`tests.fakes.ollama.FakeEndpointFarm` runs in another process (as a
real fleet would be other machines) with N virtual endpoints on one port (80% Ollama, 20%
OpenAI-compatible with a Bearer key), every 10th one set to ``hanging``. They are registered in a
fresh SQLite database (or ``--database-url``) with ``endpoint import``, and keys set encrypted.

Measured: what the daemon's ``health_checks`` task runs, ``core.endpoints.check_all()`` (read
and decrypt, probe concurrently with ``--concurrency`` workers, each check bounded by
``--timeout``, write statuses and history) and the alert engine's evaluation of its observations.
Cycle 1 is cold (nothing known yet, so hanging endpoints are met wherever they are in the list);
later cycles check suspects first. A cold cycle costs about (healthy work x 0.9) + timeout, a warm
one about max(healthy work, timeout): the machine's load shows in the first.

    python bench/health.py [--endpoints 1000] [--hanging 0.1] [--timeout 5] [--cycles 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

KEY = "sk-bench-0123456789abcdef"


def start_farm() -> tuple[subprocess.Popen[str], str]:
    farm = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.ollama"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert farm.stdout is not None
    url = farm.stdout.readline().strip()
    if not url.startswith("http"):
        farm.kill()
        raise SystemExit("the endpoint farm did not start")
    return farm, url


def populate(url: str, count: int, hanging: float) -> tuple[list[dict], set[str]]:
    import httpx

    openai = count // 5
    models = ["llama3.2", "qwen3:0.6b"]
    with httpx.Client(base_url=url, timeout=30) as client:
        added = client.post(
            "/_farm/add", json={"kind": "ollama", "count": count - openai, "models": models}
        )
        added.raise_for_status()
        endpoints = added.json()["endpoints"]
        if openai:
            more = client.post(
                "/_farm/add",
                json={"kind": "openai", "count": openai, "models": models, "api_key": KEY},
            )
            more.raise_for_status()
            endpoints += more.json()["endpoints"]
        step = round(1 / hanging) if hanging > 0 else 0
        hung = set()
        for endpoint in endpoints:
            if step and endpoint["index"] % step == step - 1:
                client.put(f"/_farm/e/{endpoint['index']}", json={"mode": "hanging"})
                hung.add(f"e{endpoint['index']}")
    return endpoints, hung


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoints", type=int, default=1000)
    parser.add_argument("--hanging", type=float, default=0.1, help="fraction that never answers")
    parser.add_argument("--timeout", type=float, default=5.0, help="health_timeout (seconds)")
    parser.add_argument("--concurrency", type=int, default=None, help="default: the setting")
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    from modelarium.config import Settings
    from modelarium.core.app import Core
    from modelarium.core.endpoints import DOWN_RULE
    from modelarium.core.logging import configure_logging

    configure_logging("warning", "console", stream=open(os.devnull, "w"))  # noqa: SIM115
    tmp = Path(tempfile.mkdtemp(prefix="health-bench-"))
    overrides: dict[str, object] = {"health_timeout": args.timeout}
    if args.concurrency:
        overrides["health_concurrency"] = args.concurrency
    settings = Settings(
        data_dir=tmp,
        database_url=args.database_url or f"sqlite:///{tmp / 'bench.db'}",
        admins=["U_BENCH"],
        endpoint_allowlist=["127.0.0.0/8"],  # the farm listens on loopback
        **overrides,  # type: ignore[arg-type]
    )
    farm, url = start_farm()
    try:
        endpoints, hung = populate(url, args.endpoints, args.hanging)
        core = Core(settings)
        core.migrate()
        document = {
            "endpoints": [
                {
                    "name": f"e{e['index']}",
                    "base_url": e["url"],
                    "type": "ollama" if e["kind"] == "ollama" else "openai-compatible",
                    "shared_with": "everyone",
                }
                for e in endpoints
            ]
        }
        core.endpoints.import_endpoints("U_BENCH", document)
        for e in endpoints:
            if e["kind"] == "openai":
                core.endpoints.edit("U_BENCH", f"e{e['index']}", api_key=KEY)

        bound = 2 * settings.health_timeout
        print(
            f"{len(endpoints)} endpoints ({len(hung)} hanging), "
            f"timeout {settings.health_timeout:g}s, concurrency {settings.health_concurrency}, "
            f"{os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.1f}, "
            f"Python {platform.python_version()}, {core.db.dialect}"
        )
        print(f"bound: 2 x timeout = {bound:.2f} s")
        for cycle in range(1, args.cycles + 1):
            before = resource.getrusage(resource.RUSAGE_SELF)
            started = time.perf_counter()
            report = core.endpoints.check_all()
            # what the daemon's task does next: hand the observations to the alert engine
            core.alerts.evaluate(DOWN_RULE, report.observations)
            elapsed = time.perf_counter() - started
            after = resource.getrusage(resource.RUSAGE_SELF)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            failed = {e.name for e in core.endpoints.list("U_BENCH") if e.last_error is not None}
            correct = (
                "exactly the hanging ones failed"
                if failed == hung
                else (
                    f"MISMATCH: {len(failed - hung)} healthy failed, "
                    f"{len(hung - failed)} hanging passed"
                )
            )
            label = "cold" if cycle == 1 else "warm"
            print(
                f"cycle {cycle} ({label}): {elapsed:.2f} s  (probes {report.probe_seconds:.2f} s, "
                f"database + alerts {elapsed - report.probe_seconds:.2f} s, CPU {cpu:.2f} s)  "
                f"bound {bound:.2f} s  ratio {elapsed / bound:.2f}  "
                f"{report.ok} ok / {report.failed} failed: {correct}"
            )
        core.close()
    finally:
        farm.kill()
        farm.wait()


if __name__ == "__main__":
    main()
