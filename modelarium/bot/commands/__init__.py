"""Command modules, one per area; importing this package registers them all.

To add a command: write a decorated function in the module for its area (or a new module
imported below). See bot/commands/roles.py for a small complete example.
"""

from modelarium.bot.commands import (  # noqa: F401
    alerts,
    approvals,
    audit,
    discovery,
    endpoints,
    help,
    modelfiles,
    ollama,
    roles,
    system,
    weights,
)
