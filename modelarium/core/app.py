"""The core: the kernel's engines plus every capability of the manifest, wired once per process.

Fronts (bot, shell, daemon) build one :class:`Core` and call its services; nothing here knows
which front is calling. ``core.<capability>`` is the service the capability's wiring builds
(lazily, on first use); each capability's ``register`` runs at construction, so the bot can
propose what the daemon will run.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from modelarium.config.settings import Settings
from modelarium.core.clock import Clock
from modelarium.core.db.uow import Database
from modelarium.core.kernel import Kernel
from modelarium.core.ports import Ports
from modelarium.manifest import CAPABILITIES, Capability


class Core(Kernel):
    def __init__(
        self, settings: Settings, *, clock: Clock | None = None, db: Database | None = None
    ) -> None:
        super().__init__(settings, clock=clock, db=db)
        self._services: dict[str, Any] = {}
        self._wiring: dict[str, ModuleType] = {
            c.name: importlib.import_module(c.wiring) for c in CAPABILITIES if c.wiring
        }
        self._providers = {port: c for c in CAPABILITIES for port in c.provides}
        self.ports = Ports(self._port)
        for entry in CAPABILITIES:
            module = self._wiring.get(entry.name)
            register = getattr(module, "register", None)
            if register is not None:
                register(self, self._service(entry), self.ports)

    def _service(self, entry: Capability) -> Any:
        if entry.name not in self._services:
            build = getattr(self._wiring.get(entry.name), "build", None)
            self._services[entry.name] = build(self, self.ports) if build is not None else None
        return self._services[entry.name]

    def _port(self, port: str) -> Any | None:
        entry = self._providers.get(port)
        if entry is None:
            return None
        service = self._service(entry)
        attribute = entry.provides[port]
        return getattr(service, attribute) if attribute else service

    def __getattr__(self, name: str) -> Any:
        # Only reached for names that are not kernel attributes: capability services.
        for entry in CAPABILITIES:
            if entry.name == name and "_wiring" in self.__dict__:
                service = self._service(entry)
                if service is not None:
                    return service
        raise AttributeError(f"the core has no {name!r} (not a kernel engine or a capability)")
