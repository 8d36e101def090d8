"""Discovery tasks: keep hot Hub answers, the GPU inventory and the vLLM table fresh; alert when
an installed model no longer fits any GPU type."""

from __future__ import annotations

from modelarium.core.app import Core
from modelarium.core.errors import UpstreamError
from modelarium.core.hub import FIT_RULE, check_installed
from modelarium.core.scheduling import PeriodicTask, TaskResult


def register(core: Core, fronts: object = None) -> None:
    settings = core.settings

    def cache_refresh() -> TaskResult:
        # Entries used since the last-but-one run; older ones may expire and be purged.
        window = max(2 * settings.schedule_cache_refresh, settings.hub_search_ttl)
        return TaskResult(summary=core.hub.refresh_hot(window=window).summary())

    def gpu_inventory() -> TaskResult:
        snap = core.gpus.refresh()
        if snap.kubernetes not in ("ok", "not configured"):
            raise UpstreamError(snap.kubernetes)  # counts towards the task_failing alert
        types = snap.choices()
        summary = (
            f"{len(snap.cluster_nodes)} GPU node(s), {len(types)} type(s), "
            f"{snap.free_summary()}; Kubernetes {snap.kubernetes}"
        )
        return TaskResult(summary=summary)

    def archs_refresh() -> TaskResult:
        if not settings.vllm_architectures_url:
            info = core.hub.architectures.info()
            return TaskResult(summary=f"no source configured; serving {info.describe()}")
        return TaskResult(summary=core.hub.architectures.refresh().summary())

    def fit_check() -> TaskResult:
        report = check_installed(core.hub, core.weights, core.alerts)
        observations = {FIT_RULE: report.observations} if report.evaluated else {}
        return TaskResult(summary=report.summary(), observations=observations)

    core.tasks.register(
        PeriodicTask(
            "hub_cache_refresh",
            settings.schedule_cache_refresh,
            cache_refresh,
            "re-fetch the most used Hugging Face searches and model cards",
        )
    )
    core.tasks.register(
        PeriodicTask(
            "gpu_inventory",
            settings.schedule_gpu_inventory,
            gpu_inventory,
            "read GPU nodes (feature discovery labels) and requested GPUs from Kubernetes",
        )
    )
    core.tasks.register(
        PeriodicTask(
            "vllm_archs_refresh",
            settings.schedule_archs_refresh,
            archs_refresh,
            "refresh the vLLM architectures table from MODELARIUM_VLLM_ARCHITECTURES_URL",
        )
    )
    core.tasks.register(
        PeriodicTask(
            "gpu_fit_check",
            settings.schedule_fit_check,
            fit_check,
            "alert when an installed model fits no GPU type of the fleet",
        )
    )
