"""Which ``--tensor-parallel-size`` values vLLM accepts for a model.

vLLM refuses at startup when heads or MLP widths do not split evenly; checking here turns a crash
after a 140 GB download into a sentence before it.
"""

from __future__ import annotations

from modelarium.core.fit.model_config import ModelShape
from modelarium.core.fit.quantization import Quantization


def tp_problems(shape: ModelShape, tp: int, quant: Quantization | None = None) -> list[str]:
    """Why vLLM would reject ``tp`` for this model; empty when it is valid."""
    if tp < 1:
        return [f"tensor parallel size must be at least 1, not {tp}"]
    problems: list[str] = []
    heads, kv = shape.num_heads, shape.num_kv_heads
    if heads % tp:
        problems.append(f"{heads} attention heads are not divisible by tensor parallel size {tp}")
    if not shape.is_mla:
        if kv >= tp and kv % tp:
            problems.append(f"{kv} KV heads are not divisible by tensor parallel size {tp}")
        elif kv < tp and tp % kv:
            problems.append(f"tensor parallel size {tp} is not a multiple of the {kv} KV heads")
    if shape.dense_layers and shape.intermediate_size % tp:
        problems.append(f"intermediate_size {shape.intermediate_size} is not divisible by {tp}")
    if shape.is_moe and shape.moe_intermediate_size % tp:
        problems.append(
            f"moe_intermediate_size {shape.moe_intermediate_size} is not divisible by {tp}"
        )
    group = quant.group_size if quant and quant.method in ("awq", "gptq") else None
    if group and tp > 1:
        # Row-parallel layers (o_proj, down_proj) split their input: each shard needs whole groups.
        widths = {"o_proj input": heads * shape.head_dim}
        if shape.dense_layers:
            widths["down_proj input (intermediate_size)"] = shape.intermediate_size
        for what, width in widths.items():
            if width % tp == 0 and (width // tp) % group:
                problems.append(
                    f"{what} {width} / TP {tp} = {width // tp} is not a multiple of the "
                    f"quantization group size {group}"
                )
    return problems


def valid_tp_sizes(
    shape: ModelShape, max_gpus: int, quant: Quantization | None = None
) -> list[int]:
    """Power-of-two TP sizes up to ``max_gpus`` that vLLM accepts, smallest first.

    Powers of two only: they match NVLink topologies and vLLM's custom all-reduce; a 3- or 6-way
    split is legal for some models but rarely what an operator wants.
    """
    sizes = []
    tp = 1
    while tp <= max_gpus:
        if not tp_problems(shape, tp, quant):
            sizes.append(tp)
        tp *= 2
    return sizes
