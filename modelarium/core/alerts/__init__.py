"""Threshold alerts: inactive -> pending -> firing -> resolved, with silences and grouping."""

from modelarium.core.alerts.service import (
    AlertRule,
    AlertService,
    AlertView,
    EvaluationReport,
    Observation,
    SilenceView,
    fingerprint,
)

__all__ = [
    "AlertRule",
    "AlertService",
    "AlertView",
    "EvaluationReport",
    "Observation",
    "SilenceView",
    "fingerprint",
]
