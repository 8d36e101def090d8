"""Catalog entries for tests: a valid one, changed field by field."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

COMMIT = "0123456789abcdef0123456789abcdef01234567"
OTHER_COMMIT = "89abcdef0123456789abcdef0123456789abcdef"


def entry_json(entry_id: str = "qwen2.5-7b-instruct", **overrides: Any) -> dict[str, Any]:
    """A valid ``approved`` entry; ``overrides`` replace top-level fields."""
    data: dict[str, Any] = {
        "schema_version": 1,
        "id": entry_id,
        "display_name": "Qwen2.5 7B Instruct",
        "huggingface": {"repo": "Qwen/Qwen2.5-7B-Instruct", "commit": COMMIT},
        "license": "apache-2.0",
        "parameters": {"total": 7_615_616_512, "active": 7_615_616_512},
        "architecture": "Qwen2ForCausalLM",
        "context_length": 32768,
        "quantization": "bf16",
        "serving_defaults": {
            "engine": "vllm",
            "gpu": "L4",
            "args": ["--max-model-len", "32768", "--gpu-memory-utilization", "0.9"],
        },
        "gpu_compatibility": {
            "L4": {"fits": True, "gpus": 1, "max_model_len": 32768, "summary": "fits on 1× L4"},
            "T4": {"fits": False, "gpus": None, "max_model_len": 0},
        },
        "storage_uri": (f"pvc://models/models--Qwen--Qwen2.5-7B-Instruct/snapshots/{COMMIT}"),
        "status": "approved",
        "owners": ["U_ADMIN"],
        "tags": ["chat"],
        "notes": "",
    }
    data.update(copy.deepcopy(overrides))
    return data


def write_entries(folder: Path, entries: list[dict[str, Any]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for data in entries:
        (folder / f"{data['id']}.json").write_text(json.dumps(data, indent=2) + "\n")
