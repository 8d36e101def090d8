"""Pull request titles, bodies and commit messages: what changed and why it matters.

A reviewer merging a catalog PR approves a model for the fleet, so the body puts side by side what
they need to judge: the pinned commit and its model card, the licence, the size, the parameter
counts, the fit verdict on each GPU type and where the verified weights live.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from modelarium.core.catalog.entry import CatalogEntry, GpuFit
from modelarium.core.fit import format_params

KINDS = ("new-model", "update", "deprecation")
TRAILER = "Modelarium-Catalog-Entry"
"""Commit trailer naming the entry: how Modelarium recognises its own commits on a branch."""
_VERBS = {"new-model": "Add", "update": "Update", "deprecation": "Deprecate"}


@dataclass(frozen=True)
class PullText:
    title: str
    body: str
    message: str  # the commit message


def kind_for(entry: CatalogEntry, before: CatalogEntry | None) -> str:
    """``new-model`` for an entry Git does not have, ``deprecation`` for a move to deprecated or
    retired, ``update`` otherwise."""
    if before is None:
        return "new-model"
    if entry.status in ("deprecated", "retired") and before.status != entry.status:
        return "deprecation"
    return "update"


def _size(num_bytes: int | None) -> str:
    if not num_bytes:
        return "—"
    return f"{num_bytes / 1e9:,.1f} GB"


def _params(entry: CatalogEntry | None) -> str:
    if entry is None:
        return "—"
    if entry.params_active == entry.params_total:
        return format_params(entry.params_total)
    return f"{format_params(entry.params_total)} ({format_params(entry.params_active)} active)"


def _verdict(fit: GpuFit | None) -> str:
    if fit is None:
        return "—"
    if not fit.fits:
        return "does not fit"
    gpus = f"{fit.gpus}×" if fit.gpus else ""
    context = f", {fit.max_model_len:,} tokens" if fit.max_model_len else ""
    return f"fits on {gpus}{context}"


def _cell(value: str | None) -> str:
    return (value or "—").replace("|", "\\|").replace("\n", " ")


def render(
    entry: CatalogEntry,
    before: CatalogEntry | None,
    kind: str,
    *,
    reason: str,
    requested_by: str,
    hub_url: str = "https://huggingface.co",
    size_bytes: int | None = None,
    size_before: int | None = None,
    notes: Sequence[str] = (),
) -> PullText:
    verb = _VERBS[kind]
    title = f"catalog: {verb.lower()} {entry.id}"
    if kind == "deprecation":
        title = f"catalog: mark {entry.id} {entry.status}"
    elif kind == "update" and before is not None and before.commit != entry.commit:
        title = f"catalog: update {entry.id} to {entry.repo}@{entry.commit[:7]}"
    hub = hub_url.rstrip("/")
    card = f"{hub}/{entry.repo}/blob/{entry.commit}/README.md"

    def commit_link(e: CatalogEntry | None) -> str:
        if e is None:
            return "—"
        return f"[{e.repo}@{e.commit[:7]}]({hub}/{e.repo}/tree/{e.commit})"

    rows = [
        ("Hugging Face commit", commit_link(before), commit_link(entry)),
        ("Licence", before.license if before else None, entry.license),
        ("Size", _size(size_before) if before else None, _size(size_bytes)),
        ("Parameters", _params(before) if before else None, _params(entry)),
        ("Architecture", before.architecture if before else None, entry.architecture),
        (
            "Context length",
            f"{before.context_length:,}" if before else None,
            f"{entry.context_length:,}",
        ),
        ("Quantization", before.quantization if before else None, entry.quantization),
        ("Storage", before.storage_uri if before else None, entry.storage_uri),
        ("Status", before.status if before else None, entry.status),
    ]
    lines = [f"## {verb} `{entry.id}`: {entry.display_name}", "", f"**Why:** {reason}", ""]
    lines += ["| | before | after |", "|---|---|---|"]
    for label, old, new in rows:
        mark = "" if before is None or old == new else " **(changed)**"
        lines.append(f"| {label}{mark} | {_cell(old)} | {_cell(new)} |")
    gpus = list(
        dict.fromkeys([*entry.gpu_compatibility, *(before.gpu_compatibility if before else {})])
    )
    if gpus:
        lines += ["", "### Fit per GPU type", "", "| GPU | before | after |", "|---|---|---|"]
        for gpu in gpus:
            old_fit = before.gpu_compatibility.get(gpu) if before else None
            lines.append(
                f"| {_cell(gpu)} | {_verdict(old_fit) if before else '—'} | "
                f"{_verdict(entry.gpu_compatibility.get(gpu))} |"
            )
    if entry.serving_gpu:
        args = " ".join(entry.serving_args)
        lines += ["", f"Serving defaults ({entry.serving_gpu}): `vllm serve {entry.repo} {args}`"]
    lines += ["", f"Model card: {card}"]
    lines += [f"- {note}" for note in notes]
    outcome = {
        "new-model": "merging this PR approves the entry",
        "update": "merging this PR approves the new version",
        "deprecation": f"merging this PR marks the entry {entry.status}",
    }[kind]
    lines += ["", f"<sub>Opened by Modelarium for {requested_by}; {outcome}.</sub>", ""]
    message = f"{title}\n\n{reason}\n\n{TRAILER}: {entry.id}\n"
    return PullText(title, "\n".join(lines), message)
