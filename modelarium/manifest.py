"""The capability manifest: the one list a new capability is added to.

Each entry names, as import paths, the parts a capability contributes to each layer: its core
wiring (``build`` -> the service exposed as ``core.<name>``; ``register`` -> change kinds, job
kinds, alert rules), its ORM models, its chat commands and its daemon tasks. Every layer reads
only its own column, so this module imports nothing and nothing here crosses a layer: core never
imports ``bot`` or ``automation`` because of it.

Cross-capability needs are *ports* (``modelarium.core.ports``): a capability names the ports it
provides; others receive them as constructor arguments, never another capability's service.
See docs/adding-a-capability.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Capability:
    name: str
    wiring: str | None = None
    """Module with ``build(kernel, ports)`` (the service, ``core.<name>``) and/or
    ``register(kernel, service, ports)``."""
    models: tuple[str, ...] = ()
    commands: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ()
    provides: dict[str, str] = field(default_factory=dict)
    """Port name -> attribute of this capability's service that implements it ("" = the service)."""


CAPABILITIES: tuple[Capability, ...] = (
    Capability(
        "engine",
        wiring="modelarium.core.scheduling.jobs",
        models=(
            "modelarium.core.db.models.alerts",
            "modelarium.core.db.models.approvals",
            "modelarium.core.db.models.audit",
            "modelarium.core.db.models.cache",
            "modelarium.core.db.models.changes",
            "modelarium.core.db.models.jobs",
            "modelarium.core.db.models.notify",
            "modelarium.core.db.models.scheduler",
        ),
        commands=(
            "modelarium.bot.commands.alerts",
            "modelarium.bot.commands.approvals",
            "modelarium.bot.commands.audit",
            "modelarium.bot.commands.changes",
            "modelarium.bot.commands.help",
            "modelarium.bot.commands.system",
        ),
        tasks=("modelarium.automation.tasks.housekeeping",),
    ),
    Capability(
        "roles",
        wiring="modelarium.core.roles.changes",
        models=("modelarium.core.db.models.rbac",),
        commands=("modelarium.bot.commands.roles",),
        tasks=("modelarium.automation.tasks.roles",),
    ),
    Capability(
        "gpus",
        wiring="modelarium.core.gpus.wiring",
        provides={"gpu_inventory": ""},
    ),
    Capability(
        "hub",
        wiring="modelarium.core.hub.wiring",
        commands=("modelarium.bot.commands.discovery",),
        tasks=("modelarium.automation.tasks.discovery",),
        provides={
            "model_facts": "",
            "model_configs": "model_config",
            "vllm_architecture": "architecture",
        },
    ),
    Capability(
        "endpoints",
        wiring="modelarium.core.endpoints.wiring",
        models=("modelarium.core.db.models.endpoints",),
        commands=("modelarium.bot.commands.endpoints",),
        tasks=("modelarium.automation.tasks.endpoints",),
        provides={"endpoint_resolver": "resolve", "endpoint_status": "status_of"},
    ),
    Capability(
        "modelfiles",
        wiring="modelarium.core.modelfiles.wiring",
        models=("modelarium.core.db.models.modelfiles",),
        commands=("modelarium.bot.commands.modelfiles", "modelarium.bot.commands.ollama"),
    ),
    Capability(
        "weights",
        wiring="modelarium.core.weights.wiring",
        models=("modelarium.core.db.models.weights",),
        commands=("modelarium.bot.commands.weights", "modelarium.bot.commands.objects"),
        tasks=("modelarium.automation.tasks.weights",),
        provides={"weights_store": "", "installed_weights": "installed_snapshots"},
    ),
    Capability(
        "deployments",
        wiring="modelarium.core.deployments.wiring",
        models=("modelarium.core.db.models.deployments",),
        commands=("modelarium.bot.commands.deployments",),
        tasks=("modelarium.automation.tasks.deployments",),
        provides={"weights_in_use": "weights_in_use", "deployment_canary": "canary"},
    ),
    Capability(
        "catalog",
        wiring="modelarium.core.catalog.wiring",
        models=("modelarium.core.db.models.catalog",),
        commands=("modelarium.bot.commands.catalog",),
        tasks=("modelarium.automation.tasks.catalog",),
        provides={
            "model_deprecation": "deprecation",
            "catalog_storage": "propose_storage",
            "catalog_history": "record_history",
        },
    ),
    Capability(
        "groups",
        wiring="modelarium.core.groups.wiring",
        models=("modelarium.core.db.models.groups",),
        commands=("modelarium.bot.commands.groups",),
        tasks=("modelarium.automation.tasks.groups",),
        provides={"reveal_logger_url": "reveal_logger_url"},
    ),
    Capability(
        "tokens",
        wiring="modelarium.core.tokens.wiring",
        models=("modelarium.core.db.models.tokens",),
        commands=("modelarium.bot.commands.tokens",),
    ),
    Capability(
        "backups",
        wiring="modelarium.core.backups.wiring",
        commands=("modelarium.bot.commands.backups",),
        tasks=("modelarium.automation.tasks.backups",),
    ),
)


def capability(name: str) -> Capability:
    for entry in CAPABILITIES:
        if entry.name == name:
            return entry
    raise KeyError(name)
