"""Prometheus metrics shared by the bot and the daemon (served on ``/metrics``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

COMMAND_LATENCY = Histogram(
    "modelarium_command_seconds",
    "Time to handle a command, by command and outcome.",
    ["command", "outcome"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
ACK_LATENCY = Histogram(
    "modelarium_slack_ack_seconds",
    "Time from receiving a Slack request to acknowledging it.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 3),
)
SLACK_REFUSED = Counter(
    "modelarium_slack_refused_total",
    "Requests to POST /slack/events refused before bolt saw them, by reason.",
    ["reason"],
)
TASK_RUNS = Counter("modelarium_task_runs_total", "Periodic task runs.", ["task", "status"])
TASK_FAILURES = Counter("modelarium_task_failures_total", "Periodic task failures.", ["task"])
JOB_QUEUE_DEPTH = Gauge("modelarium_job_queue_depth", "Queued jobs, by kind.", ["kind"])
JOB_DURATION = Histogram(
    "modelarium_job_seconds",
    "Job run time, by kind and final status.",
    ["kind", "status"],
    buckets=(1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 12 * 3600),
)
ALERTS_FIRING = Gauge("modelarium_alerts_firing", "Alerts currently firing, by rule.", ["rule"])
NOTIFY_DELIVERIES = Counter(
    "modelarium_notify_deliveries_total", "Chat and webhook deliveries.", ["channel", "outcome"]
)
LEADER = Gauge("modelarium_scheduler_leader", "1 if this daemon holds the scheduler lease.")
