"""`/model ollama list|show|create|copy|pull|push|rm --endpoint E`: models on an Ollama endpoint.

Pull, push and create run as jobs (one message edited in place with progress); rm asks for an
approval first. ``show`` extracts the model's Modelfile and can store it or split it into
library elements.
"""

from __future__ import annotations

from modelarium.bot.commands.changes import proposal_reply
from modelarium.bot.commands.context import CommandContext
from modelarium.bot.commands.modelfiles import (
    element_fields,
    elements_saved_reply,
    problem_lines,
    require,
    save_elements,
    saved_reply,
)
from modelarium.bot.commands.parsing import ident, positive_int
from modelarium.bot.commands.registry import registry
from modelarium.bot.commands.spec import Arg, Flag
from modelarium.bot.pagination import page_buttons, paginate
from modelarium.bot.reply import Reply
from modelarium.core.clients.ollama import human_size
from modelarium.core.errors import UsageError
from modelarium.core.jobs import JobView
from modelarium.core.messages import Button, Message
from modelarium.core.modelfiles.library import check_name, preview_text
from modelarium.core.modelfiles.ollama_ops import DELETE_ACTION, PULL_JOB, PUSH_JOB
from modelarium.core.rbac import Role

ENDPOINT = Flag("endpoint", "a registered Ollama endpoint", metavar="E")


def _job_reply(ctx: CommandContext, job: JobView, what: str) -> Reply:
    message = Message(fallback=f"Job #{job.id} queued").text(
        f"⏳ {what}: job *#{job.id}*. Its progress is shown in one message, updated in place."
    )
    message.context(f"`{ctx.command_prefix} cancel {job.id}` stops it.")
    return Reply(message, data={"job_id": job.id, "kind": job.kind, "status": job.status})


@registry.command(
    "ollama list",
    help="Models on an Ollama endpoint",
    flags=[ENDPOINT, Flag("page", type=positive_int, metavar="N")],
    examples=["ollama list --endpoint gpu-box-1"],
    audit=False,
)
def ollama_list(ctx: CommandContext, endpoint: str | None, page: int | None) -> Reply:
    models = ctx.core.modelfiles.ollama.list_models(endpoint, ctx.user)
    shown = paginate(models, page)
    message = Message(fallback=f"Models on {endpoint}").header(f"🦙 Models on {endpoint}")
    message.table(
        ["name", "size", "params", "quant", "family", "modified"],
        [
            [
                m.name,
                human_size(m.size),
                m.details.parameter_size,
                m.details.quantization_level,
                m.details.family,
                m.modified_at[:16].replace("T", " "),
            ]
            for m in shown.items
        ],
    )
    message.context(shown.label)
    message.buttons(*page_buttons(shown, f"ollama list --endpoint {endpoint}"))
    return Reply(
        message,
        data={
            "endpoint": endpoint,
            "models": [
                {
                    "name": m.name,
                    "size": m.size,
                    "digest": m.digest,
                    "family": m.details.family,
                    "parameter_size": m.details.parameter_size,
                    "quantization_level": m.details.quantization_level,
                }
                for m in shown.items
            ],
            "total": shown.total,
        },
    )


@registry.command(
    "ollama show",
    help="A model's details and Modelfile, split into elements; --save/--split keep them",
    args=[Arg("model")],
    flags=[
        ENDPOINT,
        Flag("save", "store the extracted Modelfile under this name", metavar="NAME"),
        Flag("split", "save its parts as elements named PREFIX-system, ...", metavar="PREFIX"),
    ],
    examples=[
        "ollama show llama3.2 --endpoint gpu-box-1",
        "ollama show llama3.2 --endpoint gpu-box-1 --save llama3.2-base --split llama3.2",
    ],
)
def ollama_show(
    ctx: CommandContext, model: str, endpoint: str | None, save: str | None, split: str | None
) -> Reply:
    if save is not None or split is not None:
        require(ctx, Role.OPERATOR, "saving a Modelfile or elements")
    if save is not None:
        check_name(save)
    shown, extracted = ctx.core.modelfiles.ollama.show(endpoint, ctx.user, model)
    data = {
        "endpoint": endpoint,
        "model": model,
        "details": {
            "family": shown.details.family,
            "parameter_size": shown.details.parameter_size,
            "quantization_level": shown.details.quantization_level,
            "format": shown.details.format,
        },
        "capabilities": list(shown.capabilities),
        "modelfile": extracted.text,
        "ollama_modelfile": shown.modelfile,
        "elements": extracted.elements.to_dict(),
        "dropped": list(extracted.dropped),
    }
    if save is not None:
        view = ctx.core.modelfiles.library.save(
            save,
            extracted.text,
            author=ctx.user,
            message=f"extracted from {model} on {endpoint}",
            source="extract",
            force=True,
        )
        reply = saved_reply(view, preview_text(view.text), ctx, "Extracted and saved")
        reply.data.update(data)
        if split is not None:
            saved = save_elements(ctx, extracted.elements, split, f"from {model} on {endpoint}")
            reply.data["split"] = elements_saved_reply(saved, "").data["elements"]
            reply.message.context(
                "Elements: " + ", ".join(f"{v.name}@{v.number}" for v, _ in saved)
            )
        return reply
    if split is not None:
        saved = save_elements(ctx, extracted.elements, split, f"from {model} on {endpoint}")
        reply = elements_saved_reply(saved, f"from {model} on {endpoint}")
        reply.data.update(data)
        return reply
    details = shown.details
    message = Message(fallback=f"{model} on {endpoint}").header(f"🦙 {model} on {endpoint}")
    message.fields(
        ("Family", details.family or "?"),
        ("Parameters", details.parameter_size or "?"),
        ("Quantization", details.quantization_level or "?"),
        ("Capabilities", ", ".join(shown.capabilities) or "?"),
    )
    message.fields(*element_fields(extracted.elements))
    preview = preview_text(extracted.text)
    if preview.problems:
        message.text(problem_lines(preview.problems))
    message.code(extracted.text)
    if extracted.dropped:
        message.context(
            f"Left out {len(extracted.dropped)} line(s) naming files inside the endpoint; a model "
            f"built FROM {extracted.base} inherits them."
        )
    message.buttons(
        Button(
            "Save Modelfile", f"ollama show {model} --endpoint {endpoint} --save {_safe(model)}"
        ),
        Button(
            "Split into elements",
            f"ollama show {model} --endpoint {endpoint} --split {_safe(model)}",
        ),
    )
    return Reply(message, data=data)


def _safe(model: str) -> str:
    return model.replace(":", "-").replace("/", "-")


@registry.command(
    "ollama create",
    help="Create a model on an Ollama endpoint from a stored Modelfile (a job)",
    role=Role.OPERATOR,
    args=[Arg("model", "the new model's name")],
    flags=[
        ENDPOINT,
        Flag("modelfile", "the stored Modelfile", metavar="NAME[@REV]"),
        Flag("revision", type=ident("revision")),
        Flag("quantize", "quantize while creating (e.g. q4_K_M)"),
    ],
    examples=["ollama create assistant --modelfile assistant --endpoint gpu-box-1"],
)
def ollama_create(
    ctx: CommandContext,
    model: str,
    endpoint: str | None,
    modelfile: str | None,
    revision: int | None,
    quantize: str | None,
) -> Reply:
    if not modelfile:
        raise UsageError("--modelfile is required (the stored Modelfile to create from)")
    view = ctx.core.modelfiles.library.revision(modelfile, revision)
    job = ctx.core.modelfiles.ollama.start_create(
        endpoint, ctx.user, model, view, quantize=quantize, channel=ctx.channel
    )
    return _job_reply(ctx, job, f"Creating {model} on {endpoint} from {view.ref}")


@registry.command(
    "ollama copy",
    help="Copy a model on an Ollama endpoint under a new name",
    role=Role.OPERATOR,
    args=[Arg("source"), Arg("destination")],
    flags=[ENDPOINT],
    examples=["ollama copy llama3.2 llama3.2-backup --endpoint gpu-box-1"],
)
def ollama_copy(ctx: CommandContext, source: str, destination: str, endpoint: str | None) -> Reply:
    ctx.core.modelfiles.ollama.copy(endpoint, ctx.user, source, destination)
    return Reply.say(
        f"✅ Copied {source} to {destination} on {endpoint}.",
        endpoint=endpoint,
        source=source,
        destination=destination,
    )


@registry.command(
    "ollama pull",
    help="Pull a model onto an Ollama endpoint (a job with live progress)",
    role=Role.OPERATOR,
    args=[Arg("model")],
    flags=[ENDPOINT],
    examples=["ollama pull llama3.2 --endpoint gpu-box-1"],
)
def ollama_pull(ctx: CommandContext, model: str, endpoint: str | None) -> Reply:
    job = ctx.core.modelfiles.ollama.start_transfer(
        PULL_JOB, endpoint, ctx.user, model, channel=ctx.channel
    )
    return _job_reply(ctx, job, f"Pulling {model} onto {endpoint}")


@registry.command(
    "ollama push",
    help="Push a model from an Ollama endpoint to its registry (a job with live progress)",
    role=Role.OPERATOR,
    args=[Arg("model")],
    flags=[ENDPOINT],
    examples=["ollama push myorg/assistant --endpoint gpu-box-1"],
)
def ollama_push(ctx: CommandContext, model: str, endpoint: str | None) -> Reply:
    job = ctx.core.modelfiles.ollama.start_transfer(
        PUSH_JOB, endpoint, ctx.user, model, channel=ctx.channel
    )
    return _job_reply(ctx, job, f"Pushing {model} from {endpoint}")


@registry.command(
    "ollama rm",
    help="Delete a model from an Ollama endpoint (after an approval)",
    role=Role.OPERATOR,
    args=[Arg("model")],
    flags=[ENDPOINT],
    examples=["ollama rm llama3.2-backup --endpoint gpu-box-1"],
)
def ollama_rm(ctx: CommandContext, model: str, endpoint: str | None) -> Reply:
    proposal = ctx.core.changes.propose(
        DELETE_ACTION, {"endpoint": endpoint, "model": model}, ctx.user, ctx.channel
    )
    return proposal_reply(ctx, proposal, data={"endpoint": endpoint, "model": model})
