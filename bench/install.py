"""Install throughput: Modelarium's verified install vs. ``huggingface_hub.snapshot_download``.

Both fetch the same generated multi-file model (a few GB of safetensors shards plus small files)
from the fake hub, each in its own process, the hub in a third one:

* ``modelarium``: ``/model install`` as a user runs it: plan (hub metadata), reserve, download
  with HTTP Range support, sha256 / git-sha1 of every byte while it streams, fsync, activation
  in the HF cache layout; one job run by ``WorkerPool.run_one`` on SQLite;
* ``snapshot_download``: the hub client's own download into a fresh cache (8 threads; it checks
  sizes but hashes nothing).

Runs alternate (modelarium, snapshot_download, ...) with the output deleted between runs; the
best run of each is compared. Goal: modelarium >= 0.9x snapshot_download's throughput.

    python bench/install.py [--gib 4] [--shards 4] [--rounds 2] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_DISABLE_XET", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

REPO = "bench/generated"
GiB = 1 << 30


# -- child processes ---------------------------------------------------------------------------
def serve(gib: float, shards: int) -> None:
    from tests.fakes.hf_hub import FakeHub

    hub = FakeHub().start()
    hub.add_generated_model(REPO, total_bytes=int(gib * GiB), shards=shards, seed="bench")
    total = sum(b.size for b in hub.repo(REPO).head.files.values())
    print(json.dumps({"url": hub.url, "bytes": total, "files": len(hub.repo(REPO).head.files)}))
    sys.stdout.flush()
    sys.stdin.read()  # until the parent closes our stdin
    hub.stop()


def run_modelarium(url: str, workdir: str) -> None:
    from modelarium.config import Settings
    from modelarium.core.app import Core
    from modelarium.core.jobs import WorkerPool
    from modelarium.core.logging import configure_logging

    configure_logging("warning", "console")
    settings = Settings(
        data_dir=Path(workdir),
        hf_endpoint=url,
        install_approval_threshold=1 << 50,
        admins=["bench"],
    )
    core = Core(settings)
    core.migrate()
    started = time.perf_counter()
    plan = core.weights.plan_install(REPO, None)
    request = core.weights.request_install(plan, "bench")
    assert request.job is not None
    view = WorkerPool(core.jobs, size=1).run_one()
    seconds = time.perf_counter() - started
    if view is None or view.status != "succeeded":
        raise SystemExit(f"install failed: {view and view.error}")
    print(json.dumps({"seconds": seconds, "bytes": plan.size}))


def run_snapshot(url: str, workdir: str) -> None:
    from huggingface_hub import snapshot_download

    started = time.perf_counter()
    path = snapshot_download(REPO, cache_dir=workdir, endpoint=url, token=False)
    seconds = time.perf_counter() - started
    size = sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())
    print(json.dumps({"seconds": seconds, "bytes": size}))


# -- the parent ----------------------------------------------------------------------------------
def _child(*args: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise SystemExit(f"{args[0]} failed:\n{out.stdout}\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gib", type=float, default=4.0, help="model size (GiB)")
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--dir", default=None, help="where to write (default: a temp dir)")
    args = parser.parse_args()

    hub = subprocess.Popen(
        [sys.executable, __file__, "_serve", str(args.gib), str(args.shards)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert hub.stdout is not None
    assert hub.stdin is not None
    info = json.loads(hub.stdout.readline())
    print(
        f"fake hub {info['url']}: {REPO}, {info['files']} files, "
        f"{info['bytes'] / GiB:.2f} GiB ({os.cpu_count()} CPUs)"
    )
    base = Path(tempfile.mkdtemp(prefix="install-bench-", dir=args.dir))
    results: dict[str, list[float]] = {"modelarium": [], "snapshot_download": []}
    try:
        for round_ in range(args.rounds):
            for name, kind in (("modelarium", "_ours"), ("snapshot_download", "_snapshot")):
                workdir = base / f"{name}-{round_}"
                result = _child(kind, info["url"], str(workdir))
                shutil.rmtree(workdir, ignore_errors=True)
                rate = result["bytes"] / result["seconds"]
                results[name].append(rate)
                print(
                    f"  round {round_ + 1}: {name:<18} {result['seconds']:6.2f} s  "
                    f"{rate / 1e6:8.1f} MB/s"
                )
    finally:
        hub.stdin.close()
        hub.wait(30)
        shutil.rmtree(base, ignore_errors=True)
    ours, theirs = max(results["modelarium"]), max(results["snapshot_download"])
    ours_mid = statistics.median(results["modelarium"])
    theirs_mid = statistics.median(results["snapshot_download"])
    print(
        f"modelarium (verified install): best {ours / 1e6:7.1f} MB/s, "
        f"median {ours_mid / 1e6:7.1f} MB/s"
    )
    print(
        f"snapshot_download:             best {theirs / 1e6:7.1f} MB/s, "
        f"median {theirs_mid / 1e6:7.1f} MB/s"
    )
    print(f"ratio: {ours / theirs:.2f}x best, {ours_mid / theirs_mid:.2f}x median (goal >= 0.90)")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_serve":
        serve(float(sys.argv[2]), int(sys.argv[3]))
    elif len(sys.argv) > 1 and sys.argv[1] == "_ours":
        run_modelarium(sys.argv[2], sys.argv[3])
    elif len(sys.argv) > 1 and sys.argv[1] == "_snapshot":
        run_snapshot(sys.argv[2], sys.argv[3])
    else:
        main()
