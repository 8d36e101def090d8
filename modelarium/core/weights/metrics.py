"""Prometheus metrics of the weights capability (served with the rest on ``/metrics``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

BYTES_USED = Gauge(
    "modelarium_weights_bytes_used", "Bytes used in a weights storage location.", ["location"]
)
BYTES_FREE = Gauge(
    "modelarium_weights_bytes_free",
    "Bytes still writable in a weights storage location.",
    ["location"],
)
BYTES_TOTAL = Gauge(
    "modelarium_weights_bytes_total",
    "Capacity of a weights storage location (its quota, else its filesystem).",
    ["location"],
)
INSTALL_SECONDS = Histogram(
    "modelarium_weights_install_seconds",
    "Time from the start of an install to its activation, by outcome.",
    ["location", "outcome"],
    buckets=(1, 5, 15, 60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600),
)
BYTES_DOWNLOADED = Counter(
    "modelarium_weights_downloaded_bytes_total",
    "Bytes of model weights received from the hub (resumed bytes are not counted again).",
    ["location"],
)
VERIFY_FAILURES = Counter(
    "modelarium_weights_verify_failures_total",
    "Files whose content did not match the hub's hash (at install or re-verify).",
    ["location", "stage"],
)
PURGED_BYTES = Counter(
    "modelarium_weights_purged_bytes_total", "Bytes freed by purges.", ["location"]
)
