"""How full a storage location is.

A location with a ``capacity`` is a quota on a shared volume: its usage is the bytes under its
root, and its free space is what is left of the quota, never more than the filesystem really has.
Without a capacity, the location owns its filesystem and ``statvfs`` is the truth (as kubelet
measures its image filesystem).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from modelarium.config.settings import StorageLocation
from modelarium.core.weights.buckets import Bucket
from modelarium.core.weights.layout import tree_size

UNBOUNDED = sys.maxsize
"""Free bytes of a bucket without a capacity."""


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
    if location.is_bucket:
        # A bucket has no size: its capacity, if set, is a quota Modelarium keeps to.
        used = Bucket(location).used_bytes()
        if location.capacity is None:
            return Usage(location.name, 0, used, UNBOUNDED)
        return Usage(location.name, location.capacity, used, max(0, location.capacity - used))
    root = location.root
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
