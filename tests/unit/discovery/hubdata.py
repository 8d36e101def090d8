"""Models the discovery tests put on the fake Hub: real config.json files under tests/data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.fakes.hf_hub import FakeHub

CONFIGS = Path(__file__).resolve().parents[2] / "data" / "configs"

LLAMA_8B = "meta-llama/Llama-3.1-8B-Instruct"
LLAMA_70B = "meta-llama/Llama-3.1-70B-Instruct"
QWEN_7B = "Qwen/Qwen2.5-7B-Instruct"
QWEN_AWQ = "Qwen/Qwen2.5-7B-Instruct-AWQ"
QWEN_MOE = "Qwen/Qwen3-30B-A3B"
GEMMA = "google/gemma-2-9b-it"
GGUF = "TheBloke/Mistral-7B-Instruct-v0.2-GGUF"
CUSTOM = "acme/fancy-new-7b"
FILLERS = 24

TINY = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 2048,
    "intermediate_size": 5632,
    "num_hidden_layers": 22,
    "num_attention_heads": 32,
    "num_key_value_heads": 4,
    "vocab_size": 32000,
    "max_position_embeddings": 2048,
    "torch_dtype": "bfloat16",
}


def config(name: str) -> dict[str, Any]:
    return json.loads((CONFIGS / f"{name}.json").read_text(encoding="utf-8"))


def populate(hub: FakeHub, fillers: int = FILLERS) -> None:
    gen = {"pipeline_tag": "text-generation", "library_name": "transformers"}
    hub.add_model(
        LLAMA_8B,
        config=config("llama-3.1-8b-instruct"),
        license="llama3.1",
        gated="manual",
        downloads=5_000_000,
        likes=4_000,
        safetensors={"BF16": 8_030_261_248},
        tags=["llama", "safetensors", "conversational"],
        **gen,
    )
    hub.add_model(
        LLAMA_70B,
        config=config("llama-3.1-70b-instruct"),
        license="llama3.1",
        downloads=1_000_000,
        likes=2_000,
        safetensors={"BF16": 70_553_706_496},
        tags=["llama", "safetensors"],
        **gen,
    )
    hub.add_model(
        QWEN_7B,
        config=config("qwen2.5-7b-instruct"),
        license="apache-2.0",
        downloads=3_000_000,
        likes=900,
        safetensors={"BF16": 7_615_616_512},
        tags=["qwen2", "safetensors"],
        **gen,
    )
    awq = config("qwen2.5-7b-instruct") | {
        "quantization_config": {"quant_method": "awq", "bits": 4, "group_size": 128}
    }
    hub.add_model(
        QWEN_AWQ,
        config=awq,
        license="apache-2.0",
        downloads=200_000,
        likes=100,
        safetensors={"I32": 870_000_000, "F16": 1_090_000_000},
        tags=["qwen2", "awq", "4-bit"],
        **gen,
    )
    hub.add_model(
        QWEN_MOE,
        config=config("qwen3-30b-a3b"),
        license="apache-2.0",
        downloads=800_000,
        likes=700,
        safetensors={"BF16": 30_532_122_624},
        tags=["qwen3_moe"],
        **gen,
    )
    hub.add_model(
        GEMMA,
        config=config("gemma-2-9b-it"),
        license="gemma",
        downloads=600_000,
        likes=500,
        safetensors={"BF16": 9_241_705_984},
        tags=["gemma2"],
        **gen,
    )
    hub.add_model(
        GGUF,
        {"mistral-7b-instruct-v0.2.Q4_K_M.gguf": b"GGUF" + bytes(60)},
        license="apache-2.0",
        downloads=400_000,
        likes=300,
        gguf={"total": 7_241_732_096, "architecture": "llama", "context_length": 32768},
        tags=["gguf"],
        library_name="gguf",
        pipeline_tag="text-generation",
    )
    hub.add_model(
        CUSTOM,
        config=TINY | {"architectures": ["FancyNewForCausalLM"], "model_type": "fancy"},
        license="mit",
        downloads=50,
        safetensors={"BF16": 1_100_048_384},
        **gen,
    )
    for i in range(fillers):
        hub.add_model(
            f"filler/tiny-llama-{i:02d}",
            config=TINY,
            license="apache-2.0",
            downloads=1_000 - i,
            safetensors={"BF16": 1_100_048_384},
            tags=["llama"],
            **gen,
        )
