"""Comparison of a group's members: aggregates in SQL, tests with scipy, verdicts in words.

Counts, errors, percentiles and token rates are computed by the database over every row in the
window (PostgreSQL: ``percentile_cont``; SQLite: an ordered offset per member), never by loading
rows into Python. The significance tests need samples: latency is compared on a random sample
of at most ``SAMPLE`` successful requests per member (Mann-Whitney U, and a bootstrap of the p95
ratio for its confidence interval); error rates with a two-proportion z-test on the exact counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from modelarium.core.groups.views import GroupView, Rules

SAMPLE = 5000
BOOTSTRAP = 1000
QUANTILES = (0.5, 0.95, 0.99)


@dataclass
class MemberStats:
    member: str
    role: str
    requests: int = 0
    errors: int = 0
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    tokens_per_s: float | None = None
    sample: list[float] = field(default_factory=list, repr=False)

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    def to_json(self) -> dict[str, Any]:
        return {
            "member": self.member,
            "role": self.role,
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": self.error_rate,
            "latency_ms": {"p50": self.p50, "p95": self.p95, "p99": self.p99},
            "tokens_per_s": self.tokens_per_s,
        }


@dataclass(frozen=True)
class RuleResult:
    rule: str
    passed: bool
    breached: bool
    """Failed with significance (what the guard acts on); a rule can fail without breaching
    (too few requests, or a difference that is not significant)."""
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"rule": self.rule, "passed": self.passed, "breached": self.breached,
                "detail": self.detail}  # fmt: skip


@dataclass
class Versus:
    """A challenger against the champion."""

    challenger: str
    p95_change: float | None = None
    """Relative change of p95 (-0.12: 12% lower)."""
    p95_ci: tuple[float, float] | None = None
    latency_p: float | None = None
    """Mann-Whitney U, two-sided."""
    slower_p: float | None = None
    """Mann-Whitney U, one-sided: the challenger slower."""
    error_diff: float | None = None
    error_ci: tuple[float, float] | None = None
    error_p: float | None = None
    worse_errors_p: float | None = None
    rules: list[RuleResult] = field(default_factory=list)
    verdict: str = ""
    words: str = ""

    @property
    def breached(self) -> list[RuleResult]:
        return [r for r in self.rules if r.breached]

    @property
    def ready(self) -> bool:
        return bool(self.rules) and all(r.passed for r in self.rules)

    def to_json(self) -> dict[str, Any]:
        return {
            "challenger": self.challenger,
            "p95_change": self.p95_change,
            "p95_change_ci": list(self.p95_ci) if self.p95_ci else None,
            "latency_p_value": self.latency_p,
            "error_rate_diff": self.error_diff,
            "error_rate_diff_ci": list(self.error_ci) if self.error_ci else None,
            "error_p_value": self.error_p,
            "rules": [r.to_json() for r in self.rules],
            "ready": self.ready,
            "verdict": self.verdict,
            "summary": self.words,
        }


@dataclass
class Comparison:
    group: str
    since: float
    until: float
    members: list[MemberStats]
    versus: list[Versus]
    rows: int
    """Rows in the window (every member)."""

    def member(self, name: str) -> MemberStats | None:
        return next((m for m in self.members if m.member == name), None)

    @property
    def verdict(self) -> str:
        if not self.versus:
            return "no challenger to compare"
        return "; ".join(f"{v.challenger}: {v.words}" for v in self.versus)

    def to_json(self) -> dict[str, Any]:
        verdicts = {v.challenger: v for v in self.versus}
        return {
            "group": self.group,
            "since": self.since,
            "until": self.until,
            "rows": self.rows,
            "members": {
                m.member: {
                    **{k: v for k, v in m.to_json().items() if k != "member"},
                    "verdict": verdicts[m.member].verdict if m.member in verdicts else None,
                }
                for m in self.members
            },
            "comparisons": [v.to_json() for v in self.versus],
            "verdict": self.verdict,
        }


# -- SQL -------------------------------------------------------------------------------------
def aggregates(
    connection: sa.Connection, table: sa.Table, since: float, until: float
) -> tuple[dict[str, MemberStats], int]:
    """Per member: requests, errors, percentiles of successful latencies, tokens per second."""
    c = table.c
    window = sa.and_(c.ts >= since, c.ts < until)
    ok = sa.case((c.ok, 1), else_=0)
    rows = connection.execute(
        sa.select(
            c.member,
            sa.func.count(),
            sa.func.sum(1 - ok),
            sa.func.sum(sa.case((sa.and_(c.ok, c.completion_tokens.is_not(None)),
                                 c.completion_tokens), else_=0)),
            sa.func.sum(sa.case((sa.and_(c.ok, c.completion_tokens.is_not(None)),
                                 c.latency_ms), else_=0.0)),
        ).where(window).group_by(c.member)
    ).all()  # fmt: skip
    found: dict[str, MemberStats] = {}
    total = 0
    for member, count, errors, tokens, busy_ms in rows:
        stats = MemberStats(member, "", int(count), int(errors or 0))
        if tokens and busy_ms:
            stats.tokens_per_s = float(tokens) / (float(busy_ms) / 1000.0)
        found[member] = stats
        total += int(count)
    if connection.dialect.name == "postgresql":
        quantiles = sa.func.percentile_cont(sa.literal(list(QUANTILES), sa.ARRAY(sa.Float)))
        rows = connection.execute(
            sa.select(c.member, quantiles.within_group(c.latency_ms))
            .where(window, c.ok, c.latency_ms.is_not(None))
            .group_by(c.member)
        ).all()
        for member, values in rows:
            if member in found and values:
                found[member].p50, found[member].p95, found[member].p99 = (float(v) for v in values)
    else:
        for member, stats in found.items():
            where = sa.and_(window, c.member == member, c.ok, c.latency_ms.is_not(None))
            n = int(connection.scalar(sa.select(sa.func.count()).select_from(table).where(where)))
            if not n:
                continue
            values = []
            for q in QUANTILES:
                values.append(_interpolated(connection, table, where, n, q))
            stats.p50, stats.p95, stats.p99 = values
    return found, total


def _interpolated(
    connection: sa.Connection, table: sa.Table, where: Any, n: int, q: float
) -> float:
    """``percentile_cont`` on SQLite: the two neighbouring ranks, linearly interpolated."""
    position = q * (n - 1)
    low = math.floor(position)
    values = connection.scalars(
        sa.select(table.c.latency_ms).where(where).order_by(table.c.latency_ms)
        .offset(low).limit(2)
    ).all()  # fmt: skip
    if len(values) == 1:
        return float(values[0])
    return float(values[0]) + (position - low) * (float(values[1]) - float(values[0]))


def samples(
    connection: sa.Connection, table: sa.Table, member: str, since: float, until: float
) -> list[float]:
    """A random sample of successful latencies (all of them when there are fewer)."""
    c = table.c
    return [
        float(v)
        for v in connection.scalars(
            sa.select(c.latency_ms)
            .where(c.ts >= since, c.ts < until, c.member == member, c.ok,
                   c.latency_ms.is_not(None))
            .order_by(sa.func.random())
            .limit(SAMPLE)
        )
    ]  # fmt: skip


# -- tests and words -------------------------------------------------------------------------
def two_proportions(e1: int, n1: int, e2: int, n2: int) -> tuple[float, tuple[float, float], float,
                                                                  float]:  # fmt: skip
    """Difference p2 - p1, its 95% CI (Wald), the two-sided p-value and the one-sided p-value
    of p2 > p1 (pooled z-test)."""
    p1, p2 = e1 / n1, e2 / n2
    diff = p2 - p1
    se = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    ci = (diff - 1.96 * se, diff + 1.96 * se)
    pooled = (e1 + e2) / (n1 + n2)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se0 == 0:
        return diff, ci, 1.0, 1.0
    z = diff / se0
    from scipy import stats as sps  # here, not at the top: see versus()

    return diff, ci, float(2 * sps.norm.sf(abs(z))), float(sps.norm.sf(z))


def p95_ratio_ci(champion: list[float], challenger: list[float], seed: int = 0
                 ) -> tuple[float, float]:  # fmt: skip
    """95% bootstrap interval of p95(challenger) / p95(champion)."""
    import numpy as np  # here, not at the top: see versus()

    rng = np.random.default_rng(seed)
    a, b = np.asarray(champion), np.asarray(challenger)
    ia = rng.integers(0, len(a), size=(BOOTSTRAP, len(a)))
    ib = rng.integers(0, len(b), size=(BOOTSTRAP, len(b)))
    ratios = np.percentile(b[ib], 95, axis=1) / np.maximum(np.percentile(a[ia], 95, axis=1), 1e-9)
    low, high = np.percentile(ratios, [2.5, 97.5])
    return float(low), float(high)


def _p(value: float) -> str:
    """A p-value in words; below double precision it reads ``p < 1e-300``, never ``p = 0``."""
    return f"p = {value:.3g}" if value >= 1e-300 else "p < 1e-300"


def _pct(value: float) -> str:
    return f"{value * 100:.1f}%" if abs(value) < 0.1 else f"{value * 100:.0f}%"


def versus(champion: MemberStats, challenger: MemberStats, rules: Rules) -> Versus:
    # numpy and scipy are imported when a comparison is computed: importing them costs about a
    # second of CPU, which every process (`modelarium cmd`, the daemon, each test worker) paid
    # at start when they were imported with this module.
    import numpy as np
    from scipy import stats as sps

    v = Versus(challenger.member)
    alpha = rules.significance
    enough = champion.requests >= rules.min_requests and challenger.requests >= rules.min_requests
    short = [
        f"{m.member} has {m.requests:,} ({rules.min_requests - m.requests:,} more needed)"
        for m in (champion, challenger)
        if m.requests < rules.min_requests
    ]
    v.rules.append(
        RuleResult(
            "min_requests",
            enough,
            False,
            f"every member needs {rules.min_requests:,} requests"
            + (": " + "; ".join(short) if short else ": met"),
        )
    )
    words: list[str] = []
    # latency
    if champion.sample and challenger.sample and champion.p95 and challenger.p95:
        v.p95_change = challenger.p95 / champion.p95 - 1
        low, high = p95_ratio_ci(champion.sample, challenger.sample)
        # The bootstrap runs on the samples; centre it on the exact (SQL) ratio.
        scale = (challenger.p95 / champion.p95) / max(
            float(np.percentile(challenger.sample, 95))
            / max(float(np.percentile(champion.sample, 95)), 1e-9),
            1e-9,
        )
        v.p95_ci = (low * scale - 1, high * scale - 1)
        test = sps.mannwhitneyu(challenger.sample, champion.sample, alternative="two-sided")
        v.latency_p = float(test.pvalue)
        v.slower_p = float(
            sps.mannwhitneyu(challenger.sample, champion.sample, alternative="greater").pvalue
        )
        direction = "lower" if v.p95_change < 0 else "higher"
        ci = (
            f"95% CI {_pct(-v.p95_ci[1])} to {_pct(-v.p95_ci[0])} lower"
            if v.p95_change < 0
            else f"95% CI {_pct(v.p95_ci[0])} to {_pct(v.p95_ci[1])} higher"
        )
        significant = v.latency_p < alpha
        words.append(
            f"challenger p95 {_pct(abs(v.p95_change))} {direction} ({ci}), "
            f"n = {challenger.requests:,} vs {champion.requests:,}"
            + ("" if significant else ", not significant")
        )
        ratio = 1 + v.p95_change
        slower = v.slower_p < alpha
        over = ratio > rules.max_p95_ratio
        v.rules.append(
            RuleResult(
                "max_p95_ratio",
                enough and not over,
                enough and over and slower,
                f"p95 ratio {ratio:.2f} (at most {rules.max_p95_ratio:g})"
                + (f", significant ({_p(v.slower_p)})" if over and slower else ""),
            )
        )
    else:
        v.rules.append(
            RuleResult("max_p95_ratio", False, False, "no successful requests to compare")
        )
    # errors
    if champion.requests and challenger.requests:
        v.error_diff, v.error_ci, v.error_p, v.worse_errors_p = two_proportions(
            champion.errors, champion.requests, challenger.errors, challenger.requests
        )
        significant = v.error_p < alpha
        words.append(
            f"error rates {_pct(challenger.error_rate or 0)} vs {_pct(champion.error_rate or 0)}"
            + (
                f", significantly {'higher' if v.error_diff > 0 else 'lower'} ({_p(v.error_p)})"
                if significant
                else ", no significant difference"
            )
        )
        over = v.error_diff > rules.max_error_increase
        worse = v.worse_errors_p < alpha
        v.rules.append(
            RuleResult(
                "max_error_increase",
                enough and not over,
                enough and over and worse,
                f"error rate {_pct(v.error_diff)} points vs the champion (at most "
                f"+{_pct(rules.max_error_increase)})"
                + (f", significant ({_p(v.worse_errors_p)})" if over and worse else ""),
            )
        )
    else:
        v.rules.append(RuleResult("max_error_increase", False, False, "no requests to compare"))
    if v.breached:
        v.verdict = "worse"
    elif not enough:
        v.verdict = "too few requests"
    elif v.ready:
        faster = v.latency_p is not None and v.latency_p < alpha and (v.p95_change or 0) < 0
        slower = v.latency_p is not None and v.latency_p < alpha and (v.p95_change or 0) > 0
        fewer = v.error_p is not None and v.error_p < alpha and (v.error_diff or 0) < 0
        more = v.error_p is not None and v.error_p < alpha and (v.error_diff or 0) > 0
        if (faster or fewer) and not (slower or more):
            v.verdict = "better"
        elif (slower or more) and not (faster or fewer):
            v.verdict = "worse, within the rules"
        elif faster or fewer:
            v.verdict = "mixed, within the rules"
        else:
            v.verdict = "no significant difference"
    else:
        v.verdict = "fails a rule (not significantly)"
    v.words = "; ".join(words) or "no data yet"
    if v.verdict == "too few requests":
        v.words += "; too few requests: " + v.rules[0].detail
    return v


def compare(
    connection: sa.Connection, table: sa.Table, group: GroupView, since: float, until: float
) -> Comparison:
    found, total = aggregates(connection, table, since, until)
    members: list[MemberStats] = []
    for member in group.active:
        stats = found.pop(member.name, None) or MemberStats(member.name, "")
        stats.role = member.role
        members.append(stats)
    for name, stats in sorted(found.items()):  # retired members with rows in the window
        stats.role = group.member(name).role if group.member(name) else "unknown"
        members.append(stats)
    champion = next((m for m in members if m.role == "champion"), None)
    result: list[Versus] = []
    if champion is not None:
        for stats in members:
            if stats.role == "champion" or (stats.requests == 0 and stats.role != "challenger"):
                continue
            if stats.role != "challenger":
                continue
            for m in (champion, stats):
                if not m.sample and m.requests:
                    m.sample = samples(connection, table, m.member, since, until)
            result.append(versus(champion, stats, group.rules))
    return Comparison(group.name, since, until, members, result, total)


def over_time(
    connection: sa.Connection, table: sa.Table, since: float, until: float, buckets: int = 24
) -> dict[str, list[tuple[float, int, int]]]:
    """Per member: (bucket start, requests, errors) over the window, counted in SQL."""
    c = table.c
    width = max(1.0, (until - since) / buckets)
    bucket = sa.func.floor((c.ts - since) / width)
    rows = connection.execute(
        sa.select(c.member, bucket, sa.func.count(), sa.func.sum(sa.case((c.ok, 0), else_=1)))
        .where(c.ts >= since, c.ts < until)
        .group_by(c.member, bucket)
        .order_by(c.member, bucket)
    ).all()
    series: dict[str, list[tuple[float, int, int]]] = {}
    for member, index, count, errors in rows:
        series.setdefault(member, []).append(
            (since + float(index) * width, int(count), int(errors or 0))
        )
    return series
