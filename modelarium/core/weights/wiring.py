"""``core.weights`` and what it registers: change kinds, the verify job, the disk-usage rule."""

from __future__ import annotations

from typing import Any

from modelarium.core.alerts import AlertRule
from modelarium.core.jobs import JobKind
from modelarium.core.kernel import Kernel
from modelarium.core.ports import Ports
from modelarium.core.weights.changes import InstallChange, PurgeChange
from modelarium.core.weights.install import VERIFY_STAGES, InstallPipeline
from modelarium.core.weights.publish import (
    BUCKET_VERIFY_JOB,
    BucketVerify,
    PublishChange,
    describe_bucket_verify,
)
from modelarium.core.weights.service import DISK_USAGE_RULE, VERIFY_JOB, WeightsService
from modelarium.core.weights.upload import UploadChange


def _describe_verify(params: dict[str, Any]) -> str:
    return f"Verify {params['repo']}@{str(params.get('commit') or '')[:7]} in {params['location']}"


def build(kernel: Kernel, ports: Ports) -> WeightsService:
    return WeightsService(kernel, ports.weights_in_use)


def register(kernel: Kernel, weights: WeightsService, ports: Ports) -> None:
    pipeline = InstallPipeline(kernel, weights)
    kernel.changes.register(InstallChange(weights, pipeline))
    kernel.changes.register(PurgeChange(weights))
    kernel.jobs.register(JobKind(VERIFY_JOB, VERIFY_STAGES, pipeline.run_verify, _describe_verify))
    kernel.changes.register(PublishChange(weights, ports.catalog_storage))
    kernel.changes.register(UploadChange(weights))
    kernel.jobs.register(
        JobKind(BUCKET_VERIFY_JOB, ("verify",), BucketVerify(weights).run, describe_bucket_verify)
    )
    # One rule, one instance per location (``disk_usage{location=...}``), as the alert commands
    # expect. Each observation carries its location's high watermark as the threshold, so the
    # alert fires on the same line that triggers the purge; the proposed purge change with its
    # approval buttons is posted beside the alert.
    kernel.alerts.register(
        AlertRule(
            name=DISK_USAGE_RULE,
            summary="Weights location {location} is {value:.0%} full",
            op=">=",
            threshold=0.85,  # overridden per location by its high_watermark
            severity="warning",
            kind="storage",
        )
    )
