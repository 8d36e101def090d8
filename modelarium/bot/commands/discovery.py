"""`/model search|info|fit|archs|arch|gpus`: find a model, inspect it, size it for our GPUs.

Handlers are thin: the Hub, the cache, the vLLM table, the GPU inventory and the estimator live in
``core.hub`` / ``core.gpus`` / ``core.fit``; this module turns their answers into cards.
"""

from __future__ import annotations

import difflib
import shlex
from datetime import datetime
from typing import Any

from modelarium.bot.commands.context import CommandContext
from modelarium.bot.commands.parsing import positive_int
from modelarium.bot.commands.registry import registry
from modelarium.bot.commands.spec import Arg, Flag
from modelarium.bot.nextsteps import ROWS_WITH_BUTTONS, add_steps, hub_link
from modelarium.bot.pagination import page_buttons, paginate
from modelarium.bot.reply import Reply
from modelarium.config.units import format_duration
from modelarium.core import echo
from modelarium.core.catalog.service import EntryView
from modelarium.core.errors import NotFoundError
from modelarium.core.fit import FitResult, GpuProfile, format_gib, format_params
from modelarium.core.gpus import GpuInventorySnapshot
from modelarium.core.hub import (
    FitReport,
    HubModel,
    ModelReport,
    SearchQuery,
    SizedGpu,
    parse_repo_ref,
)
from modelarium.core.hub.models import QUANT_METHODS
from modelarium.core.hub.search import SORTS
from modelarium.core.messages import Button, Message, shorten
from modelarium.core.vllm import Architecture

SEARCH_PAGE = 10
ARCHS_PAGE = 20
_GATED = {False: "no", "auto": "yes (automatic approval)", "manual": "yes (manual approval)"}


# -- small formatting helpers --------------------------------------------------------------------
def _count(n: int | None) -> str:
    if n is None:
        return "?"
    for unit, scale in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f}{unit}".replace(".0" + unit, unit)
    return str(n)


def _params(n: int | None) -> str:
    return format_params(n) if n else "?"


def _age(ctx: CommandContext, when: datetime | None) -> str:
    if when is None:
        return "never"
    seconds = max(0.0, (ctx.core.clock.now() - when).total_seconds())
    return "just now" if seconds < 5 else f"{format_duration(seconds)} ago"


def _freshness(
    ctx: CommandContext, when: datetime, *, stale: bool, note: str | None, cached: bool
) -> str:
    if not cached:
        return "live from Hugging Face"
    if stale:
        return f"⚠️ stale: cached {_age(ctx, when)}; {note or 'refreshing'}"
    return f"cached {_age(ctx, when)}"


def _day(iso: str | None) -> str:
    return iso[:10] if iso else "?"


def _ref(repo: str, revision: str | None) -> str:
    return f"{repo}@{revision}" if revision else repo


def _command(*words: str | None, **flags: Any) -> str:
    """Command text with quoting that ``tokenize`` reads back (button twins)."""
    parts = [shlex.quote(w) for w in words if w]
    for name, value in flags.items():
        if value is not None and value is not False:
            parts += [f"--{name.replace('_', '-')}", shlex.quote(str(value))]
    return " ".join(parts)


# -- /model search -------------------------------------------------------------------------------
@registry.command(
    "search",
    help="Search Hugging Face for models (vLLM support and GPU fit per result)",
    args=[Arg("text", "words in the model id", required=False, rest=True)],
    flags=[
        Flag("arch", "architecture: a class (LlamaForCausalLM) or model type (llama)"),
        Flag("task", "pipeline tag, e.g. text-generation"),
        Flag("license", "license id, e.g. apache-2.0"),
        Flag("max-params", "at most this many parameters, e.g. 8B", metavar="SIZE"),
        Flag("quant", "only checkpoints in this format", choices=QUANT_METHODS),
        Flag("fits", "only models that fit a node of this GPU (or 1xL4...)", metavar="GPU"),
        Flag("sort", "order", choices=tuple(SORTS), default="downloads"),
        Flag("page", "page of results", type=positive_int),
    ],
    examples=[
        "search qwen2.5 --task text-generation --max-params 8B",
        "search llama --fits L4 --sort likes",
        "search --arch Qwen2ForCausalLM --quant awq",
    ],
    audit=False,
)
def search(
    ctx: CommandContext,
    text: str | None,
    arch: str | None,
    task: str | None,
    license: str | None,
    max_params: str | None,
    quant: str | None,
    fits: str | None,
    sort: str,
    page: int | None,
) -> Reply:
    query = SearchQuery.build(
        max_params=max_params,
        text=text,
        arch=arch,
        task=task,
        license=license,
        quant=quant,
        fits=fits,
        sort=sort,
    )
    answer = ctx.core.hub.search(query)
    shown = paginate(answer.rows, page, SEARCH_PAGE)
    message = Message(fallback=f"{len(answer.rows)} model(s) for {query.describe()}")
    message.header(f"Hugging Face: {query.describe()}"[:150])
    fit_column = None
    if answer.gpu is not None:
        count = answer.gpu.count
        fit_column = f"fits {count}× {answer.gpu.name}" if count > 1 else f"fits {answer.gpu.name}"
    if not answer.rows:
        message.text(
            "No models match."
            + (
                f" The Hub returned {answer.fetched}; local filters (arch, quant, fit)"
                " removed them."
                if answer.fetched
                else ""
            )
        )
    else:
        columns = ["model", "params", "license", "downloads", "vLLM"]
        if fit_column:
            columns.append(fit_column)
        rows = []
        for row in shown.items:
            cells = [
                row.model.id,
                _params(row.model.params),
                shorten(row.model.license or "?", 20),
                _count(row.model.downloads),
                row.vllm,
            ]
            if fit_column:
                cells.append(row.fit.label if row.fit else "?")
            rows.append(cells)
        message.table(columns, rows)
    fresh = _freshness(
        ctx, answer.fetched_at, stale=answer.stale, note=answer.note, cached=answer.cached
    )
    scope = f"{shown.label} · from the top {answer.fetched} Hub results · {fresh}"
    message.context(scope)
    hints = ["`info <repo>` for details, `fit <repo>` to size one"]
    if any(r.fit is not None and r.fit.approx for r in shown.items):
        hints.append("~ = weights-only check (the Hub listed no full config.json)")
    hints.extend(answer.warnings)
    message.context(" · ".join(hints))
    again = _command(
        "search",
        text,
        arch=arch,
        task=task,
        license=license,
        max_params=max_params,
        quant=quant,
        fits=fits,
        sort=sort if sort != "downloads" else None,
    )
    message.buttons(*page_buttons(shown, again))
    hub = ctx.core.settings.hf_endpoint
    add_steps(
        message,
        (
            (
                f"*{r.model.id}* · {hub_link(hub, r.model.id)}",
                (
                    Button("Info", f"info {r.model.id}"),
                    Button("Fit", f"fit {r.model.id}"),
                    Button("Install", f"install {r.model.id}", style="primary"),
                ),
            )
            for r in shown.items[:ROWS_WITH_BUTTONS]
        ),
    )
    return Reply(
        message,
        data={
            "query": query.to_json(),
            "results": [r.to_json() for r in shown.items],
            "page": shown.number,
            "pages": shown.pages,
            "total": shown.total,
            "hub_results": answer.fetched,
            "stale": answer.stale,
            "cached": answer.cached,
            "note": answer.note,
            "fetched_at": answer.fetched_at.isoformat(),
        },
    )


# -- fit rendering shared by /model info and /model fit -----------------------------------------
def _gpu_label(profile: GpuProfile) -> str:
    return f"{profile.name} ({profile.memory_mib:,.0f} MiB)"


def _fit_cells(sized: SizedGpu) -> list[str]:
    choice, result = sized.choice, sized.result
    name = _gpu_label(choice.profile)
    if result is None:
        return [name, choice.availability(), "error", "-", "-", shorten(sized.error or "", 40)]
    verdict = "✅ yes" if result.fits else "❌ no"
    if result.fits and sized.fits_now is False:
        verdict += " (not free now)"
    tp = str(result.tensor_parallel_size) if result.tensor_parallel_size else "-"
    context = f"{result.recommended_max_model_len:,}" if result.fits else "-"
    weights = format_gib(result.weights.per_gpu(result.tensor_parallel_size or 1))
    return [name, choice.availability(), verdict, tp, context, weights]


def _fit_table(message: Message, report: FitReport, title: str | None = None) -> None:
    message.table(
        ["GPU", "available", "fits", "TP", "max context", "weights/GPU"],
        [_fit_cells(s) for s in report.sized],
        title=title,
    )


def _fit_data(report: FitReport) -> list[dict[str, Any]]:
    out = []
    for s in report.sized:
        r = s.result
        out.append(
            {
                "gpu": s.choice.profile.name,
                "gpu_memory_bytes": s.choice.profile.memory_bytes,
                "gpus_per_node": s.choice.profile.count,
                "source": s.choice.source,
                "free": s.choice.free,
                "fits": r.fits if r else None,
                "fits_now": s.fits_now,
                "tensor_parallel_size": r.tensor_parallel_size if r else None,
                "max_model_len": r.recommended_max_model_len if r else None,
                "largest_context": r.max_model_len if r else None,
                "weights_bytes": r.weights.total if r else None,
                "params_total": r.params.total if r else None,
                "params_active": r.params.active if r else None,
                "max_concurrency": round(r.max_concurrency, 2) if r else None,
                "quantization": r.quantization.label if r else None,
                "flags": list(r.flags) if r else [],
                "summary": r.summary() if r else None,
                "error": s.error,
            }
        )
    return out


def _parallel_label(result: FitResult) -> str:
    """``8`` on one node; ``8 × pipeline parallel 2 (2 nodes)`` across nodes."""
    label = str(result.tensor_parallel_size)
    if result.pipeline_parallel_size > 1:
        pp = result.pipeline_parallel_size
        label += f" × pipeline parallel {pp} ({pp} nodes)"
    return label


def _checkpoint_needed(
    repo: str, result: FitResult, arch: Architecture | None
) -> dict[str, Any] | None:
    """What to serve when the sized format (AWQ, GPTQ, GGUF...) is not this repository's: vLLM
    cannot quantize to it on load, so the answer names the checkpoint to look for, not a
    command that would serve this repository's 16-bit weights."""
    quant = result.checkpoint_needed
    if quant is None or not result.fits:
        return None
    name = repo.split("/")[-1]
    method = quant.method.lower()
    search = f"search {name} --quant {method}" if method in QUANT_METHODS else f"search {name}"
    flags = _serve_flags(result, arch)
    text = (
        f"*Serve a pre-quantized {method.upper()} checkpoint of this model*, not `{repo}` itself "
        f"(vLLM cannot quantize to {quant.label} when it loads): look for a repository such as "
        f"`{name}-{method.upper()}` with `/model {search}`, then `/model fit` that repository "
        f"for its exact command. Sized here with: `{' '.join(flags)}`"
    )
    return {"format": quant.label, "search": search, "flags": flags, "text": text}


def _serve_command(repo: str, result: FitResult, arch: Architecture | None) -> str:
    """``vllm serve`` with the estimator's flags plus the architecture's required engine args."""
    return " ".join(["vllm", "serve", repo, *_serve_flags(result, arch)])


def _serve_flags(result: FitResult, arch: Architecture | None) -> list[str]:
    flags = list(result.flags)
    extra = arch.cli_flags() if arch else []
    i = 0
    while i < len(extra):
        group = [extra[i]]
        if i + 1 < len(extra) and not extra[i + 1].startswith("--"):
            group.append(shlex.quote(extra[i + 1]))
        if group[0] not in flags:
            flags += group
        i += len(group)
    return flags


# -- /model info ---------------------------------------------------------------------------------
def _model_fields(model: HubModel) -> list[tuple[str, str]]:
    quant = model.quant or "16-bit"
    fields = [
        ("Parameters", _params(model.params)),
        ("License", model.license or "not stated"),
        ("Gated", _GATED.get(model.gated, str(model.gated))),
        ("Task", model.pipeline_tag or "?"),
        ("Downloads / likes", f"{_count(model.downloads)} / {_count(model.likes)}"),
        ("Last modified", _day(model.last_modified)),
        ("Commit", (model.sha or "?")[:12]),
        ("Weights format", quant),
    ]
    if model.library_name:
        fields.append(("Library", model.library_name))
    return fields


def _config_lines(report: ModelReport) -> str:
    config = report.config or {}
    if not config:
        return f"_{report.config_note or 'no config.json'}_"
    parts = [f"architecture `{report.architecture or '?'}`"]
    if config.get("model_type"):
        parts.append(f"model_type `{config['model_type']}`")
    explained = report.fit.explained if report.fit else None
    if explained and explained.result:
        parts.append(f"max context {explained.result.model_max_len:,} tokens")
    dtype = config.get("torch_dtype") or config.get("dtype")
    if dtype:
        parts.append(f"dtype {dtype}")
    if isinstance(config.get("num_hidden_layers"), int):
        parts.append(f"{config['num_hidden_layers']} layers")
    text = ", ".join(parts)
    return f"{text} _({report.config_note})_" if report.config_note else text


def _vllm_lines(report: ModelReport) -> str:
    if report.architecture is None:
        return "unknown: the config names no architecture"
    arch = report.vllm
    if arch is None:
        return (
            f"❌ `{report.architecture}` is not in vLLM's architecture table (`archs` lists them)"
        )
    text = f"✅ `{arch.name}`: {arch.description} ({', '.join(arch.tasks)})"
    flags = arch.cli_flags()
    if flags:
        text += f"\nRequired engine args: `{' '.join(flags)}`"
    for cond in arch.conditional_engine_args:
        args = " ".join(f"{k}={v}" for k, v in cond.args.items())
        text += f"\nWhen {cond.when}: `{args}`"
    return text


def _catalog_line(ctx: CommandContext, repo_id: str, entries: list[EntryView]) -> str:
    if not entries:
        return f"not in the catalog; `{ctx.command_prefix} catalog add {repo_id}` drafts an entry"
    parts = []
    for view in entries:
        entry = view.current
        pinned = f", pins {entry.commit[:7]}" if entry is not None else ""
        draft = f", draft {view.draft_state}" if view.git_status and view.draft_state else ""
        parts.append(f"`{view.entry_id}` {view.status}{pinned}{draft}")
    return "; ".join(parts)


@registry.command(
    "info",
    help="One card about a model: Hub metadata, config, vLLM support, fit per GPU, flags",
    args=[Arg("repo", "org/name or org/name@revision")],
    examples=["info Qwen/Qwen2.5-7B-Instruct", "info meta-llama/Llama-3.1-8B-Instruct@main"],
    audit=False,
)
def info(ctx: CommandContext, repo: str) -> Reply:
    repo_id, revision = parse_repo_ref(repo)
    report = ctx.core.hub.describe(repo_id, revision)
    model = report.model
    message = Message(fallback=f"{model.id}: model details")
    message.header(_ref(model.id, revision)[:150])
    message.fields(*_model_fields(model))
    message.text(f"*Config*: {_config_lines(report)}")
    message.text(f"*vLLM*: {_vllm_lines(report)}")
    entries = ctx.core.catalog.for_repo(model.id)
    catalog_note = _catalog_line(ctx, model.id, entries)
    message.text(f"*Catalog*: {catalog_note}")
    buttons: list[Button] = []
    recommended = None
    if report.fit is not None:
        _fit_table(message, report.fit, title="Fit per GPU type")
        recommended = report.fit.recommended
        if recommended is not None and recommended.result is not None:
            tp = recommended.result.tensor_parallel_size or 1
            message.text(f"*Recommended* on {tp}× {_gpu_label(recommended.choice.profile)}:")
            message.code(_serve_command(model.id, recommended.result, report.vllm))
        else:
            message.text("*Recommended*: it fits none of these GPU types; see `fit` for advice.")
        target = report.fit.explained
        gpu = target.choice.profile.name if target else None
        buttons.append(Button("Fit details", _command("fit", _ref(model.id, revision), gpu=gpu)))
    else:
        message.text(f"*Fit*: {report.fit_error}")
    if report.vllm is not None:
        buttons.append(Button("vLLM architecture", _command("arch", report.vllm.name)))
    message.buttons(*buttons)
    fresh = _freshness(
        ctx,
        report.fetched.fetched_at,
        stale=report.fetched.stale,
        note=report.fetched.note,
        cached=report.fetched.cached,
    )
    message.context(f"{fresh} · {ctx.core.settings.hf_endpoint.rstrip('/')}/{model.id}")
    data: dict[str, Any] = {
        "model": model.to_json() | {"params": model.params, "quant": model.quant},
        "config": report.config,
        "config_note": report.config_note,
        "architecture": report.architecture,
        "vllm_supported": report.vllm is not None,
        "vllm_engine_args": dict(report.vllm.engine_args or {}) if report.vllm else None,
        "catalog": [v.to_json() for v in entries] or None,
        "catalog_note": catalog_note,
        "fit": _fit_data(report.fit) if report.fit else None,
        "fit_error": report.fit_error,
        "recommended": (
            {
                "gpu": recommended.choice.profile.name,
                "command": _serve_command(model.id, recommended.result, report.vllm),
            }
            if recommended is not None and recommended.result is not None
            else None
        ),
        "stale": report.fetched.stale,
    }
    data["model"].pop("config", None)
    data["model"].pop("files", None)
    return Reply(message, data=data)


# -- /model fit ----------------------------------------------------------------------------------
@registry.command(
    "fit",
    help="Will a model fit our GPUs under vLLM: TP (and PP across nodes), max context, flags, "
    "the arithmetic",
    args=[Arg("repo", "org/name or org/name@revision")],
    flags=[
        Flag("gpu", "GPU type (from /model gpus, the catalog, or a size like 48GiB)"),
        Flag(
            "gpus",
            "GPUs that may be used (default: one node's, 8 off-cluster); more than a node "
            "holds run as pipeline-parallel stages across nodes",
            type=positive_int,
        ),
        Flag("context", "wanted --max-model-len, e.g. 32k", metavar="TOKENS"),
        Flag("quant", "size another format: fp8, awq, gptq, Q4_K_M..."),
        Flag("kv-cache-dtype", "KV cache dtype: auto or fp8", default="auto"),
    ],
    examples=[
        "fit Qwen/Qwen2.5-7B-Instruct",
        "fit meta-llama/Llama-3.1-70B --gpu H100 --context 32k",
    ],
    audit=False,
)
def fit(
    ctx: CommandContext,
    repo: str,
    gpu: str | None,
    gpus: int | None,
    context: str | None,
    quant: str | None,
    kv_cache_dtype: str,
) -> Reply:
    repo_id, revision = parse_repo_ref(repo)
    report = ctx.core.hub.fit(
        repo_id,
        revision,
        gpu=gpu,
        gpus=gpus,
        context=context,
        quant=quant,
        kv_cache_dtype=kv_cache_dtype,
    )
    model = report.model
    arch = (
        ctx.core.hub.architectures.catalog().lookup(model.architectures[0])
        if model.architectures
        else None
    )
    message = Message(fallback=f"Fit of {model.id}")
    message.header(f"Fit: {_ref(model.id, revision)}"[:150])
    if len(report.sized) > 1:
        _fit_table(message, report)
    target = report.explained
    result = target.result if target else None
    if target is None or result is None:
        message.text("No estimate: " + "; ".join(s.error or "" for s in report.sized))
        return Reply(message, ok=False, data={"fit": _fit_data(report)})
    icon = "✅" if result.fits else "❌"
    lead = "Recommended" if result.fits and len(report.sized) > 1 else "Result"
    message.text(f"*{lead}*: {icon} {model.id} {result.summary()}")
    fields = [
        ("GPU", f"{_gpu_label(target.choice.profile)}, {target.choice.profile.count} per node"),
        ("Available", target.choice.availability()),
    ]
    if result.fits:
        fields += [
            ("Tensor parallel", _parallel_label(result)),
            ("Context", f"{result.recommended_max_model_len:,} of {result.model_max_len:,} tokens"),
            ("Concurrency at that context", f"{result.max_concurrency:.1f}×"),
        ]
    else:
        largest = f"{result.max_model_len:,} tokens" if result.max_model_len else "none"
        fields += [
            ("Context wanted", f"{result.context:,} tokens"),
            ("Largest that fits", largest),
        ]
    fields += [
        ("Parameters", format_params(result.params.total)),
        ("Weights", f"{format_gib(result.weights.total)} ({result.quantization.label})"),
    ]
    message.fields(*fields)
    command = _serve_command(model.id, result, arch) if result.fits else None
    needed = _checkpoint_needed(model.id, result, arch)
    if needed is not None:
        command = None
        message.text(needed["text"])
    elif command:
        message.code(command)
    if result.advice:
        message.text("*Advice*\n" + "\n".join(f"• {a}" for a in result.advice))
    notes = [*result.notes, *report.notes]
    if report.config_source != "config.json":
        notes.append(f"config from {report.config_source}")
    if notes:
        message.context(" · ".join(notes)[:2900])
    message.details(f"Arithmetic ({target.choice.profile.name})", list(result.arithmetic))
    return Reply(
        message,
        data={
            "model": model.id,
            "revision": revision,
            "commit": model.sha,
            "config_source": report.config_source,
            "fit": _fit_data(report),
            "explained": target.choice.profile.name,
            "fits": result.fits,
            "command": command,
            "checkpoint_needed": needed,
            "advice": list(result.advice),
            "arithmetic": list(result.arithmetic),
            "figures": result.figures(),
            "stale": report.fetched.stale,
        },
    )


# -- /model archs, /model arch -------------------------------------------------------------------
def _arch_args(arch: Architecture) -> str:
    flags = arch.cli_flags()
    return " ".join(flags) if flags else "-"


@registry.command(
    "archs",
    help="Architectures vLLM can serve (search by name, model or description)",
    args=[Arg("text", "words to look for", required=False, rest=True)],
    flags=[Flag("page", "page of results", type=positive_int)],
    examples=["archs", "archs qwen3", "archs embed"],
    audit=False,
)
def archs(ctx: CommandContext, text: str | None, page: int | None) -> Reply:
    store = ctx.core.hub.architectures
    catalog = store.catalog()
    found = catalog.search(text) if text else sorted(catalog.architectures, key=lambda a: a.name)
    shown = paginate(found, page, ARCHS_PAGE)
    said = echo.shown(text, quote=False) if text else ""
    title = f"vLLM architectures matching “{said}”" if text else "vLLM architectures"
    message = Message(fallback=f"{len(found)} vLLM architecture(s)").header(title[:150])
    if not found:
        message.text(f"None match `{said}`.")
    else:
        message.table(
            ["architecture", "tasks", "description", "engine args"],
            [
                [a.name, ",".join(a.tasks), a.description[:50], _arch_args(a)[:30]]
                for a in shown.items
            ],
        )
    message.context(f"{shown.label} · {store.info().describe()} · `arch <name>` for one")
    message.buttons(*page_buttons(shown, _command("archs", text)))
    return Reply(
        message,
        data={
            "architectures": [
                {"name": a.name, "tasks": list(a.tasks), "description": a.description}
                for a in shown.items
            ],
            "page": shown.number,
            "pages": shown.pages,
            "total": shown.total,
        },
    )


@registry.command(
    "arch",
    help="One vLLM architecture: what it is, tasks, example models, required engine args",
    args=[Arg("name", "class name from config.json, e.g. LlamaForCausalLM")],
    examples=["arch Qwen2ForCausalLM"],
    audit=False,
)
def arch(ctx: CommandContext, name: str) -> Reply:
    store = ctx.core.hub.architectures
    found = store.catalog().lookup(name)
    if found is None:
        names = store.catalog().names()
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.75) or [
            a.name for a in store.catalog().search(name, limit=3)
        ]
        hint = f"; close: {', '.join(close)}" if close else "; `archs <text>` searches"
        raise NotFoundError(f"vLLM does not list an architecture {name!r}{hint}")
    message = Message(fallback=f"{found.name}: {found.description}").header(found.name)
    message.text(found.description)
    fields = [
        ("Tasks", ", ".join(found.tasks)),
        ("Multimodal", "yes" if found.multimodal else "no"),
        ("Implementation", found.implementation or "?"),
        ("Engine args", _arch_args(found)),
    ]
    if found.inputs:
        fields.append(("Inputs", ", ".join(found.inputs)))
    if found.min_transformers_version:
        fields.append(("Needs transformers", f">= {found.min_transformers_version}"))
    if found.transformers_backend:
        fields.append(("Backend", "Transformers"))
    message.fields(*fields)
    for cond in found.conditional_engine_args:
        args = " ".join(f"{k}={v}" for k, v in cond.args.items())
        message.text(f"When {cond.when}: `{args}`")
    if found.examples:
        message.text("*Example models*: " + ", ".join(f"`{e}`" for e in found.examples[:8]))
        message.buttons(
            *[Button(f"Info {e}"[:75], _command("info", e)) for e in found.examples[:3]]
        )
    message.context(store.info().describe())
    return Reply(
        message,
        data={
            "name": found.name,
            "description": found.description,
            "tasks": list(found.tasks),
            "multimodal": found.multimodal,
            "engine_args": dict(found.engine_args or {}),
            "flags": found.cli_flags(),
            "examples": list(found.examples),
        },
    )


# -- /model gpus ---------------------------------------------------------------------------------
def _gpu_data(snap: GpuInventorySnapshot) -> dict[str, Any]:
    return snap.to_json() | {
        "types": [
            {
                "gpu": c.profile.name,
                "memory_bytes": c.profile.memory_bytes,
                "per_node": c.profile.count,
                "nodes": c.nodes,
                "total": c.total,
                "free": c.free,
                "source": c.source,
            }
            for c in snap.choices()
        ]
    }


@registry.command(
    "gpus",
    help="GPU inventory: products, memory, counts per node and how many are free",
    flags=[Flag("refresh", "read Kubernetes now instead of the cached inventory", type=None)],
    examples=["gpus", "gpus --refresh"],
    audit=False,
)
def gpus(ctx: CommandContext, refresh: bool) -> Reply:
    snap = ctx.core.gpus.snapshot(refresh=refresh)
    message = Message(fallback="GPU inventory").header("GPU inventory")
    cluster = snap.cluster_nodes
    static = [n for n in snap.nodes if n.source == "settings"]
    if cluster:
        message.table(
            ["node", "GPU", "memory", "GPUs", "allocatable", "requested", "free", "status"],
            [
                [
                    n.name,
                    n.gpu,
                    f"{n.memory_mib / 1024:.1f} GiB" if n.memory_mib else "?",
                    str(n.count),
                    str(n.allocatable if n.allocatable is not None else "?"),
                    str(n.requested if n.requested is not None else "?"),
                    str(n.free if n.free is not None else "?"),
                    n.status,
                ]
                for n in cluster
            ],
            title="Kubernetes nodes",
        )
    if static:
        message.table(
            ["profile", "memory", "GPUs per node", "nodes"],
            [
                [n.gpu, f"{(n.memory_mib or 0) / 1024:.1f} GiB", str(n.count), str(n.nodes)]
                for n in static
            ],
            title="Static GPU profiles (settings)",
        )
    choices = snap.choices()
    if choices:
        message.table(
            ["GPU type", "nodes", "GPUs", "free", "source"],
            [
                [
                    c.profile.describe(),
                    str(c.nodes),
                    str(c.total),
                    str(c.free) if c.free is not None else "?",
                    c.source,
                ]
                for c in choices
            ],
            title="By type",
        )
    if not snap.nodes:
        message.text(
            "No GPUs known: Kubernetes "
            + (
                "is not configured (set KUBECONFIG)"
                if snap.kubernetes == "not configured"
                else f"reports none ({snap.kubernetes})"
            )
            + " and MODELARIUM_GPU_PROFILES is empty. `fit` sizes against catalog GPUs meanwhile."
        )
    if snap.kubernetes == "ok" and snap.fetched_at is not None:
        status = f"Kubernetes: read {_age(ctx, snap.fetched_at)}"
    elif snap.kubernetes == "stale" and snap.fetched_at is not None:
        status = f"⚠️ Kubernetes: stale, read {_age(ctx, snap.fetched_at)}; {snap.note}"
    else:
        status = f"Kubernetes: {snap.kubernetes}"
    message.context(" · ".join([status, *snap.warnings])[:2900])
    if snap.kubernetes not in ("not configured",):
        message.buttons(Button("Refresh", "gpus --refresh"))
    return Reply(message, data=_gpu_data(snap))
