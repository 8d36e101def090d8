"""The daemon's view of the fleet: what every managed InferenceService is doing right now.

One list call per namespace (label ``app.kubernetes.io/managed-by=modelarium``) reads every
managed object; each known deployment then gets its readiness recorded, an observation for the
not-Ready alert (seconds not Ready, against ``MODELARIUM_DEPLOY_NOT_READY_GRACE``), one for the
drift alert (the live object differs from the spec Modelarium last applied, e.g. after a
``kubectl edit``, with the diff posted beside it), and a notice when it was deleted outside
Modelarium. Deployments with a change under way are left to that change.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from modelarium.core.alerts import AlertRule, Observation
from modelarium.core.changes.kinds import ACTIVE
from modelarium.core.clients.kubernetes import KubeClient, KubernetesUnreachableError
from modelarium.core.db.models.changes import Change
from modelarium.core.deployments import diff as diffs
from modelarium.core.deployments.manifest import MANAGED_SELECTOR
from modelarium.core.deployments.policy import allowed_namespaces
from modelarium.core.deployments.status import health
from modelarium.core.deployments.store import GONE, DeploymentStore
from modelarium.core.errors import ModelariumError
from modelarium.core.messages import Message

if TYPE_CHECKING:
    from modelarium.core.kernel import Kernel

NOT_READY_RULE = "deployment_not_ready"
DRIFT_RULE = "deployment_drift"
RULES = (
    AlertRule(
        name=NOT_READY_RULE,
        summary="Deployment {deployment} has not been Ready for {value:.0f}s",
        op=">=",
        threshold=600.0,  # per observation: MODELARIUM_DEPLOY_NOT_READY_GRACE
        severity="warning",
        kind="deployments",
    ),
    AlertRule(
        name=DRIFT_RULE,
        summary="Deployment {deployment} differs from the spec Modelarium last applied "
        "(`deployment diff {deployment}`)",
        op=">=",
        threshold=1.0,
        severity="warning",
        kind="deployments",
    ),
)


@dataclass
class ReconcileReport:
    namespaces: list[str] = field(default_factory=list)
    seen: int = 0
    ready: int = 0
    not_ready: list[str] = field(default_factory=list)
    drifted: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    observations: dict[str, list[Observation]] = field(default_factory=dict)
    notices: list[tuple[str, Message]] = field(default_factory=list)
    """(key, message): posted once per key (a drift's diff, a deletion outside Modelarium)."""

    def summary(self) -> str:
        parts = [f"{self.seen} managed InferenceService(s) in {len(self.namespaces)} namespace(s)"]
        parts.append(f"{self.ready} Ready")
        if self.not_ready:
            parts.append(f"not Ready: {', '.join(self.not_ready[:5])}")
        if self.drifted:
            parts.append(f"drifted: {', '.join(self.drifted[:5])}")
        if self.missing:
            parts.append(f"deleted outside Modelarium: {', '.join(self.missing[:5])}")
        if self.errors:
            parts.append("; ".join(self.errors[:3]))
        return "; ".join(parts)


def _active_targets(core: Kernel) -> set[str]:
    with core.db.transaction() as session:
        rows = session.scalars(
            sa.select(Change.target).where(
                Change.status.in_(ACTIVE), Change.target.like("deployment:%")
            )
        )
        return set(rows)


def reconcile(core: Kernel, store: DeploymentStore, client: KubeClient) -> ReconcileReport:
    report = ReconcileReport()
    rows = store.all()
    known = [r for r in rows if r.state not in GONE]
    namespaces = sorted(set(allowed_namespaces(core.settings)) | {r.namespace for r in known})
    report.namespaces = namespaces
    live: dict[str, dict[str, Any]] = {}
    listed: set[str] = set()
    for namespace in namespaces:
        try:
            items = client.list_inference_services(namespace, label_selector=MANAGED_SELECTOR)
        except KubernetesUnreachableError:
            raise
        except ModelariumError as exc:
            report.errors.append(str(exc))
            continue
        listed.add(namespace)
        for obj in items:
            live[f"{namespace}/{obj['metadata']['name']}"] = obj
    report.seen = len(live)
    active = _active_targets(core)
    now = core.clock.now()
    grace = core.settings.deploy_not_ready_grace
    updates: dict[int, dict[str, Any]] = {}
    removed: list[int] = []
    not_ready: list[Observation] = []
    drift: list[Observation] = []
    for row in known:
        if row.namespace not in listed:
            continue  # its namespace could not be read: say nothing rather than guess
        busy = f"deployment:{row.key}" in active
        obj = live.get(row.key)
        if obj is None:
            if not busy:
                removed.append(row.id)
            continue
        state = health(obj)
        values: dict[str, Any] = {}
        if state.ready:
            report.ready += 1
        since = None if state.ready else (row.not_ready_since or now)
        if row.ready != state.ready or row.not_ready_since != since:
            values.update(ready=state.ready, not_ready_since=since)
        if state.url != row.url and state.url is not None:
            values["url"] = state.url
        if state.revision != row.revision and state.revision is not None:
            values["revision"] = state.revision
        if not busy:
            wanted = _state(row.state, state.state)
            if wanted != row.state:
                values["state"] = wanted
        if values:
            updates[row.id] = values
        waiting = 0.0
        if not state.ready and state.state != "stopped" and not busy and since is not None:
            waiting = (now - since).total_seconds()
            report.not_ready.append(row.key)
        not_ready.append(Observation(NOT_READY_RULE, waiting, {"deployment": row.key}, grace))
        lines = [] if busy else diffs.changes(row.manifest, obj)  # applied -> live
        if lines:
            report.drifted.append(row.key)
            digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()[:12]
            report.notices.append((f"deployment-drift:{row.key}:{digest}", _drift(row, lines)))
        drift.append(Observation(DRIFT_RULE, 1.0 if lines else 0.0, {"deployment": row.key}))
    for dep_id in store.observe(updates, removed):
        row = next(r for r in known if r.id == dep_id)
        report.missing.append(row.key)
        report.notices.append((f"deployment-missing:{row.key}:{row.id}", _missing(row)))
    report.observations = {NOT_READY_RULE: not_ready, DRIFT_RULE: drift}
    return report


def _state(current: str, observed: str) -> str:
    if observed == "stopped":
        return "stopped"
    if observed == "ready":
        return "ready"
    if observed == "failed":
        return "failed"
    return current if current == "deploying" else "not ready"


def _drift(row: Any, lines: list[str]) -> Message:
    shown = lines[:30] + ([f"… {len(lines) - 30} more line(s)"] if len(lines) > 30 else [])
    message = Message(fallback=f"Deployment {row.key} drifted from its last applied spec")
    message.text(
        f"🔀 *{row.key}* differs from the spec Modelarium last applied"
        + (f" (change #{row.change_id})" if row.change_id else "")
        + ": someone changed it outside Modelarium (kubectl?). Applied -> live:"
    )
    message.code("\n".join(shown))
    message.context(
        f"Re-apply the recorded spec with `deployment rollback {row.key} --to <n>` (see "
        f"`deployment history {row.key}`), or deploy the change properly."
    )
    return message


def _missing(row: Any) -> Message:
    message = Message(fallback=f"Deployment {row.key} was deleted outside Modelarium")
    message.text(
        f"🗑 *{row.key}* ({row.repo}@{row.commit[:12]}) is gone from the cluster, but nobody "
        "deleted it through Modelarium."
    )
    message.context(f"Its history is kept: `deployment history {row.key}`.")
    return message
