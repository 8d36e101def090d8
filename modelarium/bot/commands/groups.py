"""`/model groups` and `/model group create|show|challenge|traffic|pick|eval|compare|promote|
rollback|delete`: champion and challengers compared on evidence, promoted through approvals."""

from __future__ import annotations

from typing import Any

from modelarium.bot.commands.changes import proposal_reply
from modelarium.bot.commands.context import CommandContext
from modelarium.bot.commands.inputs import read_document
from modelarium.bot.commands.parsing import positive_int
from modelarium.bot.commands.registry import registry
from modelarium.bot.commands.spec import Arg, Flag
from modelarium.bot.reply import Attachment, Reply
from modelarium.config.units import format_duration, parse_duration
from modelarium.core.errors import ModelariumError, UsageError
from modelarium.core.groups.canary import CANARY
from modelarium.core.groups.changes import DELETE, PROMOTE, ROLLBACK, TRAFFIC
from modelarium.core.groups.evaluate import load_prompts, read_prompts
from modelarium.core.groups.views import GroupView, check_traffic
from modelarium.core.messages import Message, timestamp
from modelarium.core.rbac import Role

NAME = Arg("name", "the group's name")
PROMPTS_LIMIT = 4 * 1024 * 1024


def _duration(value: str) -> float:
    try:
        return parse_duration(value)
    except ValueError:
        raise UsageError(f"expected a duration like 30m, 6h or 7d, not {value[:30]!r}") from None


def _fraction(value: str) -> float:
    try:
        return float(value.strip().rstrip("%")) / (100.0 if value.strip().endswith("%") else 1.0)
    except ValueError:
        raise UsageError(f"expected a number like 0.01 or 1%, not {value[:30]!r}") from None


def _number(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise UsageError(f"expected a number, not {value[:30]!r}") from None


def _members_table(message: Message, group: GroupView) -> None:
    message.table(
        ["member", "role", "traffic"],
        [[m.name, m.role, f"{m.traffic}%"] for m in group.members],
    )


# -- /model groups -------------------------------------------------------------------------------
@registry.command(
    "groups",
    help="Model groups: strategy, status, champion and challengers with their traffic",
    examples=["groups"],
    audit=False,
)
def groups(ctx: CommandContext) -> Reply:
    found = ctx.core.groups.list()
    message = Message(fallback=f"{len(found)} group(s)").header("Model groups")
    if not found:
        message.text(
            f"No groups. Create one with `{ctx.command_prefix} group create <name> "
            "--champion <endpoint>/<model>`."
        )
    else:
        message.table(
            ["group", "strategy", "status", "champion", "challengers"],
            [
                [
                    g.name,
                    g.strategy,
                    g.status,
                    f"{g.champion.name} ({g.champion.traffic}%)" if g.champion else "—",
                    ", ".join(f"{c.name} ({c.traffic}%)" for c in g.challengers) or "—",
                ]
                for g in found
            ],
        )
    return Reply(message, data={"groups": [g.to_json() for g in found]})


# -- create / show / delete ----------------------------------------------------------------------
@registry.command(
    "group create",
    help="Create a group with its champion on 100% of the traffic (and its own inference table)",
    role=Role.OPERATOR,
    args=[NAME],
    flags=[
        Flag("champion", "the champion: <endpoint>/<model> of a registered endpoint"),
        Flag(
            "strategy",
            "split (registered endpoints) or canary (revisions of a KServe deployment)",
            choices=("split", "canary"),
            default="split",
        ),
        Flag("min-requests", "rule: requests every member needs", positive_int, metavar="N"),
        Flag(
            "max-error-increase",
            "rule: error rate increase allowed (0.01 or 1%)",
            _fraction,
            metavar="X",
        ),
        Flag("max-p95-ratio", "rule: challenger p95 / champion p95, at most", _number, metavar="R"),
        Flag("significance", "rule: significance level of the tests", _number, metavar="A"),
        Flag("retention", "how long records are kept (default 30d)", _duration, metavar="DURATION"),
    ],
    examples=[
        "group create chat --champion gpu-1/llama3:8b",
        "group create chat --champion vllm/meta-llama/Llama-3.1-8B-Instruct --min-requests 500",
    ],
)
def group_create(
    ctx: CommandContext,
    name: str,
    champion: str | None,
    strategy: str,
    min_requests: int | None,
    max_error_increase: float | None,
    max_p95_ratio: float | None,
    significance: float | None,
    retention: float | None,
) -> Reply:
    if not champion:
        raise UsageError(
            "say who the champion is: --champion <endpoint>/<model> (split) or "
            "--champion <namespace>/<deployment> (canary)"
        )
    overrides = {
        "min_requests": min_requests,
        "max_error_increase": max_error_increase,
        "max_p95_ratio": max_p95_ratio,
        "significance": significance,
        "retention": retention,
    }
    service = ctx.core.groups
    group, token = service.create(ctx.user, name, champion, strategy=strategy, overrides=overrides)
    if group.strategy == "canary":
        # The champion's revision needs KServe's logger before there is anything to compare.
        proposal = ctx.core.changes.propose(
            CANARY, {"group": group.name, "op": "attach"}, ctx.user, ctx.channel
        )
        reply = proposal_reply(ctx, proposal, data={**group.to_json(), "token_set": bool(token)})
        champ = group.champion.name if group.champion else "?"
        reply.message.blocks.insert(
            0,
            Message()
            .text(
                f"✅ Created canary group *{group.name}* on `{group.deployment}`: champion "
                f"`{champ}` (its revision). Attaching KServe's logger to it is a change:"
            )
            .blocks[0],
        )
        return reply
    message = Message(fallback=f"Group {group.name} created").header(f"Group {group.name}")
    message.text(
        f"✅ Created group *{group.name}* ({group.strategy}): champion `{champion}` on 100%."
    )
    message.context(
        f"Add a challenger: `{ctx.command_prefix} group challenge {group.name} <endpoint>/<model> "
        f"--traffic 10` · compare them: `{ctx.command_prefix} group eval {group.name}`"
    )
    url = service.logger_url(group, champion)
    message.context(
        "Logger events: POST /inference/events/<group>/<member> with this group's token "
        "(shown by `group show`)."
        if url is None
        else "KServe's logger URL for the champion is in `group show`."
    )
    return Reply(message, data={**group.to_json(), "token_set": bool(token)})


@registry.command(
    "group show",
    help="One group: members and traffic, rules, logger URLs, recent history",
    args=[NAME],
    examples=["group show chat"],
    audit=False,
)
def group_show(ctx: CommandContext, name: str) -> Reply:
    service = ctx.core.groups
    group = service.get(name)
    history = service.history(group.name)
    message = Message(fallback=f"Group {group.name}").header(f"Group {group.name}"[:150])
    message.fields(
        ("Strategy", group.strategy),
        ("Status", group.status),
        ("Records", f"table `{group.table_name}`"),
        ("Retention", format_duration(group.rules.retention)),
    )
    _members_table(message, group)
    rules = group.rules
    message.context(
        f"Rules: ≥ {rules.min_requests:,} requests per member · error rate at most "
        f"+{rules.max_error_increase * 100:g} points · p95 at most {rules.max_p95_ratio:g}× the "
        f"champion's · significance {rules.significance:g}"
        + (" (overridden: " + ", ".join(sorted(group.overrides)) + ")" if group.overrides else "")
    )
    live: dict[str, Any] | None = None
    if group.strategy == "canary" and group.deployment:
        try:
            live = ctx.core.groups.live(group)
        except ModelariumError as exc:
            message.context(f"⚠️ The cluster could not be read ({exc}).")
        else:
            split = ", ".join(
                f"{t['percent']}% {t['revisionName']}" + (f" ({t['tag']})" if t.get("tag") else "")
                for t in live["traffic"]
            )
            message.context(f"KServe splits `{group.deployment}` now: {split or '—'}")
    urls: dict[str, str | None] = {}
    can_see_token = ctx.role >= Role.OPERATOR
    for member in group.active:
        urls[member.name] = (
            service.logger_url(group, member.name, reveal=True) if can_see_token else None
        )
    if not ctx.core.settings.public_url:
        message.context("Set MODELARIUM_PUBLIC_URL to get KServe logger URLs for the members.")
    elif can_see_token:
        message.details("Logger URLs (they carry the group's token)",
                        [f"{m}: {u}" for m, u in urls.items()])  # fmt: skip
    if history:
        message.details(
            "History",
            [
                f"{timestamp(e.at)} {e.action}"
                + (f" (change #{e.change_id})" if e.change_id else "")
                + (f" by <@{e.user}>" if e.user else "")
                for e in history
            ],
        )
    return Reply(
        message,
        data={
            **group.to_json(),
            "logger_urls": urls,
            "live": live,
            "history": [e.to_json() for e in history],
        },
    )


@registry.command(
    "group delete",
    help="Delete a group and drop its inference records (a change; needs approval); a canary "
    "group's logger comes off its InferenceService when that serves all the traffic",
    role=Role.OPERATOR,
    args=[NAME],
    examples=["group delete chat"],
)
def group_delete(ctx: CommandContext, name: str) -> Reply:
    group = ctx.core.groups.get(name)
    if ctx.core.groups.detachable(group):
        # Its logger comes off the InferenceService in the same change (a new revision).
        proposal = ctx.core.changes.propose(
            CANARY, {"group": group.name, "op": "delete"}, ctx.user, ctx.channel
        )
    else:
        proposal = ctx.core.changes.propose(DELETE, {"group": name}, ctx.user, ctx.channel)
    return proposal_reply(ctx, proposal, data={"group": proposal.change.params["group"]})


# -- traffic -------------------------------------------------------------------------------------
@registry.command(
    "group challenge",
    help="Add a challenger on a share of the traffic (a change): <endpoint>/<model> (split), "
    "or a model deployed as a new revision of the champion's InferenceService (canary)",
    role=Role.OPERATOR,
    args=[NAME, Arg("member", "split: <endpoint>/<model>; canary: org/name[@revision]")],
    flags=[
        Flag("traffic", "percent of the traffic for the challenger (default 10)", metavar="P"),
        Flag("gpu", "canary: GPU type, as for deploy"),
        Flag("gpus", "canary: exactly this many GPUs", type=positive_int),
        Flag("context", "canary: wanted --max-model-len, e.g. 32k", metavar="TOKENS"),
        Flag("replicas", "canary: replicas, or MIN..MAX", metavar="MIN[..MAX]"),
        Flag(
            "set", "canary: an extra engine argument (repeatable)", metavar="KEY=VALUE", repeat=True
        ),
    ],
    examples=[
        "group challenge chat gpu-2/qwen2.5:7b --traffic 10",
        "group challenge chat Qwen/Qwen2.5-7B-Instruct --traffic 10 --set max-num-seqs=64",
    ],
)
def group_challenge(
    ctx: CommandContext,
    name: str,
    member: str,
    traffic: str | None,
    gpu: str | None,
    gpus: int | None,
    context: str | None,
    replicas: str | None,
    set: list[str],
) -> Reply:
    share = check_traffic(traffic if traffic is not None else 10)
    group = ctx.core.groups.get(name)
    if group.strategy == "canary":
        options = {"gpu": gpu, "gpus": gpus, "context": context, "replicas": replicas,
                   "sets": list(set)}  # fmt: skip
        proposal = ctx.core.changes.propose(
            CANARY,
            {"group": group.name, "op": "challenge", "model": member, "traffic": share,
             "options": options},
            ctx.user,
            ctx.channel,
        )  # fmt: skip
    else:
        if any(v for v in (gpu, gpus, context, replicas, set)):
            raise UsageError("deploy flags apply to canary groups only")
        proposal = ctx.core.changes.propose(
            TRAFFIC, {"group": name, "member": member, "traffic": share}, ctx.user, ctx.channel
        )
    params = proposal.change.params
    return proposal_reply(
        ctx, proposal, data={"group": params["group"], "members": params["members"]}
    )


@registry.command(
    "group traffic",
    help="Set the challenger's share of the traffic; the champion gets the rest (a change)",
    role=Role.OPERATOR,
    args=[NAME, Arg("percent", "0-100")],
    examples=["group traffic chat 25", "group traffic chat 0"],
)
def group_traffic(ctx: CommandContext, name: str, percent: str) -> Reply:
    share = check_traffic(percent)
    if ctx.core.groups.get(name).strategy == "canary":
        proposal = ctx.core.changes.propose(
            CANARY, {"group": name, "op": "traffic", "traffic": share}, ctx.user, ctx.channel
        )
    else:
        proposal = ctx.core.changes.propose(
            TRAFFIC, {"group": name, "traffic": share}, ctx.user, ctx.channel
        )
    params = proposal.change.params
    return proposal_reply(
        ctx, proposal, data={"group": params["group"], "members": params["members"]}
    )


@registry.command(
    "group pick",
    help="Choose a member for one request, by the traffic shares among healthy members "
    "(canary groups: by KServe's live split, with the revision's URL)",
    args=[NAME],
    examples=["group pick chat"],
    audit=False,
)
def group_pick(ctx: CommandContext, name: str) -> Reply:
    picked = ctx.core.groups.pick(name, ctx.user)
    message = Message(fallback=f"{picked.group}: {picked.member.name}")
    message.text(f"➡️ `{picked.member.name}` — {picked.reason}")
    return Reply(message, data=picked.to_json())


# -- eval / compare ------------------------------------------------------------------------------
@registry.command(
    "group eval",
    help="Send the same prompts to every member (built-in set or a file) and record the results",
    role=Role.OPERATOR,
    args=[NAME],
    flags=[
        Flag("n", "how many prompts (cycling through the set)", positive_int),
        Flag("prompts", "a file: JSON list, JSON lines or one prompt per line", metavar="FILE"),
        Flag("text", "the prompts themselves, one per line"),
    ],
    examples=["group eval chat", "group eval chat --n 200 --prompts prompts.jsonl"],
)
def group_eval(
    ctx: CommandContext, name: str, n: int | None, prompts: str | None, text: str | None
) -> Reply:
    content, _ = read_document(ctx, text, prompts, limit=PROMPTS_LIMIT, what="prompts")
    if isinstance(content, bytes):
        try:
            body: str | None = content.decode("utf-8")
        except UnicodeDecodeError:
            raise UsageError("the prompts file is not UTF-8 text") from None
    else:
        body = content
    chosen = read_prompts(body) if body is not None else load_prompts(None, None, None)
    if n is not None:
        if n > 10_000:
            raise UsageError("--n is at most 10000")
        chosen = [chosen[i % len(chosen)] for i in range(n)]
    result = ctx.core.groups.evaluate(name, ctx.user, chosen)
    message = Message(fallback=f"Eval of {result['group']}: {result['rows']} requests")
    message.text(
        f"🧪 Sent {result['prompts']} prompt(s) to {len(result['members'])} member(s) of "
        f"*{result['group']}*; {result['rows']} result(s) recorded."
    )
    message.table(
        ["member", "requests", "errors", "median"],
        [
            [m, str(e["requests"]), str(e["errors"]),
             f"{e['median_ms']:.0f} ms" if e["median_ms"] is not None else "—"]
            for m, e in result["members"].items()
        ],
    )  # fmt: skip
    message.context(f"Compare them: `{ctx.command_prefix} group compare {result['group']}`")
    return Reply(message, data=result)


def _fmt_ms(value: float | None) -> str:
    return f"{value:.0f}" if value is not None else "—"


@registry.command(
    "group compare",
    help="Compare the members: requests, errors, latency p50/p95/p99, tokens/s, tests, a chart",
    args=[NAME],
    flags=[
        Flag("since", "the window (default: everything kept)", _duration, metavar="DURATION"),
        Flag("no-chart", "skip the PNG chart", None),
    ],
    examples=["group compare chat", "group compare chat --since 6h"],
    audit=False,
)
def group_compare(ctx: CommandContext, name: str, since: float | None, no_chart: bool) -> Reply:
    service = ctx.core.groups
    comparison = service.compare(name, since)
    message = Message(fallback=f"Comparison of {comparison.group}: {comparison.verdict}")
    message.header(f"Group {comparison.group}: comparison"[:150])
    message.table(
        ["member", "role", "requests", "errors", "error rate", "p50 ms", "p95 ms", "p99 ms",
         "tokens/s"],
        [
            [m.member, m.role, f"{m.requests:,}", f"{m.errors:,}",
             f"{m.error_rate * 100:.2f}%" if m.error_rate is not None else "—",
             _fmt_ms(m.p50), _fmt_ms(m.p95), _fmt_ms(m.p99),
             f"{m.tokens_per_s:.1f}" if m.tokens_per_s is not None else "—"]
            for m in comparison.members
        ],
    )  # fmt: skip
    for versus in comparison.versus:
        message.text(f"*{versus.challenger}*: {versus.verdict} — {versus.words}")
        message.context(
            " · ".join(("✓ " if r.passed else "✗ ") + f"{r.rule}: {r.detail}" for r in versus.rules)
        )
    if not comparison.versus:
        message.context("No challenger to compare with the champion.")
    message.context(f"{comparison.rows:,} request(s) in the window.")
    files: list[Attachment] = []
    if not no_chart and comparison.rows:
        from modelarium.core.groups.chart import chart

        png = chart(service, comparison)
        files.append(Attachment(f"{comparison.group}-compare.png", png,
                                title=f"Group {comparison.group}"))  # fmt: skip
    return Reply(message, data=comparison.to_json(), files=files)


# -- promote / rollback --------------------------------------------------------------------------
@registry.command(
    "group promote",
    help="Make the challenger the champion: shows the evidence, needs approvals (two by default)",
    role=Role.OPERATOR,
    args=[NAME],
    flags=[
        Flag(
            "steps",
            "move the traffic in steps, an analysis between each "
            "(MODELARIUM_GROUP_STEP_INTERVAL); canary: each step sets canaryTrafficPercent",
            metavar="P,P,...,100",
        ),
    ],
    examples=["group promote chat", "group promote chat --steps 25,50,100"],
)
def group_promote(ctx: CommandContext, name: str, steps: str | None) -> Reply:
    if ctx.core.groups.get(name).strategy == "canary":
        canary: dict[str, Any] = {"group": name, "op": "promote"}
        if steps:
            canary["steps"] = steps
        proposal = ctx.core.changes.propose(CANARY, canary, ctx.user, ctx.channel)
    else:
        params: dict[str, Any] = {"group": name, **({"steps": steps} if steps else {})}
        proposal = ctx.core.changes.propose(PROMOTE, params, ctx.user, ctx.channel)
    data: dict[str, Any] = {"group": proposal.change.params["group"],
                            "evidence": proposal.plan.facts.get("comparison")}  # fmt: skip
    return proposal_reply(ctx, proposal, data=data)


@registry.command(
    "group rollback",
    help="Send all traffic back to the champion and retire the challenger (a change)",
    role=Role.OPERATOR,
    args=[NAME],
    examples=["group rollback chat"],
)
def group_rollback(ctx: CommandContext, name: str) -> Reply:
    if ctx.core.groups.get(name).strategy == "canary":
        proposal = ctx.core.changes.propose(
            CANARY, {"group": name, "op": "rollback"}, ctx.user, ctx.channel
        )
    else:
        proposal = ctx.core.changes.propose(ROLLBACK, {"group": name}, ctx.user, ctx.channel)
    return proposal_reply(ctx, proposal, data={"group": proposal.change.params["group"]})
