"""Which scheduled backups to keep: the newest of each of the last N days and M ISO weeks.

The rule is restic's and Borg's ``--keep-daily``/``--keep-weekly``: periods count only when they
hold a backup, so a daemon that was down for a week does not lose its older backups for it.
Manual backups are never pruned; the newest backup is always kept.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from modelarium.core.backups.model import BackupInfo


@dataclass(frozen=True)
class Retention:
    keep: dict[str, list[str]]
    """Backup name -> why it is kept (``daily 2026-12-06``, ``weekly 2026-W49``, ``manual``)."""
    remove: list[BackupInfo]


def _day(when: datetime) -> str:
    return when.date().isoformat()


def _week(when: datetime) -> str:
    year, week, _ = when.isocalendar()
    return f"{year}-W{week:02d}"


def plan_retention(backups: Sequence[BackupInfo], daily: int, weekly: int) -> Retention:
    keep: dict[str, list[str]] = {}
    newest_first = sorted(backups, key=lambda b: (b.created_at, b.name), reverse=True)
    scheduled = [b for b in newest_first if b.kind == "scheduled"]
    for b in newest_first:
        if b.kind != "scheduled":
            keep.setdefault(b.name, []).append(b.kind)
    rules: list[tuple[str, int, Callable[[datetime], str]]] = [
        ("daily", daily, _day),
        ("weekly", weekly, _week),
    ]
    for label, count, period in rules:
        seen: set[str] = set()
        for b in scheduled:
            if len(seen) >= count:
                break
            key = period(b.created_at)
            if key in seen:
                continue
            seen.add(key)
            keep.setdefault(b.name, []).append(f"{label} {key}")
    if scheduled and scheduled[0].name not in keep:
        keep[scheduled[0].name] = ["newest"]
    return Retention(keep, [b for b in scheduled if b.name not in keep])
