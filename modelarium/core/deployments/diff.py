"""What differs between the live InferenceService and the one Modelarium would apply.

Only what a person or Modelarium sets is compared: ``metadata.name/namespace/labels/
annotations`` and ``spec``. What the API server and KServe fill in (``status``, uid,
resourceVersion, generation, managedFields, timestamps, finalizers, kubectl's last-applied
annotation) and the ``modelarium.io/change`` bookkeeping annotation are left out, so a diff
shows changes of intent, not of state.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator, Mapping
from typing import Any

from modelarium.core.deployments.manifest import ANN_CHANGE, to_yaml

IGNORED_ANNOTATIONS = frozenset({ANN_CHANGE, "kubectl.kubernetes.io/last-applied-configuration"})
_MISSING = object()


def comparable(obj: Mapping[str, Any] | None) -> dict[str, Any]:
    """The part of an object that expresses intent (see the module docstring)."""
    if not obj:
        return {}
    meta = obj.get("metadata") or {}
    out_meta: dict[str, Any] = {"name": meta.get("name"), "namespace": meta.get("namespace")}
    if meta.get("labels"):
        out_meta["labels"] = dict(meta["labels"])
    annotations = {
        k: v for k, v in (meta.get("annotations") or {}).items() if k not in IGNORED_ANNOTATIONS
    }
    if annotations:
        out_meta["annotations"] = annotations
    out: dict[str, Any] = {
        "apiVersion": obj.get("apiVersion"),
        "kind": obj.get("kind"),
        "metadata": out_meta,
    }
    if "spec" in obj:
        out["spec"] = obj["spec"]  # read-only here: compared and printed, never changed
    return out


def unified(live: Mapping[str, Any] | None, desired: Mapping[str, Any] | None) -> str:
    """A unified diff of the YAML of both (empty when they agree)."""
    before = to_yaml(comparable(live)).splitlines(keepends=True) if live else []
    after = to_yaml(comparable(desired)).splitlines(keepends=True) if desired else []
    if before == after:
        return ""
    return "".join(difflib.unified_diff(before, after, fromfile="live", tofile="desired"))


def _leaves(value: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, Mapping) and (value or not prefix):
        for key, item in value.items():
            yield from _leaves(item, f"{prefix}.{key}" if prefix else str(key))
    else:
        yield prefix, value


def _show(value: Any) -> str:
    return json.dumps(value, separators=(", ", ": "), ensure_ascii=False)


def changes(live: Mapping[str, Any] | None, desired: Mapping[str, Any] | None) -> list[str]:
    """One line per changed field: ``+ path: value``, ``- path: value``, ``~ path: old -> new``."""
    left, right = comparable(live), comparable(desired)
    if left == right:
        return []  # the usual case, on every reconcile pass: no need to walk the leaves
    before = dict(_leaves(left, ""))
    after = dict(_leaves(right, ""))
    lines: list[str] = []
    for path in sorted(set(before) | set(after)):
        old, new = before.get(path, _MISSING), after.get(path, _MISSING)
        if old == new:
            continue
        if old is _MISSING:
            lines.append(f"+ {path}: {_show(new)}")
        elif new is _MISSING:
            lines.append(f"- {path}: {_show(old)}")
        else:
            lines.append(f"~ {path}: {_show(old)} -> {_show(new)}")
    return lines
