"""Offline catalog validation: 1,000 entries must validate in under 2 s (issue #16).

Setup, not measured: a checkout with N entry files in ``models/`` (every 10th one carrying a
schema error and every 25th an architecture vLLM does not serve, so the error paths are
exercised too).

Measured: what ``modelarium catalog validate DIR`` does, in process (read, parse, JSON Schema,
the checks beyond the schema, the packaged vLLM table); then the whole command as a subprocess,
interpreter start-up and imports included. The baseline is the 2 s budget, so the ratio printed
is ``time / 2 s``; under 1.0 meets the goal.

    python bench/catalog.py [--entries 1000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BUDGET = 2.0


def entry(i: int) -> dict:
    commit = f"{i:040x}"
    data = {
        "schema_version": 1,
        "id": f"model-{i:05d}",
        "display_name": f"Model {i}",
        "huggingface": {"repo": f"org{i % 37}/model-{i}", "commit": commit},
        "license": "apache-2.0",
        "parameters": {"total": 7_000_000_000 + i, "active": 7_000_000_000 + i},
        "architecture": "LlamaForCausalLM" if i % 25 else "NoSuchForCausalLM",
        "context_length": 32768,
        "quantization": "bf16",
        "serving_defaults": {
            "engine": "vllm",
            "gpu": "L4",
            "args": ["--max-model-len", "32768", "--gpu-memory-utilization", "0.9"],
        },
        "gpu_compatibility": {
            "L4": {"fits": True, "gpus": 1, "max_model_len": 32768, "summary": "fits"},
            "A100-80GB": {"fits": True, "gpus": 1, "max_model_len": 32768},
            "T4": {"fits": False, "gpus": None, "max_model_len": 0},
        },
        "storage_uri": f"pvc://models/models--org--model-{i}/snapshots/{commit}",
        "status": "approved" if i % 10 else "published",
        "owners": ["U_ADMIN"],
        "tags": ["chat", "bench"],
        "notes": "",
    }
    return data


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    from modelarium.core.catalog import Checks, validate_dir
    from modelarium.core.vllm import load_catalog

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder = root / "models"
        folder.mkdir()
        for i in range(args.entries):
            data = entry(i)
            (folder / f"{data['id']}.json").write_text(json.dumps(data, indent=2) + "\n")

        times, cpu = [], []
        report = None
        for _ in range(args.rounds):
            started, started_cpu = time.perf_counter(), time.process_time()
            report = validate_dir(root, Checks(architectures=load_catalog()))
            times.append(time.perf_counter() - started)
            cpu.append(time.process_time() - started_cpu)
        assert report is not None
        assert report.files == args.entries
        bad = len({i.file for i in report.errors})

        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "modelarium", "catalog", "validate", str(root)],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        whole = time.perf_counter() - started
        summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr

    best, median = min(times), statistics.median(times)
    print(f"catalog validate, {args.entries} entries ({bad} with errors), {args.rounds} rounds")
    print(
        f"  in process: best {best:.3f} s, median {median:.3f} s -> {median / BUDGET:.2f}x of 2 s"
        f" (CPU {statistics.median(cpu):.3f} s; load average {os.getloadavg()[0]:.1f})"
    )
    print(f"  whole command (start-up included): {whole:.3f} s -> {whole / BUDGET:.2f}x of 2 s")
    print(f"  exit {done.returncode}: {summary}")
    return 0 if median < BUDGET else 1


if __name__ == "__main__":
    sys.exit(main())
