"""``core.gpus``: the GPU inventory read from the cluster (or the configured fleet)."""

from __future__ import annotations

from modelarium.core.gpus.inventory import GpuInventory
from modelarium.core.kernel import Kernel
from modelarium.core.ports import Ports


def build(kernel: Kernel, ports: Ports) -> GpuInventory:
    return GpuInventory(kernel.settings, kernel.cache, kernel.clock)
