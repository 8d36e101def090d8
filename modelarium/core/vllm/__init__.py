"""What vLLM can serve: the architecture classes of its model registry, as packaged data."""

from modelarium.core.vllm.registry import (
    SCHEMA_VERSION,
    TASKS,
    Architecture,
    ArchitectureCatalog,
    ConditionalArgs,
    architecture_for_config,
    is_supported,
    load_catalog,
    lookup,
    parse_catalog,
    parse_source,
    search,
)

__all__ = [
    "SCHEMA_VERSION",
    "TASKS",
    "Architecture",
    "ArchitectureCatalog",
    "ConditionalArgs",
    "architecture_for_config",
    "is_supported",
    "load_catalog",
    "lookup",
    "parse_catalog",
    "parse_source",
    "search",
]
