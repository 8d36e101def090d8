"""GPU profiles: loose-name lookup, counts, GFD labels."""

from __future__ import annotations

import pytest

from modelarium.core.errors import NotFoundError, UsageError
from modelarium.core.fit import GPU_CATALOG, GpuProfile, find_gpu, get_gpu, gpu_from_gfd_labels

MIB = 2**20


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a100-80g", "A100-80GB"),
        ("A100 80GB", "A100-80GB"),
        ("NVIDIA-A100-SXM4-80GB", "A100-80GB"),  # as GFD publishes nvidia.com/gpu.product
        ("A100-SXM4-80GB", "A100-80GB"),
        ("NVIDIA-A100-SXM4-40GB", "A100-40GB"),
        ("a100", "A100-40GB"),  # ambiguous: the smaller card, the safe side for a fit check
        ("H100", "H100-80GB"),
        ("NVIDIA-H100-80GB-HBM3", "H100-80GB"),
        ("NVIDIA-H100-PCIe", "H100-80GB"),
        ("h100 nvl", "H100-NVL"),
        ("NVIDIA-H200-SXM5-141GB", "H200"),
        ("h200", "H200"),
        ("L4", "L4"),
        ("NVIDIA-L40S", "L40S"),
        ("l40", "L40"),
        ("NVIDIA-A10G", "A10G"),
        ("NVIDIA-A10G-SHARED", "A10G"),  # GFD time-slicing rename
        ("a10", "A10"),
        ("Tesla-T4", "T4"),
        ("t4", "T4"),
        ("rtx4090", "RTX 4090"),
        ("NVIDIA-GeForce-RTX-4090", "RTX 4090"),
        ("4090", "RTX 4090"),
        ("RTX 3090", "RTX 3090"),
        ("Tesla-V100-SXM2-32GB", "V100-32GB"),
        ("b200", "B200"),
    ],
)
def test_find_gpu_by_loose_name(name: str, expected: str) -> None:
    profile = find_gpu(name)
    assert profile is not None
    assert profile.name == expected


def test_memory_is_what_nvml_reports() -> None:
    # GFD nvidia.com/gpu.memory values observed on real nodes (MiB).
    assert get_gpu("a100-80g").memory_bytes == 81_920 * MIB
    assert get_gpu("h100").memory_bytes == 81_559 * MIB
    assert get_gpu("L4").memory_bytes == 23_034 * MIB
    assert get_gpu("T4").memory_bytes == 15_360 * MIB
    assert get_gpu("NVIDIA-L40S").memory_bytes == 46_068 * MIB
    assert all(p.memory_bytes > 10 * 2**30 for p in GPU_CATALOG)


def test_counts_and_raw_sizes() -> None:
    assert get_gpu("8xH100").count == 8
    assert get_gpu("h100x8").count == 8
    assert get_gpu("2 x a100-80g").count == 2
    assert get_gpu("rtx4090").count == 1
    custom = get_gpu("48GiB")
    assert custom.memory_bytes == 48 * 2**30
    assert get_gpu("4 x 24GB").count == 4


def test_unknown_gpu() -> None:
    assert find_gpu("quantum-9000") is None
    assert find_gpu("") is None
    with pytest.raises(NotFoundError, match="unknown GPU"):
        get_gpu("quantum-9000")


def test_capabilities() -> None:
    assert not get_gpu("T4").supports_bf16
    assert not get_gpu("T4").supports_fp8
    assert get_gpu("A100").supports_bf16
    assert get_gpu("H100").compute_capability == (9, 0)
    assert GpuProfile("custom", 2**30).supports_bf16  # unknown capability: assume modern


def test_profile_validation() -> None:
    with pytest.raises(UsageError):
        GpuProfile("broken", 0)
    with pytest.raises(UsageError):
        GpuProfile("broken", 2**30, count=0)
    assert get_gpu("L4").with_count(4).describe() == "4× L4 (23,034 MiB each)"


def test_from_gfd_labels_prefers_the_memory_label() -> None:
    labels = {
        "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB",
        "nvidia.com/gpu.memory": "81920",
        "nvidia.com/gpu.count": "8",
        "nvidia.com/gpu.compute.major": "8",
        "nvidia.com/gpu.compute.minor": "0",
    }
    gpu = gpu_from_gfd_labels(labels)
    assert (gpu.name, gpu.count, gpu.memory_bytes) == ("A100-80GB", 8, 81_920 * MIB)
    assert gpu.product == "NVIDIA-A100-SXM4-80GB"
    assert gpu.compute_capability == (8, 0)
    # MIG single strategy: product gets a suffix, memory is per MIG device.
    mig = gpu_from_gfd_labels(
        {
            "nvidia.com/gpu.product": "A100-SXM4-40GB-MIG-1g.5gb",
            "nvidia.com/gpu.memory": "4864",
            "nvidia.com/gpu.count": "7",
        }
    )
    assert mig.memory_bytes == 4864 * MIB
    assert mig.name == "A100-SXM4-40GB-MIG-1g.5gb"
    # No memory label: the catalog fills it in.
    assert gpu_from_gfd_labels({"nvidia.com/gpu.product": "NVIDIA-L4"}).memory_bytes == 23_034 * MIB


def test_from_gfd_labels_errors() -> None:
    with pytest.raises(UsageError, match=r"no nvidia\.com"):
        gpu_from_gfd_labels({})
    with pytest.raises(UsageError, match="not numbers"):
        gpu_from_gfd_labels({"nvidia.com/gpu.product": "NVIDIA-L4", "nvidia.com/gpu.memory": "x"})
    with pytest.raises(UsageError, match="not in the catalog"):
        gpu_from_gfd_labels({"nvidia.com/gpu.product": "Mystery-GPU"})
