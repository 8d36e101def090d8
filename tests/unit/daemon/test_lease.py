"""Leader election by lease: acquire, renew, expiry takeover, release, fencing token."""

from __future__ import annotations

import threading

from modelarium.core.scheduling import LeaseManager


def _lease(core, holder: str, ttl: float = 10.0) -> LeaseManager:
    return LeaseManager(core.db, core.clock, name="scheduler", holder=holder, ttl=ttl)


def test_one_holder_at_a_time_and_renewal_keeps_the_token(core, clock):
    a, b = _lease(core, "a"), _lease(core, "b")
    first = a.acquire_or_renew()
    assert first is not None
    assert first.holder == "a"
    assert b.acquire_or_renew() is None

    clock.advance(8)  # renew before expiry
    renewed = a.acquire_or_renew()
    assert renewed == first, "renewal keeps the fencing token"
    clock.advance(8)  # 16 s after the first acquire, but only 8 s after the renewal
    assert b.acquire_or_renew() is None
    assert a.current() == ("a", first.token, True)


def test_an_expired_lease_is_taken_over_with_a_higher_token_and_fences_the_old_holder(core, clock):
    a, b = _lease(core, "a"), _lease(core, "b")
    old = a.acquire_or_renew()
    assert old is not None
    clock.advance(10)  # expires_at <= now: expired
    new = b.acquire_or_renew()
    assert new is not None
    assert new.holder == "b"
    assert new.token == old.token + 1

    with core.db.transaction() as session:
        assert not a.still_valid(session, old.token), "the old holder is fenced off"
    with core.db.transaction() as session:
        assert b.still_valid(session, new.token)
    # The old holder cannot renew its way back in while b's lease is live.
    assert a.acquire_or_renew() is None


def test_release_hands_over_at_once(core, clock):
    a, b = _lease(core, "a"), _lease(core, "b")
    token = a.acquire_or_renew().token
    a.release()
    new = b.acquire_or_renew()
    assert new is not None
    assert new.token == token + 1
    assert a.current() == ("b", token + 1, True)


def test_a_stale_token_is_invalid_even_for_the_same_holder(core, clock):
    a, b = _lease(core, "a"), _lease(core, "b")
    first = a.acquire_or_renew()
    clock.advance(11)
    b.acquire_or_renew()
    clock.advance(11)
    again = a.acquire_or_renew()
    assert again is not None
    assert again.token == first.token + 2
    with core.db.transaction() as session:
        assert not a.still_valid(session, first.token)
        assert a.still_valid(session, again.token)


def test_concurrent_candidates_elect_exactly_one_leader(core, clock):
    """Many replicas racing for an expired lease (real threads, each its own connection)."""
    a = _lease(core, "old")
    a.acquire_or_renew()
    clock.advance(60)
    candidates = [_lease(core, f"c{i}") for i in range(8)]
    results: dict[str, object] = {}
    barrier = threading.Barrier(len(candidates))

    def run(lease: LeaseManager) -> None:
        barrier.wait()
        results[lease.holder] = lease.acquire_or_renew()

    threads = [threading.Thread(target=run, args=(c,)) for c in candidates]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    winners = [h for h, r in results.items() if r is not None]
    assert len(results) == len(candidates)
    assert len(winners) == 1, results
    assert results[winners[0]].token == 2
