"""The daemon's periodic tasks, one module per capability; each is thin and calls core.

Which modules exist is the manifest's ``tasks`` column (``modelarium/manifest.py``). To add a
task: write ``register(core, fronts)`` in a module here that calls
``core.tasks.register(PeriodicTask(...))`` and list the module in the manifest.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from modelarium.core.app import Core
from modelarium.manifest import CAPABILITIES


@dataclass(frozen=True)
class Fronts:
    """What the running chat front lends the daemon's tasks; the process wiring fills it in,
    so tasks never import a front themselves."""

    group_members: Callable[[str], list[str]] | None = None
    """Members of a chat user group (role sync); None when no chat workspace is connected."""


def register_all(core: Core, fronts: Fronts | None = None) -> None:
    for capability in CAPABILITIES:
        for module in capability.tasks:
            importlib.import_module(module).register(core, fronts or Fronts())
