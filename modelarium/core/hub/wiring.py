"""``core.hub``: discovery on the Hub, sized against the GPU inventory port."""

from __future__ import annotations

from typing import Any

from modelarium.core.hub.compat import RULE
from modelarium.core.hub.service import HubService
from modelarium.core.kernel import Kernel
from modelarium.core.ports import Ports


def build(kernel: Kernel, ports: Ports) -> HubService:
    return HubService(kernel.settings, kernel.db, kernel.cache, kernel.clock, ports.gpu_inventory)


def register(kernel: Kernel, service: Any, ports: Ports) -> None:
    """The GPU compatibility alert rule (the bot renders its alerts, the daemon raises them)."""
    kernel.alerts.register(RULE)
