"""Retention: the newest backup of each of the last N days and M ISO weeks that have one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from modelarium.core.backups import BackupInfo, plan_retention


def _backup(when: datetime, kind: str = "scheduled") -> BackupInfo:
    name = f"modelarium-{when:%Y%m%d-%H%M%S}"
    return BackupInfo(
        name=name,
        file=f"{name}.sqlite3",
        created_at=when,
        kind=kind,
        dialect="sqlite",
        format="sqlite3",
        size=1,
        sha256="0" * 64,
        revisions=["0001"],
        audit_entries=0,
        created_by="daemon",
        modelarium_version="0",
    )


START = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)  # a Monday


def test_newest_of_each_day_then_of_each_week() -> None:
    # Two backups a day for 21 days.
    backups = [_backup(START + timedelta(hours=12 * n)) for n in range(42)]
    plan = plan_retention(backups, daily=3, weekly=2)
    kept = sorted(plan.keep)
    newest_per_day = [b.name for b in backups[1::2]]  # the 14:00 one of each day
    assert newest_per_day[-3:] == kept[-3:]
    assert plan.keep[newest_per_day[-1]] == ["daily 2026-01-25", "weekly 2026-W04"]
    # Week 3 (Jan 12-18): its newest backup is Sunday's.
    assert plan.keep[newest_per_day[13]] == ["weekly 2026-W03"]
    assert len(kept) == 4
    assert len(plan.remove) == 42 - 4


def test_periods_without_backups_do_not_count() -> None:
    # The daemon was down for ten days: the older backups still fill the daily slots.
    backups = [_backup(START), _backup(START + timedelta(days=1))]
    backups += [_backup(START + timedelta(days=12 + n)) for n in range(2)]
    plan = plan_retention(backups, daily=4, weekly=0)
    assert sorted(plan.keep) == sorted(b.name for b in backups)
    assert plan.remove == []


def test_manual_backups_are_never_pruned_and_the_newest_is_always_kept() -> None:
    manual = _backup(START - timedelta(days=300), kind="manual")
    scheduled = [_backup(START + timedelta(days=n)) for n in range(5)]
    plan = plan_retention([manual, *scheduled], daily=0, weekly=0)
    assert plan.keep == {manual.name: ["manual"], scheduled[-1].name: ["newest"]}
    assert [b.name for b in plan.remove] == [b.name for b in reversed(scheduled[:-1])]
