"""Three real daemon processes on one PostgreSQL database: one leader, exactly one run per tick.

The probe task (``daemon_entry.py``) writes a row for every real execution, independently of the
task ledger, so "no tick ran twice" is checked against what actually executed rather than against
the ledger's own unique constraint.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from modelarium.core.scheduling import tick_of
from tests.integration.daemon.conftest import wait_until

# Several daemon processes on a wall-clock schedule: these tests share one xdist worker, so
# two sets of daemons never compete for the CPUs at once.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("daemons")]

LEASE = 3.0
RENEW = LEASE / 3  # Scheduler.start renews every lease/3
INTERVAL = 1.0


def _lease(engine: sa.Engine) -> tuple[str, int, datetime] | None:
    with engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT holder, token, expires_at FROM leases WHERE name = 'scheduler'")
        ).first()
    return (row[0], int(row[1]), row[2]) if row and row[0] else None


def _pid_of(holder: str) -> int:
    # worker_identity(): "daemon@<host>:<pid>:<random>"
    return int(holder.rsplit(":", 2)[1])


def _probe_runs(engine: sa.Engine) -> list[tuple[int, datetime]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT pid, ran_at FROM probe_runs ORDER BY id")).all()
    return [(int(pid), at.astimezone(UTC)) for pid, at in rows]


def _ticks(runs: list[tuple[int, datetime]]) -> list[datetime]:
    return [tick_of(at, INTERVAL) for _pid, at in runs]


def _assert_no_tick_twice(runs: list[tuple[int, datetime]]) -> None:
    twice = {tick: n for tick, n in Counter(_ticks(runs)).items() if n > 1}
    assert not twice, f"ticks that ran more than once: {twice}; runs: {runs}"


def _assert_contiguous(ticks: list[datetime], what: str) -> None:
    """A living leader runs the task tick after tick.

    Not every tick: a tick whose previous run is still going is skipped (a task never overlaps
    itself) and ticks missed while the process was starved of CPU are coalesced into one run, so
    a loaded machine can leave a hole or two. A leader that stops running its tasks (leadership
    flapping, a stuck scheduler) leaves most of its span empty.
    """
    seconds = sorted(int(t.timestamp()) for t in ticks)
    span = range(seconds[0], seconds[-1] + 1)
    missing = sorted(set(span) - set(seconds))
    assert len(missing) * 2 < len(span), f"{what}: ticks with no run: {missing} of {len(span)}"


def _daemon_env() -> dict[str, str]:
    return {
        "MODELARIUM_LEADER_LEASE": f"{LEASE}s",
        "MODELARIUM_JOB_WORKERS": "0",
        "PROBE_INTERVAL": str(INTERVAL),
    }


def test_sigkilled_leader_is_replaced_within_the_lease_and_no_tick_runs_twice(
    probe_db, spawn_daemon
):
    daemons = [spawn_daemon(**_daemon_env()) for _ in range(3)]
    by_pid = {d.pid: d for d in daemons}

    lease = wait_until(lambda: _lease(probe_db), 30, "a daemon to take the scheduler lease")
    leader_pid = _pid_of(lease[0])
    assert leader_pid in by_pid
    wait_until(lambda: len(_probe_runs(probe_db)) >= 4, 20, "four probe runs")

    # /healthz of every replica: all healthy, exactly one reports itself leader.
    health = {d.pid: wait_until(d.health, 20, "healthz") for d in daemons}
    assert all(status == 200 for status, _ in health.values()), health
    roles = {pid: body["checks"]["scheduler"]["detail"] for pid, (_s, body) in health.items()}
    assert roles[leader_pid] == "leader"
    assert sorted(roles.values()) == ["leader", "standby", "standby"], roles

    before = _probe_runs(probe_db)
    assert {pid for pid, _ in before} == {leader_pid}, "only the leader runs periodic tasks"

    leader = by_pid[leader_pid]
    killed_at = time.monotonic()
    leader.proc.send_signal(signal.SIGKILL)
    leader.proc.wait(5)
    dead = _lease(probe_db)  # the dead leader's last renewal: it can renew no more
    assert dead is not None
    assert dead[0] == lease[0]

    def new_leader() -> tuple[str, int, datetime] | None:
        current = _lease(probe_db)
        return current if current and current[0] != lease[0] else None

    successor = wait_until(new_leader, 3 * LEASE, "another daemon to take over", interval=0.02)
    takeover = time.monotonic() - killed_at
    successor_pid = _pid_of(successor[0])
    assert successor_pid in by_pid
    assert successor_pid != leader_pid
    assert by_pid[successor_pid].alive()
    assert successor[1] > lease[1], "a new holder gets a higher fencing token"
    # Safety: nobody took the lease before the dead leader's lease ran out. Liveness: a standby
    # took it at its first renewal attempt after that (they try every RENEW seconds).
    acquired_at = successor[2] - timedelta(seconds=LEASE)
    after_expiry = (acquired_at - dead[2]).total_seconds()
    assert after_expiry >= 0, "taken over while the old lease was still live"
    # (Each bound allows a second for a loaded machine's scheduling; a standby that did not
    # retry every RENEW seconds would miss them by whole renewals.)
    assert after_expiry <= RENEW + 1.0, f"taken over {after_expiry:.2f}s after the lease ran out"
    # Measured from the kill that is at most LEASE (time left on the lease) + RENEW.
    assert takeover <= LEASE + RENEW + 1.0, f"takeover took {takeover:.2f}s"
    print(
        f"\ntakeover after SIGKILL: {takeover:.2f}s, {after_expiry:.2f}s after the dead"
        f" leader's lease ran out (lease {LEASE}s, renewals every {RENEW:.1f}s)"
    )

    wait_until(
        lambda: sum(1 for pid, _ in _probe_runs(probe_db) if pid == successor_pid) >= 4,
        20,
        "four probe runs by the new leader",
    )
    runs = _probe_runs(probe_db)
    _assert_no_tick_twice(runs)
    assert {pid for pid, _ in runs} <= {leader_pid, successor_pid}
    _assert_contiguous(
        [t for (pid, _), t in zip(runs, _ticks(runs), strict=True) if pid == leader_pid],
        "first leader",
    )
    _assert_contiguous(
        [t for (pid, _), t in zip(runs, _ticks(runs), strict=True) if pid == successor_pid],
        "second leader",
    )

    # The ledger agrees with what really executed: one row per tick, tagged with each leader's
    # fencing token.
    with probe_db.connect() as conn:
        ledger = conn.execute(
            sa.text("SELECT holder, fencing_token, status FROM task_runs WHERE task = 'probe'")
        ).all()
    assert len(ledger) >= len(runs)
    assert {row.fencing_token for row in ledger if _pid_of(row.holder) == successor_pid} == {
        successor[1]
    }

    # Graceful stop (SIGTERM) of the new leader releases the lease at once.
    survivor = next(d for d in daemons if d.alive() and d.pid != successor_pid)
    by_pid[successor_pid].proc.send_signal(signal.SIGTERM)
    assert by_pid[successor_pid].proc.wait(15) == 0
    third = wait_until(
        lambda: (c := _lease(probe_db)) and _pid_of(c[0]) == survivor.pid and c,
        RENEW + 2,
        "the last daemon to take over after a graceful stop",
        interval=0.02,
    )
    assert third[1] > successor[1]
    _assert_no_tick_twice(_probe_runs(probe_db))


def test_a_paused_leader_cannot_run_a_tick_after_losing_its_lease(probe_db, spawn_daemon):
    """SIGSTOP the leader past its lease (a GC pause, a frozen VM), let another take over, then
    SIGCONT it: it wakes up believing it leads, and must neither run ticks nor keep the lease."""
    daemons = [spawn_daemon(**_daemon_env()) for _ in range(2)]
    by_pid = {d.pid: d for d in daemons}
    for d in daemons:
        assert wait_until(d.health, 30, "healthz")[0] == 200
    lease = wait_until(lambda: _lease(probe_db), 30, "a leader")
    paused = by_pid[_pid_of(lease[0])]
    other = next(d for d in daemons if d is not paused)
    wait_until(lambda: len(_probe_runs(probe_db)) >= 2, 20, "probe runs")

    paused.proc.send_signal(signal.SIGSTOP)
    try:
        wait_until(
            lambda: (c := _lease(probe_db)) and _pid_of(c[0]) == other.pid,
            3 * LEASE,
            "the other daemon to take over",
        )
        took_over_at = datetime.now(UTC)
        time.sleep(1.5 * INTERVAL)
    finally:
        # Resume it. (If it was paused inside a transaction, its row locks also held back the
        # new leader's bookkeeping until now: a PostgreSQL session blocks others while paused.)
        paused.proc.send_signal(signal.SIGCONT)
    # The woken daemon fires its overdue jobs now, believing it still leads.
    wait_until(
        lambda: sum(1 for p, at in _probe_runs(probe_db) if p == other.pid) >= 3,
        10,
        "the new leader to run",
    )
    time.sleep(RENEW)

    runs = _probe_runs(probe_db)
    _assert_no_tick_twice(runs)
    late = [at for pid, at in runs if pid == paused.pid and at >= took_over_at]
    assert not late, f"the paused ex-leader ran after losing its lease: {late}"
    current = _lease(probe_db)
    assert current is not None
    assert _pid_of(current[0]) == other.pid
    _status, body = wait_until(paused.health, 10, "healthz of the woken daemon")
    assert body["checks"]["scheduler"]["detail"] == "standby"
    assert '"scheduler.lost_leadership"' in paused.log_text()
