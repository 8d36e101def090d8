"""`/model help [command]`: the commands the caller may use, or one command's usage."""

from __future__ import annotations

from modelarium.bot.commands.context import CommandContext
from modelarium.bot.commands.registry import registry
from modelarium.bot.commands.spec import Arg
from modelarium.bot.reply import Reply
from modelarium.core.errors import UsageError
from modelarium.core.messages import Message


@registry.command(
    "help",
    help="List the commands you may use, or show how to use one",
    args=[
        Arg("command", "a command or group, e.g. install or endpoint", required=False, rest=True)
    ],
    examples=["help install", "help", "help endpoint"],
    audit=False,
)
def help_command(ctx: CommandContext, command: str | None) -> Reply:
    prefix = ctx.command_prefix
    if command:
        words = command.split()
        found, consumed = registry.resolve(words)
        if found is not None and consumed == len(words):
            return _one(ctx, found)
        group = registry.group(words[0])
        if group:
            return _listing(
                ctx, [c for c in group if c.role <= ctx.role], title=f"{prefix} {words[0]} …"
            )
        suggestions = registry.suggest(words)
        hint = f"; did you mean {', '.join(suggestions)}?" if suggestions else ""
        raise UsageError(f"no command {command!r}{hint}")
    allowed = [c for c in registry.commands() if c.role <= ctx.role]
    reply = _listing(ctx, allowed, title="Modelarium commands")
    hidden = len(registry.commands()) - len(allowed)
    if hidden:
        reply.message.context(f"You are {ctx.role}; {hidden} more command(s) need a higher role.")
    return reply


def _listing(ctx: CommandContext, commands: list, title: str) -> Reply:
    """The commands by area (Weights, Deployments, Alerts...), each with one example."""
    prefix = ctx.command_prefix
    message = Message(fallback=title).header(title)
    areas: dict[str, list[str]] = {}
    for area, members in registry.by_area(commands):
        areas[area] = [c.name for c in members]
        lines = [f"*{area}*"]
        for command in members:
            line = f"`{prefix} {command.name}`  {command.help}"
            if command.example and command.example != command.name:
                line += f" — e.g. `{prefix} {command.example}`"
            lines.append(line)
        # Several text blocks keep each under Slack's 3000-character section limit.
        block: list[str] = []
        for line in lines:
            if block and sum(len(x) + 1 for x in block) + len(line) > 2900:
                message.text("\n".join(block))
                block = []
            block.append(line)
        message.text("\n".join(block))
    message.context(f"`{prefix} help <command>` shows usage and examples.")
    names = [name for members in areas.values() for name in members]
    return Reply(message, data={"commands": names, "areas": areas})


def _one(ctx: CommandContext, command) -> Reply:
    prefix = ctx.command_prefix
    message = Message(fallback=command.usage(prefix)).header(f"{prefix} {command.name}")
    message.text(command.help)
    message.code(command.usage(prefix))
    options = [f"<{a.name}>  {a.help}" for a in command.args if a.help]
    options += [f"--{f.name}  {f.help}" for f in command.flags if f.help]
    if options:
        message.code("\n".join(options))
    if command.examples:
        message.text("Examples:\n" + "\n".join(f"`{prefix} {e}`" for e in command.examples))
    message.context(f"Needs the {command.role} role.")
    return Reply(
        message,
        data={"command": command.name, "usage": command.usage(prefix), "role": str(command.role)},
    )
