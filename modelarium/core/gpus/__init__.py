"""GPU inventory: what the cluster (GPU feature discovery labels) and settings say we have."""

from modelarium.core.gpus.inventory import (
    DEFAULT_CATALOG,
    GpuChoice,
    GpuInventory,
    GpuInventorySnapshot,
    GpuNode,
    nodes_from_cluster,
)

__all__ = [
    "DEFAULT_CATALOG",
    "GpuChoice",
    "GpuInventory",
    "GpuInventorySnapshot",
    "GpuNode",
    "nodes_from_cluster",
]
