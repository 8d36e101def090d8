"""Bucket install throughput: ``/model install --location <bucket>`` vs. a plain boto3 upload.

Both put the same generated multi-file model (safetensors shards plus small files) into the same
S3 server (moto's, behind the tests' strict layer, in its own process; the fake hub in another):

* ``modelarium``: the install as a user runs it: plan (hub metadata, the bucket checked), the
  Hub's bytes streamed into multipart uploads with a SHA-256 per part (x-amz-checksum-sha256),
  the Hub's sha256 / git sha1 of every file checked before its upload completes, every part
  checkpointed in the job, the manifest written last; one job run by ``WorkerPool.run_one`` on
  SQLite;
* ``boto3``: ``S3Client.upload_file`` of each file from a local copy (downloaded once, before
  the rounds, not timed), with boto3's managed transfer (threads, multipart) using the same part
  size and concurrency; no verification beyond boto3's own defaults.

So the baseline reads from a local disk while the install downloads from the (local) hub: the
ratio includes the download and all verification. Rounds alternate (modelarium, boto3, ...);
the bucket is emptied between runs; the median of each is compared. Goal: >= 0.8.

    python bench/s3.py [--gib 1] [--shards 4] [--rounds 3] [--dir /tmp]
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
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_DISABLE_XET", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

REPO = "bench/generated"
BUCKET = "bench-models"
GiB = 1 << 30
MiB = 1 << 20
PART = 16 * MiB
CONCURRENCY = 8


# -- child processes ---------------------------------------------------------------------------
def serve_hub(gib: float, shards: int) -> None:
    from tests.fakes.hf_hub import FakeHub

    hub = FakeHub().start()
    hub.add_generated_model(REPO, total_bytes=int(gib * GiB), shards=shards, seed="bench")
    total = sum(b.size for b in hub.repo(REPO).head.files.values())
    print(json.dumps({"url": hub.url, "bytes": total, "files": len(hub.repo(REPO).head.files)}))
    sys.stdout.flush()
    sys.stdin.read()  # until the parent closes our stdin
    hub.stop()


def serve_s3() -> None:
    import logging

    from tests.fakes.s3 import FakeS3

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    s3 = FakeS3().start()
    print(json.dumps({"url": s3.url, **s3.env()}))
    sys.stdout.flush()
    sys.stdin.read()
    s3.stop()


def _location(s3_url: str) -> dict[str, str]:
    return {
        "name": "bucket",
        "type": "s3",
        "bucket": BUCKET,
        "prefix": "bench/",
        "endpoint_url": s3_url,
        "region": "us-east-1",
    }


def run_modelarium(hub_url: str, s3_url: str, workdir: str) -> None:
    from modelarium.config import Settings
    from modelarium.core.app import Core
    from modelarium.core.jobs import WorkerPool
    from modelarium.core.logging import configure_logging

    configure_logging("warning", "console")
    settings = Settings(
        data_dir=Path(workdir),
        hf_endpoint=hub_url,
        install_approval_threshold=1 << 50,
        admins=["bench"],
        storage_locations=[
            {"name": "default", "path": str(Path(workdir) / "weights")},
            _location(s3_url),
        ],
        s3_part_size=PART,
        s3_concurrency=CONCURRENCY,
    )
    core = Core(settings)
    core.migrate()
    cpu = _cpu()
    started = time.perf_counter()
    plan = core.weights.plan_install(REPO, None, "bucket")
    request = core.weights.request_install(plan, "bench")
    assert request.job is not None
    view = WorkerPool(core.jobs, size=1).run_one()
    seconds = time.perf_counter() - started
    if view is None or view.status != "succeeded":
        raise SystemExit(f"install failed: {view and view.error}")
    print(json.dumps({"seconds": seconds, "bytes": plan.size, "cpu": _cpu() - cpu}))


def _cpu() -> float:
    """CPU seconds this process used (user + system), to see where the time goes."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _client(s3_url: str):  # type: ignore[no-untyped-def]
    import boto3

    return boto3.session.Session().client("s3", endpoint_url=s3_url, region_name="us-east-1")


def run_boto3(s3_url: str, files_dir: str) -> None:
    from boto3.s3.transfer import TransferConfig

    client = _client(s3_url)
    config = TransferConfig(
        multipart_threshold=PART, multipart_chunksize=PART, max_concurrency=CONCURRENCY
    )
    files = sorted(p for p in Path(files_dir).rglob("*") if p.is_file())
    cpu = _cpu()
    started = time.perf_counter()
    size = 0
    for path in files:
        key = f"baseline/{path.relative_to(files_dir)}"
        client.upload_file(str(path), BUCKET, key, Config=config)
        size += path.stat().st_size
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "bytes": size, "cpu": _cpu() - cpu}))


def download(hub_url: str, target: str) -> None:
    from huggingface_hub import snapshot_download

    snapshot_download(REPO, local_dir=target, endpoint=hub_url, token=False)
    shutil.rmtree(Path(target) / ".cache", ignore_errors=True)
    print(json.dumps({"ok": True}))


# -- the parent ----------------------------------------------------------------------------------
def _child(env: dict[str, str], *args: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=False, env=env
    )
    if out.returncode != 0:
        raise SystemExit(f"{args[0]} failed:\n{out.stdout}\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _server(*args: str) -> tuple[subprocess.Popen[str], dict[str, str]]:
    proc = subprocess.Popen(
        [sys.executable, __file__, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    return proc, json.loads(proc.stdout.readline())


def _proc_cpu(pid: int) -> float:
    """CPU seconds a server process used so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def _empty_bucket(s3_url: str) -> None:
    """Reset moto (it keeps objects in memory) and create the bucket again."""
    request = urllib.request.Request(f"{s3_url}/moto-api/reset", method="POST")
    urllib.request.urlopen(request, timeout=30).read()
    _client(s3_url).create_bucket(Bucket=BUCKET)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gib", type=float, default=1.0, help="model size (GiB)")
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", default=None, help="where to write (default: a temp dir)")
    args = parser.parse_args()

    hub, info = _server("_hub", str(args.gib), str(args.shards))
    s3, s3_info = _server("_s3")
    s3_url = s3_info.pop("url")
    env = {**os.environ, **s3_info, "AWS_EC2_METADATA_DISABLED": "true"}
    os.environ.update(env)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        env.pop(name, None)
    load = os.getloadavg()
    print(
        f"fake hub {info['url']}: {REPO}, {info['files']} files, "
        f"{info['bytes'] / GiB:.2f} GiB; moto S3 {s3_url}; part {PART // MiB} MiB, "
        f"{CONCURRENCY} parts at once; {os.cpu_count()} CPUs, "
        f"load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    base = Path(tempfile.mkdtemp(prefix="s3-bench-", dir=args.dir))
    results: dict[str, list[float]] = {"modelarium": [], "boto3": []}
    try:
        files = base / "files"
        _child(env, "_download", info["url"], str(files))
        for round_ in range(args.rounds):
            for name in ("modelarium", "boto3"):
                _empty_bucket(s3_url)
                workdir = base / f"{name}-{round_}"
                servers = (_proc_cpu(hub.pid), _proc_cpu(s3.pid))
                if name == "modelarium":
                    result = _child(env, "_ours", info["url"], s3_url, str(workdir))
                else:
                    result = _child(env, "_boto3", s3_url, str(files))
                hub_cpu = _proc_cpu(hub.pid) - servers[0]
                s3_cpu = _proc_cpu(s3.pid) - servers[1]
                shutil.rmtree(workdir, ignore_errors=True)
                rate = result["bytes"] / result["seconds"]
                results[name].append(rate)
                print(
                    f"  round {round_ + 1}: {name:<11} {result['seconds']:6.2f} s  "
                    f"{rate / 1e6:8.1f} MB/s  (CPU s: client {result['cpu']:.1f}, "
                    f"hub {hub_cpu:.1f}, S3 {s3_cpu:.1f})"
                )
    finally:
        for proc in (hub, s3):
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(30)
        shutil.rmtree(base, ignore_errors=True)
    ours = statistics.median(results["modelarium"])
    theirs = statistics.median(results["boto3"])
    load = os.getloadavg()
    print(f"modelarium (install from the hub, verified): median {ours / 1e6:7.1f} MB/s")
    print(f"boto3 upload_file (local files):            median {theirs / 1e6:7.1f} MB/s")
    print(
        f"ratio: {ours / theirs:.2f}x median (goal >= 0.80); "
        f"load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command == "_hub":
        serve_hub(float(sys.argv[2]), int(sys.argv[3]))
    elif command == "_s3":
        serve_s3()
    elif command == "_ours":
        run_modelarium(sys.argv[2], sys.argv[3], sys.argv[4])
    elif command == "_boto3":
        run_boto3(sys.argv[2], sys.argv[3])
    elif command == "_download":
        download(sys.argv[2], sys.argv[3])
    else:
        main()
