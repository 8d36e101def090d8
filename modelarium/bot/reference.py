"""The command reference in Markdown, generated from the registry so the README stays true."""

from __future__ import annotations

from modelarium.bot.commands.registry import Registry, registry


def markdown_reference(reg: Registry | None = None, prefix: str = "/model") -> str:
    """One table per area, as `/model help` groups them, each command with one example."""
    import modelarium.bot.commands  # noqa: F401  (registers every command)

    reg = reg or registry
    lines: list[str] = []
    for area, commands in reg.by_area():
        lines += [f"#### {area}", "", "| command | what it does | role |", "|---|---|---|"]
        for command in commands:
            usage = command.usage(prefix).replace("|", "\\|")
            example = (
                f" e.g. `{prefix} {command.example}`".replace("|", "\\|")
                if command.example and command.example != command.name
                else ""
            )
            lines.append(f"| `{usage}` | {command.help}.{example} | {command.role} |")
        lines.append("")
    return "\n".join(lines)


def render_into(readme: str, reference: str) -> str:
    start, end = "<!-- commands:start -->", "<!-- commands:end -->"
    head, _, rest = readme.partition(start)
    _, _, tail = rest.partition(end)
    return f"{head}{start}\n{reference}{end}{tail}"
