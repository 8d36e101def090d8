"""Field ownership for the fake API server: server-side apply and ``metadata.managedFields``.

What the real API server does (structured-merge-diff), reduced to what a custom resource whose
schema marks no list types needs: every list is *atomic* (owned and replaced as a whole), maps
merge key by key. Each write is attributed to a manager:

- an apply (``PATCH`` with ``application/apply-patch+yaml``) makes the manager's ``Apply`` entry
  exactly the fields of the applied configuration; a field it applied before and no longer
  applies is removed from the object unless another manager also owns it; a field another
  manager owns with a *different* value is a conflict (409) unless ``force`` moves it over;
- any other write (create, update, merge/JSON patch) gives its ``Update`` entry the fields whose
  values it changed and takes them away from every other manager.

``metadata.name``/``namespace`` and the server-populated metadata are nobody's fields; ``status``
is owned only through the status subresource.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

Path = tuple[str, ...]

_NOT_OWNED_TOP = frozenset({"apiVersion", "kind", "status"})
_NOT_OWNED_META = frozenset(
    {
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "managedFields",
        "selfLink",
        "generateName",
    }
)
_MISSING = object()


def _leaves(value: Mapping[str, Any], prefix: Path) -> dict[Path, Any]:
    out: dict[Path, Any] = {}
    for key, item in value.items():
        path = (*prefix, key)
        if isinstance(item, Mapping) and item:
            out.update(_leaves(item, path))
        else:
            out[path] = item
    return out


def fields_of(obj: Mapping[str, Any], subresource: str = "") -> dict[Path, Any]:
    """The ownable leaf fields of ``obj`` (path -> value); lists and empty maps are leaves."""
    if subresource == "status":
        status = obj.get("status")
        return _leaves(status, ("status",)) if isinstance(status, Mapping) else {}
    out: dict[Path, Any] = {}
    for key, item in obj.items():
        if key in _NOT_OWNED_TOP:
            continue
        if key == "metadata" and isinstance(item, Mapping):
            for mkey, mitem in item.items():
                if mkey in _NOT_OWNED_META:
                    continue
                if isinstance(mitem, Mapping) and mitem:
                    out.update(_leaves(mitem, ("metadata", mkey)))
                else:
                    out[("metadata", mkey)] = mitem
        elif isinstance(item, Mapping) and item:
            out.update(_leaves(item, (key,)))
        else:
            out[(key,)] = item
    return out


def to_fields_v1(paths: Iterable[Path]) -> dict[str, Any]:
    """``{("spec", "x")}`` -> ``{"f:spec": {"f:x": {}}}`` (the FieldsV1 wire format)."""
    tree: dict[str, Any] = {}
    for path in sorted(paths):
        node = tree
        for part in path:
            node = node.setdefault(f"f:{part}", {})
    return tree


def from_fields_v1(tree: Mapping[str, Any] | None, prefix: Path = ()) -> set[Path]:
    out: set[Path] = set()
    for key, child in (tree or {}).items():
        if not key.startswith("f:"):
            continue  # ".", "k:{...}" and "v:..." do not occur for atomic lists
        path = (*prefix, key[2:])
        if isinstance(child, Mapping) and any(k.startswith("f:") for k in child):
            out |= from_fields_v1(child, path)
        else:
            out.add(path)
    return out


def path_string(path: Path) -> str:
    """How the API server prints a field path in conflicts: ``.spec.predictor.minReplicas``."""
    return "." + ".".join(path)


def get_path(obj: Mapping[str, Any], path: Path) -> Any:
    cur: Any = obj
    for part in path:
        if not isinstance(cur, Mapping) or part not in cur:
            return _MISSING
        cur = cur[part]
    return cur


def delete_path(obj: dict[str, Any], path: Path) -> None:
    """Remove one field and the maps it leaves empty."""
    parents: list[tuple[dict[str, Any], str]] = []
    cur: Any = obj
    for part in path[:-1]:
        if not isinstance(cur, dict) or not isinstance(cur.get(part), dict):
            return
        parents.append((cur, part))
        cur = cur[part]
    if isinstance(cur, dict):
        cur.pop(path[-1], None)
    for parent, key in reversed(parents):
        if parent[key] == {}:
            del parent[key]
        else:
            break


def merge(live: Any, config: Any) -> Any:
    """Maps merge key by key; lists and scalars from ``config`` replace (atomic)."""
    if not isinstance(live, dict) or not isinstance(config, dict):
        return copy.deepcopy(config)
    out = copy.deepcopy(live)
    for key, value in config.items():
        out[key] = merge(out.get(key), value) if key in out else copy.deepcopy(value)
    return out


@dataclass(frozen=True)
class Conflict:
    manager: str  # as the API server prints it: '"kubectl-edit" using serving.kserve.io/v1beta1'
    path: Path


class ApplyConflict(Exception):
    def __init__(self, conflicts: list[Conflict]) -> None:
        super().__init__(conflict_message(conflicts))
        self.conflicts = conflicts


def _printable(entry: Mapping[str, Any]) -> str:
    text = f'"{entry.get("manager", "")}"'
    if entry.get("subresource"):
        text += f' with subresource "{entry["subresource"]}"'
    if entry.get("operation") == "Update":
        text += f" using {entry.get('apiVersion', '')}"
    return text


def conflict_message(conflicts: list[Conflict]) -> str:
    """The API server's wording (``managedfields/internal/conflict.go``)."""
    if len(conflicts) == 1:
        c = conflicts[0]
        return f"Apply failed with 1 conflict: conflict with {c.manager}: {path_string(c.path)}"
    by_manager: dict[str, list[Path]] = {}
    for c in conflicts:
        by_manager.setdefault(c.manager, []).append(c.path)
    lines: list[str] = []
    for manager in sorted(by_manager):
        lines.append(f"conflicts with {manager}:")
        lines.extend(f"- {path_string(p)}" for p in by_manager[manager])
    return f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)


def conflict_causes(conflicts: list[Conflict]) -> list[dict[str, str]]:
    return [
        {
            "reason": "FieldManagerConflict",
            "message": f"conflict with {c.manager}",
            "field": path_string(c.path),
        }
        for c in conflicts
    ]


def _same_identity(
    entry: Mapping[str, Any], manager: str, operation: str, api: str, sub: str
) -> bool:
    if entry.get("manager") != manager or entry.get("operation") != operation:
        return False
    if (entry.get("subresource") or "") != sub:
        return False
    # Appliers are one manager whatever apiVersion they apply with; updaters are per version.
    return operation == "Apply" or entry.get("apiVersion") == api


def _entry(manager: str, operation: str, api: str, sub: str, paths: set[Path], now: str) -> dict:
    entry: dict[str, Any] = {
        "manager": manager,
        "operation": operation,
        "apiVersion": api,
        "time": now,
        "fieldsType": "FieldsV1",
        "fieldsV1": to_fields_v1(paths),
    }
    if sub:
        entry["subresource"] = sub
    return entry


def _entries(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    return copy.deepcopy(list((obj.get("metadata") or {}).get("managedFields") or []))


def _finish(entries: list[tuple[dict[str, Any], set[Path]]]) -> list[dict[str, Any]]:
    out = []
    for entry, paths in entries:
        if paths:
            entry["fieldsV1"] = to_fields_v1(paths)
            out.append(entry)
    return out


def apply(
    live: Mapping[str, Any] | None,
    config: Mapping[str, Any],
    manager: str,
    *,
    force: bool,
    now: str,
) -> dict[str, Any]:
    """The object after ``manager`` applies ``config`` (raises :class:`ApplyConflict`).

    The result carries the new ``metadata.managedFields``; identity and server metadata are the
    caller's to set.
    """
    api = str(config.get("apiVersion") or "")
    applied = fields_of(config)
    current = copy.deepcopy(dict(live)) if live else {}
    entries = [(e, from_fields_v1(e.get("fieldsV1"))) for e in _entries(current)]
    mine_index = next(
        (i for i, (e, _) in enumerate(entries) if _same_identity(e, manager, "Apply", api, "")),
        None,
    )
    previous = entries[mine_index][1] if mine_index is not None else set()

    conflicts: list[Conflict] = []
    for i, (entry, owned) in enumerate(entries):
        if i == mine_index or entry.get("subresource"):
            continue
        for path in sorted(owned & set(applied)):
            if get_path(current, path) != applied[path]:
                conflicts.append(Conflict(_printable(entry), path))
                if force:
                    owned.discard(path)
    if conflicts and not force:
        raise ApplyConflict(conflicts)

    others = set().union(*(o for i, (_, o) in enumerate(entries) if i != mine_index))
    for path in previous - set(applied) - others:
        delete_path(current, path)
    result = merge(current, {k: v for k, v in config.items() if k != "status"})
    mine = _entry(manager, "Apply", api, "", set(applied), now)
    if mine_index is not None:
        entries[mine_index] = (mine, set(applied))
    else:
        entries.append((mine, set(applied)))
    result.setdefault("metadata", {})["managedFields"] = _finish(entries)
    return result


def record_update(
    old: Mapping[str, Any] | None,
    new: dict[str, Any],
    manager: str,
    *,
    subresource: str = "",
    now: str,
) -> None:
    """Attribute a non-apply write of ``new`` (over ``old``) to ``manager``, in place."""
    api = str(new.get("apiVersion") or "")
    before = fields_of(old, subresource) if old else {}
    after = fields_of(new, subresource)
    changed = {p for p, v in after.items() if before.get(p, _MISSING) != v}
    removed = set(before) - set(after)
    entries = [(e, from_fields_v1(e.get("fieldsV1"))) for e in _entries(old or {})]
    for entry, owned in entries:
        owned -= removed
        if (entry.get("subresource") or "") == subresource:
            owned -= changed
    mine = next(
        ((e, o) for e, o in entries if _same_identity(e, manager, "Update", api, subresource)),
        None,
    )
    if mine is None and changed:
        entries.append((_entry(manager, "Update", api, subresource, set(), now), set()))
        mine = entries[-1]
    if mine is not None and changed:
        mine[0]["time"] = now
        mine[1].update(changed)
    new.setdefault("metadata", {})["managedFields"] = _finish(entries)
