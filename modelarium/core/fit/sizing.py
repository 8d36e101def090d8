"""Sizing a model against the GPU types of an inventory, and the one rule that picks the type
to recommend (`/model fit`) and to deploy on (`/model deploy`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from modelarium.core.fit.estimator import FitResult

if TYPE_CHECKING:
    from modelarium.core.gpus import GpuChoice


@dataclass(frozen=True)
class SizedGpu:
    """One GPU type of the inventory and the fit estimate on it (or why there is none)."""

    choice: GpuChoice
    result: FitResult | None = None
    error: str | None = None

    @property
    def fits(self) -> bool:
        return self.result is not None and self.result.fits

    @property
    def fits_now(self) -> bool | None:
        """Enough free GPUs on one node right now (None when the cluster does not say)."""
        if not self.fits or self.choice.free_on_one_node is None:
            return None
        assert self.result is not None
        if self.result.pipeline_parallel_size > 1:
            # a stage per node: the free count per node beyond the best one is not known here
            if self.choice.free is None:
                return None
            per_node = self.result.tensor_parallel_size or 1
            return (
                self.choice.free >= self.result.gpus_used
                and self.choice.free_on_one_node >= per_node
            )
        return self.choice.free_on_one_node >= (self.result.tensor_parallel_size or 1)


def recommend(sized: list[SizedGpu]) -> SizedGpu | None:
    """The fitting GPU type: free now, serving the whole wanted context, with the fewest, then
    the smallest, cards."""
    fitting = [s for s in sized if s.fits and s.result is not None]
    if not fitting:
        return None
    return min(
        fitting,
        key=lambda s: (
            s.fits_now is False,
            s.result is not None and s.result.recommended_max_model_len < s.result.context,
            s.result.gpus_used if s.result else 0,
            s.choice.profile.memory_bytes,
        ),
    )
