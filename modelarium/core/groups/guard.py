"""The daemon's ``group_guard``: judge every running challenger over the guard window.

A rule breached with significance cuts the challenger's traffic to 0% (an automatic change:
recorded, announced, revertible) and fires the ``group_challenger_breach`` alert. When every
rule has passed over the window, "ready to promote" is posted once per group revision, with a
Promote button (the button runs ``group promote``, so the presser's role is checked as typed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modelarium.core.alerts import Observation
from modelarium.core.errors import ModelariumError
from modelarium.core.groups.canary import CANARY
from modelarium.core.groups.changes import TRAFFIC
from modelarium.core.groups.service import GroupService
from modelarium.core.logging import get_logger
from modelarium.core.messages import Button, Message

log = get_logger(__name__)

BREACH_RULE = "group_challenger_breach"


@dataclass
class GuardReport:
    judged: int = 0
    cut: list[str] = field(default_factory=list)
    ready: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    observations: list[Observation] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{self.judged} challenger(s) judged"]
        if self.cut:
            parts.append("cut to 0%: " + ", ".join(self.cut))
        if self.ready:
            parts.append("ready to promote: " + ", ".join(self.ready))
        return "; ".join(parts + self.notes)


def run_guard(service: GroupService) -> GuardReport:
    kernel = service.kernel
    report = GuardReport()
    window = kernel.settings.group_guard_window
    for group in service.list():
        if group.status != "running":
            continue
        for challenger in group.challengers:
            if challenger.traffic <= 0:
                continue
            report.judged += 1
            comparison = service.compare(group.name, since=window)
            versus = next((v for v in comparison.versus if v.challenger == challenger.name), None)
            labels = {"group": group.name, "member": challenger.name}
            if versus is None:
                continue
            if versus.breached:
                why = "; ".join(f"{r.rule}: {r.detail}" for r in versus.breached)
                cut: dict[str, Any] = {"group": group.name, "traffic": 0, "guard": True}
                if group.strategy == "canary":
                    kind, cut["op"] = CANARY, "traffic"
                else:
                    kind, cut["why"] = TRAFFIC, why
                try:
                    proposal = kernel.changes.propose(kind, cut, "system", None, system=True)
                except ModelariumError as exc:
                    report.notes.append(f"{group.name}: could not cut {challenger.name}: {exc}")
                    log.warning("groups.guard_cut_failed", group=group.name, error=str(exc))
                    continue
                report.cut.append(f"{group.name}/{challenger.name}")
                report.observations.append(Observation(BREACH_RULE, 1.0, labels))
                message = Message(fallback=f"Group {group.name}: challenger cut to 0%")
                message.text(
                    f"🛑 Group *{group.name}*: challenger `{challenger.name}` breached a rule "
                    f"over the last {window / 60:.0f} min, so its traffic was set to 0% "
                    f"(change #{proposal.change.id})."
                )
                message.context(why[:2000])
                message.context(versus.words[:2000])
                kernel.notify.notify(
                    "groups", message, severity="warning",
                    key=f"group-guard:{group.name}:{proposal.change.id}",
                )  # fmt: skip
            elif versus.ready:
                report.ready.append(group.name)
                message = Message(fallback=f"Group {group.name}: ready to promote")
                message.text(
                    f"✅ Group *{group.name}*: challenger `{challenger.name}` passed every rule "
                    f"over the last {window / 60:.0f} min — ready to promote."
                )
                message.context(versus.words[:2000])
                message.buttons(
                    Button(
                        "Promote",
                        f"group promote {group.name}",
                        style="primary",
                        confirm=f"Propose promoting {challenger.name} in {group.name}?",
                    )
                )
                kernel.notify.notify(
                    "groups", message, key=f"group-ready:{group.name}:{group.revision}"
                )
    return report


def observations(report: GuardReport) -> dict[str, list[Any]]:
    return {BREACH_RULE: list(report.observations)}
