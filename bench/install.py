"""Install throughput: Modelarium's verified install vs. ``huggingface_hub.snapshot_download``.

Each shape is served by its own fake hub process; the contenders fetch it, each in its own
process, from the same hub in the same run:

* ``modelarium``: ``/model install`` as a user runs it: plan (hub metadata), reserve, download
  with HTTP Range support, sha256 / git-sha1 of every byte while it streams, fsync, activation
  in the HF cache layout; one job run by ``WorkerPool.run_one`` on SQLite;
* ``baseline`` (with ``--baseline DIR``): the same, with the ``modelarium`` package of another
  source tree (e.g. ``git archive main``), so "before" and "after" are measured back to back;
* ``snapshot_download``: the hub client's own download into a fresh cache (8 threads; it checks
  sizes but hashes nothing).

The order of the contenders rotates every round, output is deleted between runs, and the median
of the rounds is compared (goal: modelarium >= 0.9x snapshot_download for every shape; on the
``net`` shape, whose hub shares one 100 MB/s link between all transfers, within 3% of the link).
Each run also reports the CPU seconds its process used per GiB, and the load average, because
the machine may be shared.

    python bench/install.py [--shapes 8x512,4x512,1x2048,small200,net] [--scale 1]
        [--rounds 3] [--baseline DIR] [--dir /tmp] [--profile]

``--scale 0.1`` makes every file ten times smaller for a quick run. ``--profile`` runs one
modelarium install per shape under py-spy (``pip install py-spy``) instead and prints where its
CPU time goes per GiB.
"""

from __future__ import annotations

import argparse
import json
import linecache
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# A baseline child imports ``modelarium`` from another tree (ahead of the editable install).
sys.path.insert(0, str(ROOT))
if os.environ.get("BENCH_CODE"):
    sys.path.insert(0, os.environ["BENCH_CODE"])
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_DISABLE_XET", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

MiB = 1 << 20
GiB = 1 << 30
LINK = 100e6  # bytes/s of the "net" shape's link
SHAPES: dict[str, dict[str, float]] = {
    # shards x MiB each; "small": that many small (non-LFS, git-sha1) files instead
    "8x512": {"shards": 8, "mib": 512},
    "4x512": {"shards": 4, "mib": 512},
    "1x2048": {"shards": 1, "mib": 2048},
    "small200": {"small": 200},
    "net": {"shards": 4, "mib": 512, "link": LINK},
}


# -- child processes ---------------------------------------------------------------------------
def serve(shape: str, scale: float) -> None:
    from tests.fakes.hf_hub import FakeHub, random_content

    spec = SHAPES[shape]
    hub = FakeHub().start()
    repo = f"bench/{shape}"
    if "small" in spec:
        # 64 KiB .. 1 MiB (x scale), below the LFS threshold: served by the hub, git-sha1.
        files = {
            f"data/part-{i:03d}.bin": random_content(
                max(1, int((i % 16 + 1) * 64 * 1024 * scale)), seed=i
            )
            for i in range(int(spec["small"]))
        }
        hub.add_model(repo, files)
    else:
        shards = int(spec["shards"])
        size = int(spec["mib"] * MiB * scale)
        hub.add_generated_model(repo, total_bytes=shards * size, shards=shards, seed="bench")
    if spec.get("link"):
        hub.limit_link(spec["link"])
    files = hub.repo(repo).head.files
    info = {"url": hub.url, "repo": repo, "bytes": sum(b.size for b in files.values())}
    print(json.dumps(info | {"files": len(files)}))
    sys.stdout.flush()
    sys.stdin.read()  # until the parent closes our stdin
    hub.stop()


def run_modelarium(url: str, workdir: str, repo: str) -> None:
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
    cpu = time.process_time()
    started = time.perf_counter()
    plan = core.weights.plan_install(repo, None)
    request = core.weights.request_install(plan, "bench")
    assert request.job is not None
    view = WorkerPool(core.jobs, size=1).run_one()
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu
    if view is None or view.status != "succeeded":
        raise SystemExit(f"install failed: {view and view.error}")
    print(json.dumps({"seconds": seconds, "cpu": cpu, "bytes": plan.size}))


def run_snapshot(url: str, workdir: str, repo: str) -> None:
    from huggingface_hub import snapshot_download

    cpu = time.process_time()
    started = time.perf_counter()
    path = snapshot_download(repo, cache_dir=workdir, endpoint=url, token=False)
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu
    size = sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())
    print(json.dumps({"seconds": seconds, "cpu": cpu, "bytes": size}))


# -- the parent ----------------------------------------------------------------------------------
def _child(args: list[str], env: dict[str, str] | None = None, prefix: list[str] = ()) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        [*prefix, sys.executable, __file__, *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        raise SystemExit(f"{args[0]} failed:\n{out.stdout}\n{out.stderr}")
    # The last JSON line (py-spy, when it wraps the child, writes lines of its own).
    result: dict = json.loads([x for x in out.stdout.splitlines() if x.startswith("{")][-1])
    # CPU of the timed part (the child's own figure); the whole process's, start-up included.
    result["process_cpu"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return result


class Hub:
    def __init__(self, shape: str, scale: float) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "_serve", shape, str(scale)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.info = json.loads(self.proc.stdout.readline())

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(60)


def _load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def bench_shape(shape: str, args: argparse.Namespace, base: Path) -> dict[str, float]:
    hub = Hub(shape, args.scale)
    info = hub.info
    contenders: list[tuple[str, str, dict[str, str]]] = [("modelarium", "_ours", {})]
    if args.baseline:
        contenders.append(("baseline", "_ours", {"BENCH_CODE": args.baseline}))
    contenders.append(("snapshot_download", "_snapshot", {}))
    print(
        f"\n== {shape}: {info['files']} files, {info['bytes'] / GiB:.2f} GiB"
        + (f", link {LINK / 1e6:.0f} MB/s" if SHAPES[shape].get("link") else "")
        + f" (load {_load()})"
    )
    rates: dict[str, list[float]] = {name: [] for name, _, _ in contenders}
    cpus: dict[str, list[float]] = {name: [] for name, _, _ in contenders}
    try:
        for round_ in range(args.rounds):
            shift = round_ % len(contenders)
            for name, kind, env in contenders[shift:] + contenders[:shift]:
                workdir = base / f"{shape}-{name}-{round_}"
                result = _child([kind, info["url"], str(workdir), info["repo"]], env)
                shutil.rmtree(workdir, ignore_errors=True)
                rate = result["bytes"] / result["seconds"]
                rates[name].append(rate)
                cpus[name].append(result["cpu"] / (result["bytes"] / GiB))
                print(
                    f"  round {round_ + 1}: {name:<18} {result['seconds']:7.2f} s "
                    f"{rate / 1e6:8.1f} MB/s  cpu {result['cpu'] / (result['bytes'] / GiB):5.2f}"
                    f" s/GiB  (load {_load()})"
                )
    finally:
        hub.stop()
    medians = {name: statistics.median(values) for name, values in rates.items()}
    cpu = {name: statistics.median(values) for name, values in cpus.items()}
    theirs = medians["snapshot_download"]
    summary = {}
    for name, value in medians.items():
        if name == "snapshot_download":
            continue
        summary[name] = value / theirs
        line = (
            f"  {name}: median {value / 1e6:.1f} MB/s = {value / theirs:.2f}x snapshot_download"
            f"; CPU {cpu[name]:.2f} s/GiB = {cpu[name] / cpu['snapshot_download']:.2f}x its"
        )
        if SHAPES[shape].get("link"):
            line += f", {value / LINK:.1%} of the link"
        print(line)
    print(
        f"  snapshot_download: median {theirs / 1e6:.1f} MB/s, "
        f"CPU {cpu['snapshot_download']:.2f} s/GiB"
    )
    return summary


# -- profile -------------------------------------------------------------------------------------
CATEGORIES = (
    "start-up (imports, migrations, plan)",
    "HTTP read (httpx/httpcore/h11/socket)",
    "sha256/sha1 of streamed bytes",
    "file write",
    "re-hash on resume / check of existing blob",
    "fsync",
    "preallocate",
    "progress / checkpoint / DB",
    "download loop bookkeeping (Python)",
    "thread-pool / other",
)


IDLE = ("Event.wait", "Condition.wait", "sleep", "SimpleQueue.get", "select")
HTTP = ("httpx/", "httpcore/", "h11/", "socket.py", "ssl.py")
DB = ("sqlalchemy/", "sqlite3/", "psycopg", "core/jobs/", "core/changes/")


def _classify(frames: list[str], code: Path) -> str | None:
    """The category of one py-spy stack (root first), by its innermost recognised frame; None
    for a thread that only waits (py-spy's idle detection misses some)."""
    leaf = frames[-1] if frames else ""
    if any(leaf.startswith(w) for w in IDLE) or "concurrent/futures/thread.py:81)" in leaf:
        return None
    if any(
        "_find_and_load" in f or "Core.migrate" in f or "plan_install" in f or "Core.__init__" in f
        for f in frames
    ):
        return CATEGORIES[0]
    for frame in reversed(frames):
        name, _, where = frame.rpartition(" (")
        path, _, line = where.rstrip(")").rpartition(":")
        if any(p in path for p in HTTP):
            return CATEGORIES[1]
        if any(p in path for p in DB):
            return CATEGORIES[7]
        if path.endswith("weights/download.py"):
            source = path if os.path.isabs(path) else str(code / path)
            text = linecache.getline(source, int(line)) if line.isdigit() else ""
            short = name.rpartition(".")[2]
            if short in ("_resume", "_hash_stream", "_present", "hash_file"):
                return CATEGORIES[4]
            if "fsync" in text:
                return CATEGORIES[5]
            if "fallocate" in text:
                return CATEGORIES[6]
            if "update" in text or "hash" in text:
                return CATEGORIES[2]
            if "write" in text:
                return CATEGORIES[3]
            if short in ("_stream", "_fetch", "_pump", "add", "_write"):
                return CATEGORIES[8]
        if path.endswith("weights/install.py") and name.rpartition(".")[2] in ("tick", "finished"):
            return CATEGORIES[7]
    return CATEGORIES[9]


def profile_shape(shape: str, args: argparse.Namespace, base: Path, env: dict[str, str]) -> None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    hub = Hub(shape, args.scale)
    info = hub.info
    raw = base / f"{shape}.pyspy"
    rate = 200
    try:
        result = _child(
            ["_ours", info["url"], str(base / f"{shape}-profile"), info["repo"]],
            env,
            prefix=[spy, "record", "-r", str(rate), "-f", "raw", "-o", str(raw), "--"],
        )
    finally:
        hub.stop()
        shutil.rmtree(base / f"{shape}-profile", ignore_errors=True)
    gib = result["bytes"] / GiB
    seen: Counter[str] = Counter()
    for row in raw.read_text().splitlines():
        stack, _, count = row.rpartition(" ")
        if stack and count.isdigit():
            kind = _classify(stack.split(";"), Path(env.get("BENCH_CODE") or ROOT))
            if kind is not None:
                seen[kind] += int(count)
    total = sum(seen.values())
    cpu = result["process_cpu"] / gib
    print(
        f"\n== profile {shape} ({'baseline' if env else 'modelarium'}): {gib:.2f} GiB in "
        f"{result['seconds']:.2f} s, CPU {result['cpu'] / gib:.2f} s/GiB while installing "
        f"(load {_load()}); the process's {cpu:.2f} s/GiB (start-up included) split by "
        "py-spy's on-CPU samples:"
    )
    for category in CATEGORIES:
        if seen[category]:
            share = seen[category] / total
            print(f"  {category:<44} {share * cpu:6.3f} s/GiB {share:6.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--shapes", default=",".join(SHAPES), help=f"comma-separated, of {', '.join(SHAPES)}"
    )
    parser.add_argument("--scale", type=float, default=1.0, help="file size factor (0.1: quick)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", default=None, help="source tree to measure as 'baseline'")
    parser.add_argument("--dir", default=None, help="where to write (default: a temp dir)")
    parser.add_argument("--profile", action="store_true", help="py-spy one install per shape")
    args = parser.parse_args()
    shapes = [s.strip() for s in args.shapes.split(",") if s.strip()]
    unknown = [s for s in shapes if s not in SHAPES]
    if unknown or args.scale <= 0 or args.rounds < 1:
        parser.error(f"unknown shape {unknown[0]!r}" if unknown else "scale/rounds must be > 0")
    if args.baseline and not (Path(args.baseline) / "modelarium").is_dir():
        parser.error(f"{args.baseline} has no modelarium package")
    base = Path(tempfile.mkdtemp(prefix="install-bench-", dir=args.dir))
    print(
        f"{os.cpu_count()} CPUs, load {_load()}, scale {args.scale}, {args.rounds} round(s), "
        f"scratch {base} ({shutil.disk_usage(base).free / GiB:.0f} GiB free)"
    )
    ratios: dict[str, dict[str, float]] = {}
    try:
        for shape in shapes:
            if args.profile:
                profile_shape(shape, args, base, {})
                if args.baseline:
                    profile_shape(shape, args, base, {"BENCH_CODE": args.baseline})
            else:
                ratios[shape] = bench_shape(shape, args, base)
    finally:
        if os.environ.get("BENCH_KEEP"):
            print(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    if ratios:
        print(f"\nmedian ratio to snapshot_download (goal >= 0.90; load now {_load()}):")
        for shape, by_name in ratios.items():
            print(f"  {shape:<9} " + "  ".join(f"{n} {r:.2f}x" for n, r in by_name.items()))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_serve":
        serve(sys.argv[2], float(sys.argv[3]))
    elif len(sys.argv) > 1 and sys.argv[1] == "_ours":
        run_modelarium(sys.argv[2], sys.argv[3], sys.argv[4])
    elif len(sys.argv) > 1 and sys.argv[1] == "_snapshot":
        run_snapshot(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        main()
