"""The model catalog as code: one JSON entry per model in a Git repository.

``entry`` (the typed entry, ids, canonical form), ``schema.json`` (the published JSON Schema),
``validate`` (schema and facts, every issue naming its field path), ``generate`` (a draft from the
Hub, config.json, the vLLM table and the fit).
"""

from modelarium.core.catalog.entry import (
    STATUSES,
    CatalogEntry,
    GpuFit,
    check_id,
    default_id,
)
from modelarium.core.catalog.validate import (
    Checks,
    DirReport,
    HubFacts,
    Issue,
    Validated,
    schema,
    schema_issues,
    schema_text,
    validate_dir,
    validate_document,
    validate_text,
)

__all__ = [
    "STATUSES",
    "CatalogEntry",
    "Checks",
    "DirReport",
    "GpuFit",
    "HubFacts",
    "Issue",
    "Validated",
    "check_id",
    "default_id",
    "schema",
    "schema_issues",
    "schema_text",
    "validate_dir",
    "validate_document",
    "validate_text",
]
