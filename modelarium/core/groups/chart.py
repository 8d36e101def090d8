"""The comparison chart: latency distributions per member, error rate and p95 over time (PNG).

matplotlib with the Agg backend (no display). Distributions and p95 per time bucket come from
the same random sample of at most ``stats.SAMPLE`` successful requests per member that the tests
use; error rates per bucket are counted in SQL over every row.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import sqlalchemy as sa

from modelarium.core.groups import stats


def timed_samples(
    connection: sa.Connection, table: sa.Table, member: str, since: float, until: float
) -> list[tuple[float, float]]:
    c = table.c
    rows = connection.execute(
        sa.select(c.ts, c.latency_ms)
        .where(c.ts >= since, c.ts < until, c.member == member, c.ok, c.latency_ms.is_not(None))
        .order_by(sa.func.random())
        .limit(stats.SAMPLE)
    ).all()
    return [(float(t), float(v)) for t, v in rows]


def render(
    comparison: stats.Comparison,
    series: dict[str, list[tuple[float, int, int]]],
    latencies: dict[str, list[tuple[float, float]]],
    buckets: int = 24,
) -> bytes:
    figure, (dist, errors, p95) = plt.subplots(1, 3, figsize=(15, 4.2), dpi=90)
    figure.suptitle(f"Group {comparison.group}: {comparison.rows:,} requests")
    since, until = comparison.since, comparison.until
    width = max(1.0, (until - since) / buckets)
    for member in comparison.members:
        label = f"{member.member} ({member.role})"
        values = [v for _, v in latencies.get(member.member, [])]
        if values:
            dist.hist(values, bins=40, alpha=0.5, label=label)
        points = series.get(member.member, [])
        if points:
            xs = [datetime.fromtimestamp(t, UTC) for t, _, _ in points]
            errors.plot(xs, [100.0 * e / n if n else 0 for _, n, e in points], marker=".",
                        label=label)  # fmt: skip
        timed = latencies.get(member.member, [])
        if timed:
            grouped: dict[int, list[float]] = {}
            for t, v in timed:
                grouped.setdefault(int((t - since) // width), []).append(v)
            keys = sorted(grouped)
            p95.plot(
                [datetime.fromtimestamp(since + k * width, UTC) for k in keys],
                [float(np.percentile(grouped[k], 95)) for k in keys],
                marker=".",
                label=label,
            )
    dist.set_title("latency distribution (ms)")
    dist.set_xlabel("ms")
    errors.set_title("error rate over time (%)")
    p95.set_title("p95 latency over time (ms)")
    for axis in (dist, errors, p95):
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=7)
    for axis in (errors, p95):
        axis.tick_params(axis="x", labelrotation=30, labelsize=7)
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png")
    plt.close(figure)
    return out.getvalue()


def chart(service: Any, comparison: stats.Comparison) -> bytes:
    group = service.get(comparison.group)
    table = service.table(group)
    with service.kernel.db.engine.connect() as connection:
        series = stats.over_time(connection, table, comparison.since, comparison.until)
        latencies = {
            m.member: timed_samples(connection, table, m.member, comparison.since,
                                    comparison.until)
            for m in comparison.members
        }  # fmt: skip
    return render(comparison, series, latencies)
