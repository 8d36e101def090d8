"""Advice when a model does not fit (or only with a short context): what would make it fit.

Each suggestion is computed, not guessed: the alternative (fp8 KV cache, more GPUs, a quantized
checkpoint, a higher memory fraction) is re-estimated and only offered if it helps.
"""

from __future__ import annotations

from modelarium.core.fit.gpus import GpuProfile
from modelarium.core.fit.model_config import ModelShape
from modelarium.core.fit.params import ParamBreakdown
from modelarium.core.fit.parsing import format_gib
from modelarium.core.fit.plan import MAX_TP_SEARCH, MemoryPlan, Search, round_len, search
from modelarium.core.fit.quantization import Quantization, parse_quant
from modelarium.core.fit.weights import WeightBytes, weight_bytes


class Advisor:
    """Tries the alternatives an operator could take and phrases the ones that help."""

    def __init__(
        self,
        shape: ModelShape,
        params: ParamBreakdown,
        gpu: GpuProfile,
        available: int,
        kv_dtype: str,
        gmu: float,
        quant: Quantization,
        weights: WeightBytes,
        target: int | None,
    ) -> None:
        self.shape, self.params, self.gpu, self.available = shape, params, gpu, available
        self.kv_dtype, self.gmu, self.quant = kv_dtype, gmu, quant
        self.weights, self.target = weights, target

    def _try(
        self,
        *,
        kv_dtype: str | None = None,
        gmu: float | None = None,
        quant: Quantization | None = None,
        max_gpus: int | None = None,
    ) -> Search:
        q = quant or self.quant
        weights = self.weights if quant is None else weight_bytes(self.params, q)
        return search(
            self.shape,
            weights,
            self.gpu,
            max_gpus or self.available,
            kv_dtype or self.kv_dtype,
            gmu or self.gmu,
            q,
            self.target,
        )

    def _want(self) -> int:
        return self.target if self.target is not None else self.shape.max_model_len

    def advice(self, result: Search) -> list[str]:
        """Lines for the operator, most direct fix first; empty when it fits as asked."""
        out: list[str] = []
        want = self._want()
        cap = self.shape.max_model_len
        chosen = result.chosen
        if want > cap:
            out.append(
                f"The model supports at most {cap:,} tokens ({self.shape.max_len_reason}); "
                f"ask for at most that: `--max-model-len {cap}`"
            )
        limited = chosen is not None and chosen.max_len < min(want, cap)
        if limited and chosen is not None and chosen.max_len >= min(1024, cap):
            length = round_len(chosen.max_len, cap)
            tp = chosen.parallel_flags
            verb = "Serving with" if result.fits else "Reduce context to"
            out.append(
                f"{verb} {length:,} tokens (full {min(want, cap):,} does not fit): "
                f"`--max-model-len {length}{tp}`"
            )
        if (
            (limited or not result.fits)
            and self.kv_dtype.lower() == "auto"
            and self.gpu.supports_fp8
        ):
            out += self._kv_fp8(chosen)
        if limited or not result.fits:
            out += self._more_gpus()
        if not result.fits and not self.quant.is_quantized:
            out += self._quantize()
        if not result.fits and self.gmu < 0.95:
            alt = self._try(gmu=0.95)
            if alt.fits and alt.chosen is not None:
                out.append(
                    "Raising `--gpu-memory-utilization 0.95` would fit (only if nothing else "
                    "uses these GPUs)"
                )
        return out

    def _kv_fp8(self, chosen: MemoryPlan | None) -> list[str]:
        alt = self._try(kv_dtype="fp8")
        if alt.chosen is None:
            return []
        want = min(self._want(), self.shape.max_model_len)
        if alt.chosen.fits(want):
            tp = alt.chosen.parallel_flags
            return [
                f"`--kv-cache-dtype fp8` halves the KV cache: {want:,} tokens fit"
                f"{f' at {alt.chosen.layout(self.gpu.count)}' if alt.chosen.gpus > 1 else ''}: "
                f"`--kv-cache-dtype fp8 --max-model-len {want}{tp}`"
            ]
        before = chosen.max_len if chosen else 0
        if alt.chosen.max_len > before:
            length = round_len(alt.chosen.max_len, self.shape.max_model_len)
            return [f"`--kv-cache-dtype fp8` halves the KV cache: up to {length:,} tokens fit"]
        return []

    def _more_gpus(self) -> list[str]:
        alt = self._try(max_gpus=MAX_TP_SEARCH)
        want = min(self._want(), self.shape.max_model_len)
        for plan in alt.plans:
            if plan.gpus > self.available and plan.fits(want):
                where = ""
                if plan.nodes(self.gpu.count) > 1:
                    where = (
                        f" on {plan.nodes(self.gpu.count)} nodes of {self.gpu.count} (tensor "
                        "parallel inside a node, pipeline parallel across nodes)"
                    )
                return [
                    f"Use {plan.gpus} GPUs{where} for {want:,} tokens: "
                    f"`{plan.parallel_flags.strip()}`"
                ]
        return []

    def _quantize(self) -> list[str]:
        """The first weight format that fits the target, else the one that gets closest."""
        options = [parse_quant("fp8")] if self.gpu.supports_fp8 else []
        options.append(parse_quant("awq"))
        cap = self.shape.max_model_len
        closest: tuple[Quantization, MemoryPlan] | None = None
        for option in options:
            alt = self._try(quant=option)
            if alt.chosen is None:
                continue
            if alt.fits:
                return [self._quantize_line(option, alt.chosen, "fits")]
            if alt.chosen.max_len >= 1024 and (
                closest is None or alt.chosen.max_len > closest[1].max_len
            ):
                closest = (option, alt.chosen)
        if closest is not None:
            option, plan = closest
            return [
                self._quantize_line(
                    option, plan, f"up to {round_len(plan.max_len, cap):,} tokens fit"
                )
            ]
        four_bit = weight_bytes(self.params, parse_quant("awq")).total
        return [
            f"Even 4-bit weights ({format_gib(four_bit)}) leave no room for the KV cache on "
            f"{self.available}× {self.gpu.name}; more or larger GPUs are needed"
        ]

    def _quantize_line(self, option: Quantization, plan: MemoryPlan, outcome: str) -> str:
        how = (
            f"`--quantization {option.vllm_flag}`"
            if option.vllm_flag
            else "use a pre-quantized AWQ or GPTQ checkpoint of this model"
        )
        size = weight_bytes(self.params, option).total
        tp = f" at {plan.layout(self.gpu.count)}" if plan.gpus > 1 else ""
        if outcome == "fits":
            want = min(self._want(), self.shape.max_model_len)
            outcome = f"{want:,} tokens fit"
        return f"Quantize to {option.label}: {how} (weights {format_gib(size)}) → {outcome}{tp}"
