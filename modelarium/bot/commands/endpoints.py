"""`/model endpoint add|list|show|edit|remove|check|models|export|import`, `where`, `pick`.

API keys never travel in command text: ``--api-key -`` reads the key without echo (terminal),
from standard input (``modelarium cmd``) or from a secret field of a Slack modal.
"""

from __future__ import annotations

import json
import shlex
from datetime import datetime
from typing import Any

from modelarium.bot.commands.context import CommandContext
from modelarium.bot.commands.groups import group_pick
from modelarium.bot.commands.inputs import ask_for_document, read_document
from modelarium.bot.commands.parsing import positive_int
from modelarium.bot.commands.registry import registry
from modelarium.bot.commands.spec import Arg, Flag
from modelarium.bot.pagination import page_buttons, paginate
from modelarium.bot.reply import Attachment, Reply
from modelarium.config.units import format_duration
from modelarium.core import echo
from modelarium.core.endpoints import (
    SHARED_WITH,
    TYPES,
    CheckOutcome,
    EndpointView,
)
from modelarium.core.errors import UsageError
from modelarium.core.messages import Button, Context, Form, FormField, Message

MAX_IMPORT_BYTES = 5 * 1024 * 1024
_ICON = {"healthy": "🟢", "down": "🔴", "unknown": "⚪"}

KEY_FLAG = Flag("api-key", "`-` to be asked for the key (never type the key itself)", metavar="-")
TYPE_FLAG = Flag("type", "the API it speaks (default ollama)", choices=TYPES)
SHARE_FLAG = Flag("shared-with", "owner (private, default) or everyone", choices=SHARED_WITH)
HEALTH_FLAG = Flag("health-path", "custom endpoints: the path answering 2xx when healthy")
NO_CHECK_FLAG = Flag("no-check", "do not check the endpoint right away", type=None)


# -- helpers ------------------------------------------------------------------------------------


def _ago(ctx: CommandContext, when: datetime | None) -> str:
    if when is None:
        return "never"
    delta = (ctx.core.clock.now() - when).total_seconds()
    return f"{format_duration(abs(delta))} {'ago' if delta >= 0 else 'from now'}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def _status(view: EndpointView) -> str:
    if not view.active:
        return "⏸ disabled"
    return f"{_ICON.get(view.status, '❔')} {view.status}"


def _sharing(view: EndpointView) -> str:
    return "everyone" if view.shared_with == "everyone" else f"<@{view.owner}> only"


def _read_key(ctx: CommandContext, value: str | None) -> str | None:
    """The key behind ``--api-key -``; ``None`` when not given. Refuses a typed key."""
    if value is None:
        return None
    if value != "-":
        raise UsageError(
            "never type an API key into a command (it stays in chat and shell history; "
            "consider that key exposed): use --api-key - to be asked for it"
        )
    if ctx.read_secret is None:
        raise UsageError("this front cannot read a secret; use the form")
    key = ctx.read_secret("API key (not shown): ").strip()
    if not key:
        raise UsageError("no API key was given")
    return key


def _flag_text(**flags: str | bool | None) -> str:
    """Re-typed flags for a form's command, so a form keeps what was already given."""
    parts = []
    for name, value in flags.items():
        flag = "--" + name.replace("_", "-")
        if value is True:
            parts.append(flag)
        elif isinstance(value, str):
            parts.append(f"{flag} {shlex.quote(value)}")
    return " ".join(parts)


def _check_line(outcome: CheckOutcome, ctx: CommandContext) -> str:
    view = outcome.endpoint
    settings = ctx.core.settings
    if outcome.ok:
        line = f"✅ answered in {outcome.response_ms:.0f} ms"
        if view.status == "down":
            line += (
                f"; still down until {settings.health_recover_threshold} checks in a row pass "
                f"({view.consecutive_successes} so far)"
            )
    else:
        line = f"❌ {outcome.error}"
        if view.status == "healthy":
            line += (
                f"; marked down after {settings.health_fail_threshold} failures in a row "
                f"({view.consecutive_failures} so far)"
            )
        line += f"; skipped by picks for {format_duration(settings.endpoint_cooldown)}"
    if outcome.changed:
        line += f". Status {outcome.previous_status} → *{view.status}*."
    return line


def _models_line(view: EndpointView, limit: int = 10) -> str:
    if not view.models:
        return "no models discovered" + (" yet" if view.models_at is None else "")
    shown = ", ".join(f"`{m}`" for m in view.models[:limit])
    more = f" and {len(view.models) - limit} more" if len(view.models) > limit else ""
    return f"{len(view.models)} model(s): {shown}{more}"


def _check_data(outcome: CheckOutcome) -> dict[str, Any]:
    return {
        "ok": outcome.ok,
        "response_ms": round(outcome.response_ms, 1),
        "error": outcome.error,
        "previous_status": outcome.previous_status,
        "status": outcome.endpoint.status,
        "changed": outcome.changed,
    }


def _buttons(view: EndpointView) -> tuple[Button, ...]:
    return (
        Button("Check now", f"endpoint check {view.name}"),
        Button("Models", f"endpoint models {view.name}"),
        Button("Details", f"endpoint show {view.name}"),
    )


# -- registry -----------------------------------------------------------------------------------


def _add_form(
    ctx: CommandContext,
    name: str | None,
    url: str | None,
    type: str | None,
    shared_with: str | None,
    health_path: str | None,
    no_check: bool,
) -> Reply:
    fields = (
        FormField("endpoint-name", "Name", initial=name, placeholder="gpu-1"),
        FormField("base-url", "Base URL", initial=url, placeholder="http://gpu-1:11434"),
        FormField("type", "Type", initial=type or "ollama", options=TYPES),
        FormField(
            "shared-with",
            "Shared with",
            initial=shared_with or "owner",
            options=("owner", "everyone"),
        ),
        FormField(
            "health-path",
            "Health path (custom type only)",
            optional=True,
            initial=health_path,
            placeholder="/health",
        ),
        FormField(
            "api-key",
            "API key",
            secret=True,
            optional=True,
            hint="Stored encrypted; only its last four characters are ever shown.",
        ),
    )
    command = "endpoint add" + (" --no-check" if no_check else "")
    return Reply(
        Message(),
        form=Form(title="Add an endpoint", command=command, fields=fields, submit="Add"),
    )


@registry.command(
    "endpoint add",
    help="Register an Ollama or OpenAI-compatible endpoint (a form in Slack keeps the key safe)",
    args=[
        Arg("name", "a short name, e.g. gpu-1", required=False),
        Arg("url", "the base URL, e.g. http://gpu-1:11434", required=False),
    ],
    flags=[
        TYPE_FLAG,
        SHARE_FLAG,
        HEALTH_FLAG,
        KEY_FLAG,
        NO_CHECK_FLAG,
        Flag("endpoint-name", "the name (as the form sends it)", metavar="NAME"),
        Flag("base-url", "the base URL (as the form sends it)", metavar="URL"),
    ],
    examples=[
        "endpoint add gpu-1 http://gpu-1:11434",
        "endpoint add vllm-a https://vllm-a.internal/v1 --type openai-compatible --api-key -",
        "endpoint add",
    ],
)
def endpoint_add(
    ctx: CommandContext,
    name: str | None,
    url: str | None,
    type: str | None,
    shared_with: str | None,
    health_path: str | None,
    api_key: str | None,
    no_check: bool,
    endpoint_name: str | None,
    base_url: str | None,
) -> Reply:
    if name and endpoint_name and name != endpoint_name:
        raise UsageError("give the name once (as <name> or --endpoint-name)")
    if url and base_url and url != base_url:
        raise UsageError("give the URL once (as <url> or --base-url)")
    name = name or endpoint_name
    url = url or base_url
    if api_key is not None and api_key != "-":
        _read_key(ctx, api_key)  # refuses a typed key with the reason
    # Slack: a slash command never carries the key, so adding always goes through the modal
    # (form submissions come back with read_secret set). Elsewhere, only missing input asks.
    if (ctx.traits.forms and ctx.read_secret is None) or not name or not url:
        return _add_form(ctx, name, url, type, shared_with, health_path, no_check)
    key = _read_key(ctx, api_key)
    view = ctx.core.endpoints.add(
        ctx.user,
        name,
        url,
        type or "ollama",
        health_path=health_path,
        shared_with=shared_with or "owner",
        api_key=key,
    )
    return _registered(ctx, view, "Added", no_check)


def _registered(ctx: CommandContext, view: EndpointView, verb: str, no_check: bool) -> Reply:
    message = Message(fallback=f"{verb} endpoint {view.name}")
    message.text(
        f"✅ {verb} endpoint *{view.name}* ({view.type}, {view.base_url}), shared with "
        f"{_sharing(view)}, API key: {view.key_hint}."
    )
    data: dict[str, Any] = {"endpoint": view.data()}
    if not no_check and view.active:
        outcome = ctx.core.endpoints.check(ctx.user, view.name)
        view = outcome.endpoint
        message.text(f"First check: {_check_line(outcome, ctx)}\n{_models_line(view)}")
        data = {"endpoint": view.data(), "check": _check_data(outcome)}
    message.buttons(*_buttons(view))
    return Reply(message, data=data)


@registry.command(
    "endpoint list",
    help="Endpoints you can use: health, response time, models",
    flags=[
        Flag("status", "only endpoints in this state", choices=("healthy", "down", "unknown")),
        Flag("mine", "only endpoints you own", type=None),
        Flag("page", type=positive_int),
    ],
    examples=["endpoint list", "endpoint list --status down"],
    audit=False,
)
def endpoint_list(ctx: CommandContext, status: str | None, mine: bool, page: int | None) -> Reply:
    views = ctx.core.endpoints.list(ctx.user)
    if status:
        views = [e for e in views if e.status == status and e.active]
    if mine:
        views = [e for e in views if e.owner == ctx.user]
    message = Message(fallback=f"{len(views)} endpoint(s)").header("Endpoints")
    if not views:
        message.text(
            "No endpoints"
            + (" match." if status or mine else " yet.")
            + f" Register one with `{ctx.command_prefix} endpoint add`."
        )
        return Reply(message, data={"endpoints": []})
    shown = paginate(views, page)
    message.table(
        ["name", "type", "status", "latency", "models", "shared with", "key", "checked"],
        [
            [
                e.name,
                e.type,
                _status(e),
                _ms(e.latency_ms),
                str(len(e.models)),
                _sharing(e),
                e.key_hint,
                _ago(ctx, e.last_check_at),
            ]
            for e in shown.items
        ],
    )
    if shown.pages > 1:
        message.context(shown.label)
        flags = _flag_text(status=status, mine=mine or None)
        message.buttons(*page_buttons(shown, f"endpoint list {flags}".strip()))
    return Reply(
        message,
        data={"endpoints": [e.data() for e in views], "page": shown.number, "pages": shown.pages},
    )


@registry.command(
    "endpoint show",
    help="One endpoint: settings, health, recent checks and models",
    args=[Arg("name")],
    examples=["endpoint show gpu-1"],
    audit=False,
)
def endpoint_show(ctx: CommandContext, name: str) -> Reply:
    view = ctx.core.endpoints.get(ctx.user, name)
    checks = ctx.core.endpoints.history(ctx.user, name, limit=10)
    message = Message(fallback=f"Endpoint {view.name}").header(f"Endpoint {view.name}")
    status = _status(view)
    if view.active and view.status != "unknown" and view.status_changed_at:
        status += f" since {_ago(ctx, view.status_changed_at)}"
    now = ctx.core.clock.now()
    pairs = [
        ("URL", view.base_url),
        ("Type", view.type + (f" (health {view.health_path})" if view.health_path else "")),
        ("Owner", f"<@{view.owner}>"),
        ("Shared with", "everyone" if view.shared_with == "everyone" else "its owner only"),
        ("API key", view.key_hint),
        ("Status", status),
        ("Response time", f"{_ms(view.response_ms)} last, {_ms(view.latency_ms)} average"),
        ("Last check", _ago(ctx, view.last_check_at)),
        ("Last used", f"{_ago(ctx, view.last_used_at)} ({view.use_count} pick(s))"),
    ]
    if view.server_version:
        pairs.append(("Version", view.server_version))
    if view.in_cooldown(now):
        pairs.append(("Cool-down", f"until {_ago(ctx, view.cooldown_until)}"))
    message.fields(*pairs)
    if view.last_error:
        message.context(f"Last error: {view.last_error[:300]}")
    message.text(_models_line(view, limit=25) + f" (discovered {_ago(ctx, view.models_at)})")
    if checks:
        message.table(
            ["when", "result", "time", "error"],
            [
                [
                    _ago(ctx, c.checked_at) + (" (manual)" if c.manual else ""),
                    "ok" if c.ok else "failed",
                    _ms(c.response_ms),
                    (c.error or "")[:60],
                ]
                for c in checks
            ],
            title="Recent checks",
        )
    message.buttons(*_buttons(view)[:2])
    return Reply(
        message,
        data={
            "endpoint": view.data(),
            "checks": [
                {
                    "checked_at": c.checked_at.isoformat(),
                    "ok": c.ok,
                    "response_ms": c.response_ms,
                    "error": c.error,
                    "manual": c.manual,
                }
                for c in checks
            ],
        },
    )


@registry.command(
    "endpoint edit",
    help="Change an endpoint you own (admins: any): URL, type, sharing, key, enabled",
    args=[Arg("name")],
    flags=[
        Flag("url", "a new base URL"),
        TYPE_FLAG,
        HEALTH_FLAG,
        SHARE_FLAG,
        Flag("active", "yes to check and pick it, no to disable it", choices=("yes", "no")),
        Flag("rename", "a new name", metavar="NAME"),
        KEY_FLAG,
        Flag("clear-api-key", "remove the stored key", type=None),
        NO_CHECK_FLAG,
    ],
    examples=[
        "endpoint edit gpu-1 --api-key -",
        "endpoint edit gpu-1 --shared-with everyone",
        "endpoint edit gpu-1 --active no",
    ],
)
def endpoint_edit(
    ctx: CommandContext,
    name: str,
    url: str | None,
    type: str | None,
    health_path: str | None,
    shared_with: str | None,
    active: str | None,
    rename: str | None,
    api_key: str | None,
    clear_api_key: bool,
    no_check: bool,
) -> Reply:
    if api_key == "-" and ctx.read_secret is None:
        # A Slack slash command: ask for the key in a modal, keeping the other changes.
        ctx.core.endpoints.editable(ctx.user, name)  # fail now, not after the modal
        flags = _flag_text(
            url=url,
            type=type,
            health_path=health_path,
            shared_with=shared_with,
            active=active,
            rename=rename,
            no_check=no_check or None,
        )
        command = f"endpoint edit {shlex.quote(name)} {flags}".strip()
        field = FormField(
            "api-key",
            "API key",
            secret=True,
            hint="Stored encrypted; only its last four characters are ever shown.",
        )
        return Reply(
            Message(),
            form=Form(title=f"API key for {name}"[:24], command=command, fields=(field,)),
        )
    key = _read_key(ctx, api_key)
    view, changed = ctx.core.endpoints.edit(
        ctx.user,
        name,
        new_name=rename,
        base_url=url,
        type=type,
        health_path=health_path,
        shared_with=shared_with,
        active=None if active is None else active == "yes",
        api_key=key,
        clear_api_key=clear_api_key,
    )
    recheck = view.active and view.status == "unknown" and not no_check
    reply = _registered(ctx, view, "Updated", not recheck)
    reply.message.blocks.insert(1, Context(f"Changed: {', '.join(changed)}."))
    reply.data["changed"] = changed
    return reply


@registry.command(
    "endpoint remove",
    help="Delete an endpoint you own (admins: any) and its check history",
    args=[Arg("name")],
    examples=["endpoint remove gpu-1"],
    aliases=["endpoint rm"],
)
def endpoint_remove(ctx: CommandContext, name: str) -> Reply:
    view = ctx.core.endpoints.remove(ctx.user, name)
    return Reply.say(f"🗑 Removed endpoint *{view.name}* ({view.base_url}).", endpoint=view.name)


# -- health and models --------------------------------------------------------------------------


@registry.command(
    "endpoint check",
    help="Check an endpoint's health now (it counts like a scheduled check)",
    args=[Arg("name")],
    examples=["endpoint check gpu-1"],
    audit=False,
)
def endpoint_check(ctx: CommandContext, name: str) -> Reply:
    outcome = ctx.core.endpoints.check(ctx.user, name)
    view = outcome.endpoint
    message = Message(fallback=f"{view.name}: {view.status}")
    message.text(f"*{view.name}* ({_status(view)}): {_check_line(outcome, ctx)}")
    message.context(_models_line(view))
    message.buttons(*_buttons(view)[1:])
    return Reply(message, data={"endpoint": view.data(), "check": _check_data(outcome)})


@registry.command(
    "endpoint models",
    help="Refresh and list the models an endpoint serves",
    args=[Arg("name")],
    examples=["endpoint models gpu-1"],
    audit=False,
)
def endpoint_models(ctx: CommandContext, name: str) -> Reply:
    outcome = ctx.core.endpoints.check(ctx.user, name)
    view = outcome.endpoint
    message = Message(fallback=f"Models on {view.name}").header(f"Models on {view.name}")
    if not outcome.ok:
        message.text(
            f"⚠️ Refresh failed ({outcome.error}); showing what was discovered "
            f"{_ago(ctx, view.models_at)}."
        )
    if view.models:
        message.table(["model"], [[m] for m in view.models])
    else:
        message.text("No models discovered.")
    return Reply(
        message,
        data={
            "endpoint": view.name,
            "models": list(view.models),
            "refreshed": outcome.ok,
            "models_at": view.models_at.isoformat() if view.models_at else None,
        },
    )


@registry.command(
    "where",
    help="Which endpoints serve a model, healthy and fastest first",
    args=[Arg("model", "e.g. llama3 or llama3:8b")],
    examples=["where llama3"],
    audit=False,
)
def where(ctx: CommandContext, model: str) -> Reply:
    views = ctx.core.endpoints.where(ctx.user, model)
    said = echo.shown(model, quote=False)
    message = Message(fallback=f"{len(views)} endpoint(s) serve {said}")
    message.header(f"Endpoints serving {said}"[:150])
    if not views:
        message.text(
            f"No endpoint you can use serves `{said}`. Models are discovered with each health "
            f"check; refresh one with `{ctx.command_prefix} endpoint models <name>`."
        )
    else:
        message.table(
            ["endpoint", "status", "latency", "url"],
            [[e.name, _status(e), _ms(e.latency_ms), e.base_url] for e in views],
        )
    return Reply(
        message,
        data={
            "model": model,
            "endpoints": [
                {
                    "name": e.name,
                    "status": e.status if e.active else "disabled",
                    "latency_ms": e.latency_ms,
                    "base_url": e.base_url,
                }
                for e in views
            ],
        },
    )


@registry.command(
    "pick",
    help=(
        "The endpoint a request for a model goes to now (failover), and why; for a model "
        "group's name, the member chosen by its traffic shares"
    ),
    args=[Arg("model", "a model served by endpoints (e.g. llama3), or a model group")],
    examples=["pick llama3", "pick chat"],
    audit=False,
)
def pick(ctx: CommandContext, model: str) -> Reply:
    if ctx.core.groups.exists(model):
        return group_pick(ctx, model)
    result = ctx.core.endpoints.pick(model, ctx.user, record=False)
    chosen = result.chosen
    message = Message(fallback=f"{model} -> {chosen.name}")
    message.text(f"➡️ *{chosen.name}* ({chosen.base_url}) for `{model}`: {result.reason}.")
    if len(result.candidates) > 1:
        message.table(
            ["endpoint", "eligible", "why"],
            [[c.endpoint.name, "yes" if c.eligible else "no", c.reason] for c in result.candidates],
            title="Candidates",
        )
    return Reply(
        message,
        data={
            "model": model,
            "endpoint": chosen.name,
            "base_url": chosen.base_url,
            "type": chosen.type,
            "reason": result.reason,
            "candidates": [
                {"name": c.endpoint.name, "eligible": c.eligible, "reason": c.reason}
                for c in result.candidates
            ],
        },
    )


# -- import / export ----------------------------------------------------------------------------


@registry.command(
    "endpoint export",
    help="Download the endpoints you can see as JSON (without keys)",
    examples=["endpoint export"],
    audit=False,
)
def endpoint_export(ctx: CommandContext) -> Reply:
    document = ctx.core.endpoints.export(ctx.user)
    count = len(document["endpoints"])
    body = json.dumps(document, indent=2).encode()
    message = Message(fallback=f"{count} endpoint(s) exported").text(
        f"📎 {count} endpoint(s) as `endpoints.json`, without API keys: after "
        f"`{ctx.command_prefix} endpoint import`, set them with `endpoint edit <name> --api-key -`."
    )
    return Reply(
        message,
        data=document,
        files=[Attachment("endpoints.json", body, title="Modelarium endpoints")],
    )


def _import_text(ctx: CommandContext, text: str | None, file: str | None) -> str | None:
    content, _ = read_document(ctx, text, file, limit=MAX_IMPORT_BYTES, what="export")
    if isinstance(content, bytes):
        try:
            return content.decode("utf-8")
        except UnicodeDecodeError:
            raise UsageError(f"{file} is not UTF-8 text") from None
    return content


@registry.command(
    "endpoint import",
    help="Add endpoints from an export, all or nothing (--replace updates existing ones)",
    flags=[
        Flag("text", "the JSON (a Slack form asks for it when left out)"),
        Flag("file", "read the JSON from this file (terminal only)", metavar="PATH"),
        Flag(
            "replace", "update endpoints that already exist (yours, or any for admins)", type=None
        ),
    ],
    examples=["endpoint import --file endpoints.json", "endpoint import --replace"],
)
def endpoint_import(
    ctx: CommandContext, text: str | None, file: str | None, replace: bool
) -> Reply:
    document = _import_text(ctx, text, file)
    if document is None:
        return ask_for_document(
            ctx,
            title="Import endpoints",
            command="endpoint import" + (" --replace" if replace else ""),
            label="Endpoints JSON (from endpoint export)",
            placeholder='{"endpoints": [{"name": "gpu-1", "base_url": "http://gpu-1:11434"}]}',
            what="export",
            submit="Import",
        )
    created, updated = ctx.core.endpoints.import_endpoints(ctx.user, document, replace=replace)
    parts = []
    if created:
        parts.append(f"added {len(created)}: {', '.join(created[:20])}")
    if updated:
        parts.append(f"updated {len(updated)}: {', '.join(updated[:20])}")
    message = Message(fallback="Endpoints imported").text(
        f"✅ Imported endpoints; {'; '.join(parts)}."
    )
    message.context(
        "Health is checked on the next cycle (or now with `endpoint check <name>`); "
        "set keys with `endpoint edit <name> --api-key -`."
    )
    return Reply(message, data={"created": created, "updated": updated})
