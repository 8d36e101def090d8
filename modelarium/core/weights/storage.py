"""How full a storage location is.

A location with a ``capacity`` is a quota on a shared volume: its usage is the bytes under its
root, and its free space is what is left of the quota, never more than the filesystem really has.
Without a capacity, the location owns its filesystem and ``statvfs`` is the truth (as kubelet
measures its image filesystem).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from modelarium.config.settings import StorageLocation
from modelarium.core.weights.layout import tree_size


@dataclass(frozen=True)
class Usage:
    location: str
    total: int
    used: int
    free: int
    """Bytes that can still be written (quota room, capped by the filesystem's free space)."""

    @property
    def fraction(self) -> float:
        return self.used / self.total if self.total else 0.0


def measure(location: StorageLocation) -> Usage:
    root = location.path
    root.mkdir(parents=True, exist_ok=True)
    stat = os.statvfs(root)
    fs_free = stat.f_bavail * stat.f_frsize
    if location.capacity is not None:
        used = tree_size(root)
        return Usage(
            location.name, location.capacity, used, max(0, min(location.capacity - used, fs_free))
        )
    total = stat.f_blocks * stat.f_frsize
    # As kubelet does: usage is what is not available to us (root-reserved blocks included).
    return Usage(location.name, total, max(0, total - fs_free), fs_free)
