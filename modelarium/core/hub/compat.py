"""GPU compatibility check: alert when a model Modelarium holds no longer fits any GPU type.

"Models Modelarium holds" are today the installed weights (``core.weights``): there is no
catalog or deployment capability yet. A model stops fitting when the fleet changes (nodes
removed, a GPU type relabelled, static profiles edited). config.json is read from the installed
snapshot on disk, so the check needs no Hub call; parameter counts come from the cached Hub
metadata when available.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelarium.core.alerts import AlertRule, AlertService, Observation
from modelarium.core.errors import ModelariumError
from modelarium.core.fit import estimate

if TYPE_CHECKING:
    from modelarium.core.gpus import GpuChoice
    from modelarium.core.hub.service import HubService
    from modelarium.core.weights.service import WeightsService

FIT_RULE = "model_fits_no_gpu"
RULE = AlertRule(
    name=FIT_RULE,
    summary="{model}@{revision} no longer fits any GPU type in the fleet",
    op=">=",
    threshold=1.0,
    severity="warning",
    kind="fit",
)


@dataclass
class CompatReport:
    checked: int = 0
    misfits: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    observations: list[Observation] = field(default_factory=list)
    evaluated: bool = True
    gpus: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if not self.evaluated:
            return "no GPU types known (no Kubernetes GPU nodes, no MODELARIUM_GPU_PROFILES)"
        text = (
            f"checked {self.checked} installed model(s) against {len(self.gpus)} GPU type(s): "
            f"{len(self.misfits)} fit none"
        )
        if self.misfits:
            text += f" ({', '.join(self.misfits[:3])}{', ...' if len(self.misfits) > 3 else ''})"
        if self.skipped:
            text += f"; {len(self.skipped)} not checked ({self.skipped[0]})"
        return text


def _installed(weights: WeightsService) -> list[tuple[str, str, Path | None]]:
    """Distinct (repo, commit, config.json path on disk) of installed weights."""
    seen: dict[tuple[str, str], Path | None] = {}
    for view in weights.inventory(status="installed"):
        if view.id is None or not view.commit:
            continue  # orphaned data on disk is not a model Modelarium holds
        path = weights.layout(view.location, view.repo_id).snapshot(view.commit) / "config.json"
        if seen.get((view.repo_id, view.commit)) is None:
            seen[(view.repo_id, view.commit)] = path if path.is_file() else None
    return [(repo, commit, path) for (repo, commit), path in seen.items()]


def _local_config(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _fits_any(config: dict[str, Any], safetensors: Any, choices: list[GpuChoice]) -> bool:
    for choice in choices:
        try:
            if estimate(config, choice.profile, safetensors=safetensors).fits:
                return True
        except ModelariumError:
            continue
    return False


def check_installed(hub: HubService, weights: WeightsService, alerts: AlertService) -> CompatReport:
    """Observations for :data:`FIT_RULE`, one per installed model (1 = fits no GPU type)."""
    choices = hub.gpus.snapshot().choices()
    report = CompatReport(gpus=[c.name for c in choices])
    if not choices:
        report.evaluated = False
        return report
    firing = {
        (a.labels.get("model"), a.labels.get("revision"))
        for a in alerts.active()
        if a.rule == FIT_RULE
    }
    for repo, commit, path in _installed(weights):
        labels = {"model": repo, "revision": commit[:12]}
        try:
            config = _local_config(path) or hub.config(repo, commit)
            if config is None:
                raise ModelariumError("no config.json")
            try:
                safetensors = hub.model(repo, commit)[0].safetensors
            except ModelariumError:
                safetensors = None  # size from config.json alone
        except ModelariumError as exc:
            report.skipped.append(f"{repo}: {exc}")
            # Not observed would mean "resolved": keep a firing alert firing until we know.
            if (repo, commit[:12]) in firing:
                report.observations.append(Observation(FIT_RULE, 1.0, labels))
            continue
        report.checked += 1
        fits = _fits_any(config, safetensors, choices)
        if not fits:
            report.misfits.append(f"{repo}@{commit[:12]}")
        report.observations.append(Observation(FIT_RULE, 0.0 if fits else 1.0, labels))
    return report
