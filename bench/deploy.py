"""Deployments: the Approve click to the apply job's first stage, and the reconcile cycle.

Two measurements, each as a ratio to the bare operations it needs, measured in the same run:

* **approve -> first stage**: a deploy proposed in a namespace that needs one approval; the clock
  starts when ``approve <id>`` is run (what the button runs) and stops when a daemon worker
  (a ``WorkerPool`` polling like the daemon's, ``--poll`` seconds) enters the change's first
  stage. Baseline: a bare job of a no-op kind enqueued directly and claimed by the same pool,
  enqueue -> first stage. The difference is what the approval, the change engine and the
  deployment kind add on top of the queue.
* **reconcile**: ``core.deployments.reconcile()`` over ``--services`` managed InferenceServices
  spread over ``--namespaces`` namespaces (each with its history row), i.e. one list call per
  namespace plus readiness, drift and the database pass. Baseline: the bare list calls alone
  (the same client, one per namespace).

The fake API server (``tests.fakes.kubernetes``) runs in a child process, as a real cluster
would be another machine. SQLite in a temp dir (or ``--database-url``).

    python bench/deploy.py [--services 500] [--namespaces 5] [--rounds 20] [--poll 0.5]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

REPO = "bench/model"
COMMIT = "b" * 40


def _isvc(name: str, namespace: str) -> dict[str, Any]:
    from modelarium.core.deployments.manifest import (
        ModelSource,
        Replicas,
        render,
    )
    from modelarium.core.deployments.policy import NamespacePolicy

    source = ModelSource(REPO, "main", COMMIT, f"hf://{REPO}:{COMMIT}", False)
    return render(
        name=name,
        namespace=namespace,
        source=source,
        args=["--max-model-len=8192"],
        gpus=1,
        product=None,
        replicas=Replicas(),
        policy=NamespacePolicy(namespace, approvals=0),
    )


def serve(services: int, namespaces: int) -> None:
    """Child: the fake API server with ``services`` Ready InferenceServices."""
    from tests.fakes.kubernetes import FakeKubernetes

    fake = FakeKubernetes(history_limit=200_000).start()
    for i in range(services):
        namespace = f"ns{i % namespaces}"
        obj = _isvc(f"m{i:04d}", namespace)
        fake.put_custom_object(namespace, obj)
        fake.set_inference_service_ready(namespace, f"m{i:04d}")
    fake.kserve.ready_after = 0.05
    fake.kserve.namespaces = {"bench"}  # the measured deploys; the listed ones stay static
    fake.kserve.start()
    print(json.dumps({"url": fake.url, "token": fake.token}), flush=True)
    sys.stdin.read()
    fake.stop()


def _kubeconfig(path: Path, url: str, token: str) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "b", "cluster": {"server": url}}],
        "users": [{"name": "b", "user": {"token": token}}],
        "contexts": [{"name": "b", "context": {"cluster": "b", "user": "b"}}],
        "current-context": "b",
    }
    path.write_text(json.dumps(config))
    return path


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--services", type=int, default=500)
    parser.add_argument("--namespaces", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--poll", type=float, default=0.5, help="worker poll interval (s)")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    child = subprocess.Popen(
        [sys.executable, __file__, "_serve", str(args.services), str(args.namespaces)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert child.stdout is not None
    assert child.stdin is not None
    info = json.loads(child.stdout.readline())
    tmp = Path(tempfile.mkdtemp(prefix="deploy-bench-"))
    try:
        run(args, info, tmp)
    finally:
        child.stdin.close()
        child.wait(30)


def run(args: argparse.Namespace, info: dict[str, str], tmp: Path) -> None:
    from modelarium.config import Settings
    from modelarium.core.app import Core
    from modelarium.core.changes import Plan
    from modelarium.core.deployments.changes import DEPLOY, deploy_change_plan
    from modelarium.core.deployments.service import DeployRequest
    from modelarium.core.jobs import JobKind, WorkerPool
    from modelarium.core.logging import configure_logging

    configure_logging("warning", "json")
    namespaces = [f"ns{i}" for i in range(args.namespaces)]
    settings = Settings(  # type: ignore[call-arg]
        data_dir=tmp,
        database_url=args.database_url,
        admins=["U_A", "U_B"],
        kubeconfig=_kubeconfig(tmp / "kubeconfig", info["url"], info["token"]),
        deploy_namespaces=[{"name": ns, "approvals": 0} for ns in namespaces]
        + [{"name": "bench", "approvals": 1}],
        message_update_interval=0.0,
        gpu_profiles=[{"name": "A100-80GB", "memory": "80GiB", "count": 8}],
    )
    core = Core(settings)
    core.migrate()
    from modelarium.bot.dispatch import CommandRunner

    runner = CommandRunner(core)

    # -- reconcile ---------------------------------------------------------------------------
    store = core.deployments.store
    for i in range(args.services):
        namespace, name = namespaces[i % len(namespaces)], f"m{i:04d}"
        manifest = _isvc(name, namespace)
        event = store.begin(
            namespace=namespace,
            name=name,
            action="apply",
            change_id=None,
            proposed_by="bench",
            manifest=manifest,
            source={"repo": REPO, "commit": COMMIT},
            gpus=1,
        )
        store.finish(event, "succeeded", state="ready")
    client = core.deployments.client()
    bare: list[float] = []
    ours: list[float] = []
    for _ in range(5):  # the first pass also records every row's readiness and URL
        started = time.perf_counter()
        seen = sum(len(client.list_inference_services(ns)) for ns in namespaces)
        bare.append(time.perf_counter() - started)
        started = time.perf_counter()
        report = core.deployments.reconcile()
        ours.append(time.perf_counter() - started)
    client.close()
    assert seen == args.services, seen
    assert report.seen == report.ready == args.services, report.summary()
    assert not report.drifted, report.summary()
    assert not report.missing, report.summary()
    print(
        f"reconcile over {args.services} InferenceServices in {len(namespaces)} namespaces: "
        f"{min(ours) * 1000:.0f} ms (median {statistics.median(ours) * 1000:.0f} ms); "
        f"bare list calls {min(bare) * 1000:.0f} ms "
        f"(median {statistics.median(bare) * 1000:.0f} ms)"
    )
    print(f"  ratio: {min(ours) / min(bare):.2f}x best, "
          f"{statistics.median(ours) / statistics.median(bare):.2f}x median")  # fmt: skip

    # -- approve -> first stage -------------------------------------------------------------
    entered: dict[int, float] = {}
    kind = core.changes.kind(DEPLOY)
    original = kind.run_stage

    def timed(ctx: Any, stage: str) -> None:
        entered.setdefault(ctx.job_id, time.perf_counter())
        original(ctx, stage)

    kind.run_stage = timed  # type: ignore[method-assign]
    core.jobs.register(
        JobKind(
            "bench.noop",
            ("only",),
            lambda ctx, stage: entered.setdefault(ctx.job_id, time.perf_counter()),
            lambda p: "noop",
        )
    )
    pool = WorkerPool(core.jobs, size=1, heartbeat=1.0, poll_interval=args.poll)
    pool.start()
    plan = _plan(core, DeployRequest, "bench")
    clicks: list[float] = []
    queue: list[float] = []
    approve_ms: list[float] = []
    try:
        for i in range(args.rounds):
            params = {**plan.params(), "name": f"b{i:03d}"}
            params["manifest"] = {**params["manifest"], "metadata": {
                **params["manifest"]["metadata"], "name": f"b{i:03d}"}}  # fmt: skip
            change_plan = Plan(
                target=f"deployment:bench/b{i:03d}",
                summary=f"bench {i}",
                params=params,
                approval=deploy_change_plan(plan, _preview(plan)).approval,
            )
            proposal = core.changes.propose(DEPLOY, params, "U_A", None, plan=change_plan)
            assert proposal.approval is not None
            # The worker is idle; start at a random phase of its poll, for both measurements.
            time.sleep(random.uniform(0, args.poll))
            started = time.perf_counter()
            answer = runner.execute(f"approve {proposal.approval.id}", user="U_B")
            approve_ms.append(time.perf_counter() - started)
            assert answer.ok, answer.text
            job_id = core.changes.get(proposal.change.id).job_id
            clicks.append(_wait_entered(entered, job_id) - started)
            _settle(core, proposal.change.id)
            time.sleep(random.uniform(0, args.poll))
            started = time.perf_counter()
            job = core.jobs.enqueue("bench.noop", {}, created_by="bench")
            queue.append(_wait_entered(entered, job.id) - started)
            time.sleep(0.05)  # let the no-op finish
    finally:
        pool.stop()
    print(
        f"approve -> first stage ({args.rounds} rounds, worker poll {args.poll:g}s): "
        f"p50 {statistics.median(clicks) * 1000:.0f} ms, p95 {_pct(clicks, 0.95) * 1000:.0f} ms;"
        f" bare enqueue -> first stage p50 {statistics.median(queue) * 1000:.0f} ms, "
        f"p95 {_pct(queue, 0.95) * 1000:.0f} ms"
    )
    print(
        f"  of which the approve command itself (vote, enqueue, card): "
        f"p50 {statistics.median(approve_ms) * 1000:.0f} ms"
    )
    print(f"  ratio: {statistics.median(clicks) / statistics.median(queue):.2f}x median")
    core.close()


def _plan(core: Any, request_type: Any, namespace: str) -> Any:
    """A plan without the Hub: weights recorded as installed in the default location."""
    from datetime import UTC, datetime

    from modelarium.core.db.models.weights import WeightRecord

    location = core.weights.location()
    snapshot = location.path / f"models--{REPO.replace('/', '--')}" / "snapshots" / COMMIT
    snapshot.mkdir(parents=True, exist_ok=True)
    config = ROOT / "tests" / "data" / "configs" / "llama-3.1-8b-instruct.json"
    (snapshot / "config.json").write_text(config.read_text())
    with core.db.transaction() as session:
        session.add(
            WeightRecord(
                repo_id=REPO, revision="main", commit=COMMIT, location=location.name,
                status="installed", size_bytes=1, file_count=1, files=[], created_by="bench",
                installed_at=datetime.now(UTC),
            )
        )  # fmt: skip
    return core.deployments.plan(request_type(REPO, name="b000", namespace=namespace))


def _preview(plan: Any) -> Any:
    from modelarium.core.deployments.service import Preview

    return Preview(plan, None, "", [])


def _wait_entered(entered: dict[int, float], job_id: int | None, timeout: float = 30.0) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if job_id in entered:
            return entered[job_id]
        time.sleep(0.001)
    raise SystemExit(f"job #{job_id} never started")


def _settle(core: Any, change_id: int, timeout: float = 30.0) -> None:
    """Let the change finish before the next round (one worker, as measured)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if core.changes.get(change_id).done:
            return
        time.sleep(0.02)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_serve":
        serve(int(sys.argv[2]), int(sys.argv[3]))
    else:
        main()
