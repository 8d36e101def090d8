"""`/model publish` and `/model upload`: weights and model files into bucket locations."""

from __future__ import annotations

from modelarium.bot.commands.changes import proposal_reply
from modelarium.bot.commands.context import CommandContext
from modelarium.bot.commands.registry import registry
from modelarium.bot.commands.spec import Arg, Flag
from modelarium.bot.reply import Reply
from modelarium.core.errors import NotBuiltError
from modelarium.core.rbac import Role
from modelarium.core.weights.publish import PUBLISH
from modelarium.core.weights.service import parse_model_ref
from modelarium.core.weights.upload import UPLOAD


@registry.command(
    "publish",
    help="Copy verified weights from a volume to a bucket location (resumable, verified); "
    "records the storage_uri",
    role=Role.OPERATOR,
    args=[Arg("model", "org/name, or org/name@revision")],
    flags=[
        Flag("to", "the bucket location (type s3)", metavar="L"),
        Flag("from", "the volume it is installed on (default: any)", metavar="L"),
    ],
    examples=["publish Qwen/Qwen2.5-7B-Instruct --to models-s3"],
)
def publish(ctx: CommandContext, model: str, to: str | None, **flags: str | None) -> Reply:
    repo_id, revision = parse_model_ref(model)
    if not to:
        buckets = [loc.name for loc in ctx.core.weights.locations if loc.is_bucket]
        if len(buckets) != 1:
            return Reply.error(
                "say which bucket location with --to"
                + (f" ({', '.join(buckets)})" if buckets else " (none configured)"),
                usage=f"{ctx.command_prefix} publish <model> --to <location>",
            )
        to = buckets[0]
    params = {"repo": repo_id, "revision": revision, "from": flags.get("from"), "to": to}
    proposal = ctx.core.changes.propose(PUBLISH, params, ctx.user, ctx.channel)
    facts = proposal.plan.facts if proposal.plan else {}
    return proposal_reply(
        ctx, proposal, data={"repo": repo_id, "to": to, "storage_uri": facts.get("storage_uri")}
    )


@registry.command(
    "upload",
    help="Store a model file (safetensors, JSON config, tokenizer) in a bucket under "
    "models/<model-id>/<version>/: validated, resumable, one progress card",
    role=Role.OPERATOR,
    args=[Arg("model-id", "the model's id (a catalog id, or org/name)")],
    flags=[
        Flag("file", "path of the file (readable where the daemon runs)", metavar="PATH"),
        Flag("version", "folder version (default v1)", metavar="V"),
        Flag("location", "the bucket location (default: the first of type s3)", metavar="L"),
        Flag("as", "name in the folder (default: the file's name)", metavar="NAME"),
    ],
    examples=["upload qwen2.5-7b-instruct --file ./config.json --version 2024-06"],
)
def upload(
    ctx: CommandContext,
    model_id: str,
    file: str | None,
    version: str | None,
    location: str | None,
    **flags: str | None,
) -> Reply:
    usage = f"{ctx.command_prefix} upload <model-id> --file PATH [--version V]"
    if ctx.remote:  # --file names a file on our machine, not the caller's
        raise NotBuiltError(
            f"uploading files {ctx.traits.where} is not built yet: upload from the shell or "
            "`modelarium cmd -- upload <model-id> --file PATH`"
        )
    if not file:
        return Reply.error("--file is required", usage=usage)
    params = {
        "model_id": model_id,
        "version": version or "v1",
        "file": file,
        "name": flags.get("as"),
        "to": location,
    }
    proposal = ctx.core.changes.propose(UPLOAD, params, ctx.user, ctx.channel)
    facts = proposal.plan.facts if proposal.plan else {}
    return proposal_reply(
        ctx, proposal, data={"model_id": model_id, "storage_uri": facts.get("storage_uri")}
    )
