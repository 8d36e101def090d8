"""``core.catalog``: the catalog in Git, its change kinds (PRs, status), sized and checked
through the discovery and weights ports."""

from __future__ import annotations

from modelarium.core.catalog.changes import register as register_changes
from modelarium.core.catalog.service import CatalogService
from modelarium.core.kernel import Kernel
from modelarium.core.ports import Ports


def build(kernel: Kernel, ports: Ports) -> CatalogService:
    return CatalogService(kernel, ports.model_facts, ports.weights_store)


def register(kernel: Kernel, service: CatalogService, ports: Ports) -> None:
    register_changes(kernel, service)
