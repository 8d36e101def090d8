"""Import and export: the registry as a document, imported all or nothing."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from modelarium.core import safejson
from modelarium.core.db.models.endpoints import Endpoint
from modelarium.core.endpoints import validation as v
from modelarium.core.endpoints.access import EndpointsBase
from modelarium.core.endpoints.health import _chunks
from modelarium.core.endpoints.views import CHUNK
from modelarium.core.errors import (
    ConflictError,
    ModelariumError,
    ValidationError,
)
from modelarium.core.logging import get_logger
from modelarium.core.rbac import Role

log = get_logger(__name__)

EXPORT_FORMAT = "modelarium.endpoints"
EXPORT_VERSION = 1
MAX_IMPORT = 5000


class ImportExport(EndpointsBase):
    # -- import / export ------------------------------------------------------------------------

    def export(self, user: str) -> dict[str, Any]:
        """The endpoints the user can see, as a portable document without any secret."""
        return {
            "format": EXPORT_FORMAT,
            "version": EXPORT_VERSION,
            "exported_at": self._clock.now().isoformat(),
            "endpoints": [
                {
                    "name": e.name,
                    "base_url": e.base_url,
                    "type": e.type,
                    "health_path": e.health_path,
                    "shared_with": e.shared_with,
                    "active": e.active,
                    "api_key_set": e.api_key_set,
                }
                for e in self.list(user)
            ],
        }

    def import_endpoints(
        self, user: str, document: str | dict[str, Any] | list[Any], *, replace: bool = False
    ) -> tuple[list[str], list[str]]:
        """Create (or with ``replace`` update) every entry in one transaction: all or nothing.

        Returns (created, updated) names. Any invalid entry rejects the whole import, naming it.
        Entries never carry keys (exports have none); set them after with ``endpoint edit``.
        """
        entries = _entries(document)
        role = self._rbac.role_of(user)
        admin = role >= Role.ADMIN
        specs = [_entry_spec(i, e, role) for i, e in enumerate(entries, start=1)]
        refused = v.check_addresses([spec["base_url"] for spec in specs], self.address_policy)
        for index, spec in enumerate(specs, start=1):
            if spec["base_url"] in refused:
                raise ValidationError(
                    f"entry {index} ({spec['name']}): {refused[spec['base_url']]}; "
                    "nothing was imported"
                )
        seen: dict[str, int] = {}
        for index, spec in enumerate(specs, start=1):
            if spec["name"] in seen:
                raise ValidationError(
                    f"entry {index} ({spec['name']}): the name is also used by entry "
                    f"{seen[spec['name']]}; nothing was imported"
                )
            seen[spec["name"]] = index
        now = self._clock.now()
        created: list[str] = []
        updated: list[str] = []
        try:
            with self._db.transaction() as session:
                existing = {
                    r.name: r
                    for chunk in _chunks(list(seen), CHUNK)
                    for r in session.scalars(
                        sa.select(Endpoint)
                        .where(Endpoint.name.in_(chunk))
                        .order_by(Endpoint.id)
                        .with_for_update()
                    )
                }
                for index, spec in enumerate(specs, start=1):
                    row = existing.get(spec["name"])
                    if row is None:
                        session.add(
                            Endpoint(
                                **spec,
                                owner=user,
                                status="unknown",
                                models=[],
                                created_by=user,
                                created_at=now,
                                updated_at=now,
                            )
                        )
                        created.append(spec["name"])
                        continue
                    where = f"entry {index} ({spec['name']})"
                    if not replace:
                        raise ValidationError(
                            f"{where}: an endpoint with this name exists (import with --replace "
                            "to update it); nothing was imported"
                        )
                    if not (admin or row.owner == user):
                        raise ValidationError(
                            f"{where}: the existing endpoint belongs to <@{row.owner}>, so you "
                            "may not replace it; nothing was imported"
                        )
                    moved = (row.base_url, row.type, row.health_path) != (
                        spec["base_url"],
                        spec["type"],
                        spec["health_path"],
                    )
                    for attr, value in spec.items():
                        setattr(row, attr, value)
                    if moved:
                        self._reset_health(row, clear_models=True)
                    row.revision += 1
                    row.updated_at = now
                    updated.append(spec["name"])
                session.flush()
                self._audit.record(
                    user,
                    "endpoint.import",
                    params={"created": created, "updated": updated},
                    session=session,
                )
        except IntegrityError:
            raise ConflictError(
                "an endpoint of this import was created meanwhile; nothing was imported, retry"
            ) from None
        return created, updated


def _entries(document: str | dict[str, Any] | list[Any]) -> list[Any]:
    data: Any = document
    if isinstance(document, str):
        try:
            data = safejson.loads(document)
        except safejson.NestingError as exc:
            raise ValidationError(
                f"the import is {exc}; an endpoints export is 4 levels deep; nothing was imported"
            ) from None
        except json.JSONDecodeError as exc:
            raise ValidationError(
                f"the import is not valid JSON ({exc.msg} at line {exc.lineno} column "
                f"{exc.colno}); nothing was imported"
            ) from None
    else:
        try:  # already parsed (the API): its depth still bounds what is walked below
            safejson.check_depth(json.dumps(document))
        except safejson.NestingError as exc:
            raise ValidationError(f"the import is {exc}; nothing was imported") from None
        except RecursionError:
            raise ValidationError(
                f"the import is nested more than {safejson.MAX_DEPTH} deep; nothing was imported"
            ) from None
    if isinstance(data, dict):
        fmt = data.get("format")
        if fmt is not None and fmt != EXPORT_FORMAT:
            raise ValidationError(f"not an endpoints export (format {str(fmt)[:40]!r})")
        version = data.get("version", EXPORT_VERSION)
        if version != EXPORT_VERSION:
            raise ValidationError(
                f"unsupported export version {version!r}; this Modelarium reads {EXPORT_VERSION}"
            )
        data = data.get("endpoints")
    if not isinstance(data, list):
        raise ValidationError(
            'the import must be {"endpoints": [...]} (as `endpoint export` writes) or a list'
        )
    if not data:
        raise ValidationError("the import has no endpoints")
    if len(data) > MAX_IMPORT:
        raise ValidationError(f"the import has {len(data)} endpoints; at most {MAX_IMPORT} at once")
    return data


_ENTRY_KEYS = {"name", "base_url", "url", "type", "health_path", "shared_with", "active"}
_IGNORED_KEYS = {"api_key_set", "owner", "status", "models"}


def _entry_spec(index: int, entry: Any, role: Role) -> dict[str, Any]:
    """One import entry validated into Endpoint column values (raising with the entry named)."""
    label = f"entry {index}"
    if not isinstance(entry, dict):
        raise ValidationError(f"{label}: expected an object, got {type(entry).__name__}")
    name = entry.get("name")
    if isinstance(name, str) and name.strip():
        label = f"entry {index} ({name.strip()[:64]})"
    try:
        secret_keys = sorted(
            k for k in entry if "key" in k.lower() and k != "api_key_set" and entry[k]
        )
        if secret_keys:
            raise ValidationError(
                f"carries {secret_keys[0]!r}: imports never carry keys; set them afterwards "
                "with `endpoint edit NAME --api-key -`"
            )
        unknown = sorted(set(entry) - _ENTRY_KEYS - _IGNORED_KEYS - {"api_key"})
        if unknown:
            raise ValidationError(f"unknown field {unknown[0]!r}")
        if not isinstance(name, str):
            raise ValidationError("missing name")
        url = entry.get("base_url", entry.get("url"))
        if not isinstance(url, str):
            raise ValidationError("missing base_url")
        kind = entry.get("type", "ollama")
        shared = entry.get("shared_with", "owner")
        path = entry.get("health_path")
        active = entry.get("active", True)
        if not isinstance(kind, str) or not isinstance(shared, str):
            raise ValidationError("type and shared_with must be strings")
        if path is not None and not isinstance(path, str):
            raise ValidationError("health_path must be a string")
        if not isinstance(active, bool):
            raise ValidationError("active must be true or false")
        kind = v.check_type(kind)
        shared = v.check_shared_with(shared)
        if shared == "everyone" and role < Role.OPERATOR:
            raise ValidationError("sharing with everyone needs the operator role")
        v.check_health_path_role(path if kind == "custom" else None, role >= Role.OPERATOR)
        return {
            "name": v.check_name(name),
            "base_url": v.check_url(url),
            "type": kind,
            "health_path": v.check_health_path(path, kind),
            "shared_with": shared,
            "active": active,
        }
    except ModelariumError as exc:
        raise ValidationError(f"{label}: {exc}; nothing was imported") from None
