"""The daemon's periodic tasks, one module per capability; each is thin and calls core.

To add a task: write ``register(core)`` in a module here that calls
``core.tasks.register(PeriodicTask(...))`` and list it in :func:`register_all`.
"""

from __future__ import annotations

from modelarium.core.app import Core


def register_all(core: Core) -> None:
    from modelarium.automation.tasks import discovery, endpoints, housekeeping, roles, weights

    for module in (housekeeping, roles, endpoints, weights, discovery):
        module.register(core)
