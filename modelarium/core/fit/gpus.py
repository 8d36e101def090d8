"""GPU profiles: how much memory one card really reports, and how many a node has.

Memory is what NVML reports (GPU feature discovery's ``nvidia.com/gpu.memory`` label, in MiB), not
the marketing number: an "80 GB" A100 is 81920 MiB and an H100 81559 MiB. Values marked
"observed" in the catalog come from real GFD labels; the others are NVML figures for the card.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

from modelarium.core.errors import NotFoundError, UsageError

_MIB = 1024 * 1024


@dataclass(frozen=True)
class GpuProfile:
    """One GPU model: memory per card, cards per node, compute capability when known."""

    name: str
    memory_bytes: int
    count: int = 1
    product: str | None = None  # GFD nvidia.com/gpu.product, e.g. "NVIDIA-A100-SXM4-80GB"
    compute_capability: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.memory_bytes <= 0:
            raise UsageError(f"GPU {self.name!r} must have positive memory")
        if self.count < 1:
            raise UsageError(f"GPU {self.name!r} count must be at least 1")

    @property
    def memory_mib(self) -> float:
        return self.memory_bytes / _MIB

    @property
    def supports_bf16(self) -> bool:
        """bf16 needs compute capability 8.0 (Ampere); older cards run bf16 models as fp16."""
        return self.compute_capability is None or self.compute_capability >= (8, 0)

    @property
    def supports_fp8(self) -> bool:
        """vLLM runs FP8 weights natively from 8.9 and via Marlin weight-only kernels from 8.0."""
        return self.compute_capability is None or self.compute_capability >= (8, 0)

    def with_count(self, count: int) -> GpuProfile:
        return replace(self, count=count)

    def describe(self) -> str:
        label = f"{self.count}× {self.name}" if self.count > 1 else self.name
        return f"{label} ({self.memory_mib:,.0f} MiB each)"


def _gpu(name: str, mib: int, product: str, cc: tuple[int, int], *aliases: str) -> tuple:
    return GpuProfile(name, mib * _MIB, 1, product, cc), aliases


# (profile, extra normalised aliases). Comments: where the MiB figure comes from.
_CATALOG_ROWS = [
    _gpu("T4", 15360, "Tesla-T4", (7, 5), "t416g"),  # observed
    _gpu("V100-16GB", 16384, "Tesla-V100-SXM2-16GB", (7, 0), "v100"),
    _gpu("V100-32GB", 32768, "Tesla-V100-SXM2-32GB", (7, 0), "v10032g"),  # observed
    _gpu("A10G", 23028, "NVIDIA-A10G", (8, 6), "a10g24g"),  # observed
    _gpu("A10", 23028, "NVIDIA-A10", (8, 6), "a1024g"),
    _gpu("L4", 23034, "NVIDIA-L4", (8, 9), "l424g"),  # observed
    _gpu("A30", 24576, "NVIDIA-A30", (8, 0), "a3024g"),
    _gpu("RTX 3090", 24576, "NVIDIA-GeForce-RTX-3090", (8, 6), "3090", "rtx309024g"),
    _gpu("RTX 4090", 24564, "NVIDIA-GeForce-RTX-4090", (8, 9), "4090", "rtx409024g"),
    _gpu("RTX A6000", 49140, "NVIDIA-RTX-A6000", (8, 6), "a6000", "rtxa600048g"),
    _gpu("RTX 6000 Ada", 49140, "NVIDIA-RTX-6000-Ada-Generation", (8, 9), "rtx6000ada"),
    _gpu("L40", 46068, "NVIDIA-L40", (8, 9), "l4048g"),
    _gpu("L40S", 46068, "NVIDIA-L40S", (8, 9), "l40s48g"),  # observed
    _gpu("A100-40GB", 40960, "NVIDIA-A100-SXM4-40GB", (8, 0), "a100"),  # observed
    _gpu("A100-80GB", 81920, "NVIDIA-A100-SXM4-80GB", (8, 0)),  # observed
    _gpu("H100-80GB", 81559, "NVIDIA-H100-80GB-HBM3", (9, 0), "h100"),  # observed
    _gpu("H100-NVL", 95830, "NVIDIA-H100-NVL", (9, 0), "h100nvl", "h100nvl94g"),
    _gpu("H200", 143771, "NVIDIA-H200", (9, 0), "h200141g"),
    _gpu("B200", 183359, "NVIDIA-B200", (10, 0), "b200192g", "b200180g"),
]
GPU_CATALOG: tuple[GpuProfile, ...] = tuple(row[0] for row in _CATALOG_ROWS)


def _normalise(name: str) -> str:
    text = name.lower()
    text = re.sub(r"[-_ ]shared$", "", text)  # GFD time-slicing suffix
    text = re.sub(r"\b(nvidia|tesla|geforce)\b", " ", text)
    text = re.sub(r"\b(sxm\d?|pcie|hbm3e?)\b", " ", text)
    text = re.sub(r"[^a-z0-9]", "", text)
    return re.sub(r"gb$", "g", text)


def _keys(profile: GpuProfile, aliases: tuple[str, ...]) -> set[str]:
    keys = {_normalise(profile.name), *aliases}
    if profile.product:
        keys.add(_normalise(profile.product))
    sized = re.match(r"^(.*?)[-_ ](\d+)gb$", profile.name, flags=re.IGNORECASE)
    if sized:
        keys.add(f"{_normalise(sized.group(1))}{sized.group(2)}g")
    keys.add(re.sub(r"^rtx", "", _normalise(profile.name)))
    return keys


_INDEX: dict[str, GpuProfile] = {}
for _profile, _aliases in _CATALOG_ROWS:
    for _key in _keys(_profile, _aliases):
        _INDEX.setdefault(_key, _profile)

# "8xH100", "8 x h100", "h100x8", "a100-80g x 2"; not "rtx4090" (the x must follow a digit/space).
_COUNT_RE = re.compile(r"^\s*(\d+)\s*[x×*]\s*(.+)$|^(.+?[\d\s])[x×*]\s*(\d+)\s*$", re.IGNORECASE)
_MEMORY_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(gib|gb|g|mib|mb)\s*$", re.IGNORECASE)


def find_gpu(name: str) -> GpuProfile | None:
    """Catalog entry for a loose name: ``a100-80g``, ``H100``, ``NVIDIA-A100-SXM4-80GB``."""
    key = _normalise(name)
    if not key:
        return None
    if key in _INDEX:
        return _INDEX[key]
    if key.startswith("rtx") and key[3:] in _INDEX:
        return _INDEX[key[3:]]
    # A memory size the catalog does not list under that name ("h100-80g" → H100-80GB).
    match = re.fullmatch(r"(.*?)(\d+)g", key)
    if match and match.group(1) in _INDEX:
        candidate = _INDEX[match.group(1)]
        listed_gib = candidate.memory_bytes / 2**30
        if abs(listed_gib - int(match.group(2))) <= 0.1 * listed_gib:
            return candidate
    return None


def get_gpu(name: str) -> GpuProfile:
    """Like :func:`find_gpu`, plus ``8xH100`` / ``h100x8`` counts and raw sizes like ``48GiB``."""
    text = str(name).strip()
    count = 1
    match = _COUNT_RE.match(text)
    if match:
        if match.group(1):
            count, text = int(match.group(1)), match.group(2)
        else:
            text, count = match.group(3), int(match.group(4))
    memory = _MEMORY_RE.match(text)
    if memory:
        amount, unit = float(memory.group(1)), memory.group(2).lower()
        scale = {"gib": 2**30, "gb": 10**9, "g": 2**30, "mib": _MIB, "mb": 10**6}[unit]
        return GpuProfile(f"{text.strip()} GPU", int(amount * scale), count)
    profile = find_gpu(text)
    if profile is None:
        known = ", ".join(p.name for p in GPU_CATALOG)
        raise NotFoundError(f"unknown GPU {name!r} (known: {known}; or give a size like 48GiB)")
    return profile.with_count(count) if count != 1 else profile


def gpu_from_gfd_labels(labels: Mapping[str, str]) -> GpuProfile:
    """A node's GPU from GPU-feature-discovery labels; memory from the label, not the catalog."""
    product = labels.get("nvidia.com/gpu.product")
    memory = labels.get("nvidia.com/gpu.memory")
    count_text = labels.get("nvidia.com/gpu.count") or "1"
    if not product and not memory:
        raise UsageError("node has no nvidia.com/gpu.product or nvidia.com/gpu.memory label")
    known = find_gpu(product) if product else None
    try:
        count = int(count_text)
        memory_bytes = int(memory) * _MIB if memory else None
    except ValueError as exc:
        raise UsageError(
            f"GPU labels are not numbers: memory={memory!r} count={count_text!r}"
        ) from exc
    if memory_bytes is None:
        if known is None:
            raise UsageError(f"GPU {product!r} is not in the catalog and has no memory label")
        memory_bytes = known.memory_bytes
    major, minor = (
        labels.get("nvidia.com/gpu.compute.major"),
        labels.get("nvidia.com/gpu.compute.minor"),
    )
    cc = (
        (int(major), int(minor))
        if major and minor and major.isdigit() and minor.isdigit()
        else (known.compute_capability if known else None)
    )
    name = known.name if known and "MIG" not in (product or "") else (product or "GPU")
    return GpuProfile(name, memory_bytes, max(count, 1), product, cc)
