"""The model architectures vLLM serves, from a packaged snapshot of its registry.

config.json names an architecture class (``LlamaForCausalLM``); whether vLLM can serve it, for
which task, and with which extra engine args (``--trust-remote-code``, ``--tokenizer-mode
mistral``) is data that changes with each vLLM release. It ships as ``architectures.json`` and a
refreshed copy (same schema) can replace it; :func:`parse_source` is the gate for such a copy.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from modelarium.core.errors import ValidationError

SCHEMA_VERSION = 1
TASKS = frozenset(
    {
        "generate",
        "embed",
        "classify",
        "score",
        "reward",
        "token_classify",
        "token_embed",
        "transcription",
        "draft",
    }
)
_PACKAGED = "architectures.json"


@dataclass(frozen=True)
class ConditionalArgs:
    """Engine args needed only in a situation (e.g. a repo in Mistral's native format)."""

    when: str
    args: Mapping[str, Any]


@dataclass(frozen=True)
class Architecture:
    """One architecture class vLLM can load."""

    name: str
    description: str
    tasks: tuple[str, ...]
    multimodal: bool = False
    implementation: str = ""
    examples: tuple[str, ...] = ()
    engine_args: Mapping[str, Any] | None = None
    conditional_engine_args: tuple[ConditionalArgs, ...] = ()
    inputs: tuple[str, ...] = ()
    min_transformers_version: str | None = None
    transformers_backend: bool = False

    @property
    def task(self) -> str:
        """The primary task (the first listed)."""
        return self.tasks[0]

    @property
    def needs_trust_remote_code(self) -> bool:
        return bool((self.engine_args or {}).get("trust_remote_code"))

    def cli_flags(self) -> list[str]:
        """``vllm serve`` flags for the always-needed engine args."""
        flags: list[str] = []
        for key, value in (self.engine_args or {}).items():
            flag = "--" + key.replace("_", "-")
            if value is True:
                flags.append(flag)
            elif isinstance(value, Mapping | list):
                flags += [flag, json.dumps(value, separators=(",", ":"))]
            elif value is not False and value is not None:
                flags += [flag, str(value)]
        return flags


@dataclass(frozen=True)
class ArchitectureCatalog:
    """A validated architectures file: entries plus where they came from."""

    architectures: tuple[Architecture, ...]
    source: str
    generated_at: str
    vllm_commit: str | None = None
    _by_name: dict[str, Architecture] = field(init=False, repr=False, compare=False)
    _by_lower: dict[str, Architecture] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index = {a.name: a for a in self.architectures}
        by_lower: dict[str, Architecture] = {}
        for arch in self.architectures:
            # vLLM keeps case variants (LLaMAForCausalLM, LlamaForCausalLM): the canonical one is
            # the class that implements itself.
            key = arch.name.lower()
            current = by_lower.get(key)
            if current is None or (
                not current.implementation.endswith("." + current.name)
                and arch.implementation.endswith("." + arch.name)
            ):
                by_lower[key] = arch
        object.__setattr__(self, "_by_name", index)
        object.__setattr__(self, "_by_lower", by_lower)

    def names(self) -> list[str]:
        return [a.name for a in self.architectures]

    def lookup(self, name: str) -> Architecture | None:
        """Exact class name, falling back to a case-insensitive match."""
        return self._by_name.get(name) or self._by_lower.get(name.strip().lower())

    def is_supported(self, name: str) -> bool:
        return self.lookup(name) is not None

    def search(self, text: str, limit: int | None = None) -> list[Architecture]:
        """Entries matching every word of ``text`` in name, description, task or examples.

        Name matches rank first (exact, then prefix, then substring), then other matches, so
        ``search("qwen3")`` lists the Qwen3 classes before models that merely mention Qwen3.
        """
        words = text.lower().split()
        if not words:
            return []
        ranked: list[tuple[int, str, Architecture]] = []
        for arch in self.architectures:
            name = arch.name.lower()
            haystack = " ".join(
                [
                    name,
                    arch.description.lower(),
                    " ".join(arch.tasks),
                    *map(str.lower, arch.examples),
                ]
            )
            if not all(word in haystack for word in words):
                continue
            query = " ".join(words)
            if name == query:
                rank = 0
            elif name.startswith(words[0]):
                rank = 1
            elif all(word in name for word in words):
                rank = 2
            else:
                rank = 3
            ranked.append((rank, name, arch))
        ranked.sort(key=lambda item: (item[0], item[1]))
        found = [arch for _, _, arch in ranked]
        return found[:limit] if limit is not None else found


def _fail(where: str, message: str) -> ValidationError:
    return ValidationError(f"architectures data: {where}: {message}")


def _str_list(entry: Mapping[str, Any], key: str, where: str, *, required: bool) -> tuple[str, ...]:
    value = entry.get(key)
    if value is None and not required:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _fail(where, f"'{key}' must be a list of strings")
    if required and not value:
        raise _fail(where, f"'{key}' must not be empty")
    return tuple(value)


def _parse_entry(entry: Any, index: int) -> Architecture:
    where = f"entry {index}"
    if not isinstance(entry, Mapping):
        raise _fail(where, "must be an object")
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip() or not name.isidentifier():
        raise _fail(where, "'name' must be a class name like LlamaForCausalLM")
    where = f"entry {index} ({name})"
    description = entry.get("description")
    if not isinstance(description, str) or not description.strip():
        raise _fail(where, "'description' must be a non-empty string")
    tasks = _str_list(entry, "tasks", where, required=True)
    unknown = sorted(set(tasks) - TASKS)
    if unknown:
        raise _fail(where, f"unknown task {unknown[0]!r} (known: {', '.join(sorted(TASKS))})")
    engine_args = entry.get("engine_args") or {}
    if not isinstance(engine_args, Mapping):
        raise _fail(where, "'engine_args' must be an object")
    conditional = []
    for item in entry.get("conditional_engine_args") or []:
        if (
            not isinstance(item, Mapping)
            or not isinstance(item.get("when"), str)
            or not isinstance(item.get("args"), Mapping)
        ):
            raise _fail(where, "'conditional_engine_args' items need 'when' and 'args'")
        conditional.append(ConditionalArgs(item["when"], dict(item["args"])))
    for key in ("multimodal", "transformers_backend"):
        if not isinstance(entry.get(key, False), bool):
            raise _fail(where, f"'{key}' must be true or false")
    implementation = entry.get("implementation", "")
    min_tf = entry.get("min_transformers_version")
    if not isinstance(implementation, str) or (min_tf is not None and not isinstance(min_tf, str)):
        raise _fail(where, "'implementation' and 'min_transformers_version' must be strings")
    return Architecture(
        name=name,
        description=description.strip(),
        tasks=tasks,
        multimodal=entry.get("multimodal", False),
        implementation=implementation,
        examples=_str_list(entry, "examples", where, required=False),
        engine_args=dict(engine_args),
        conditional_engine_args=tuple(conditional),
        inputs=_str_list(entry, "inputs", where, required=False),
        min_transformers_version=min_tf,
        transformers_backend=entry.get("transformers_backend", False),
    )


def parse_catalog(payload: Mapping[str, Any] | str | bytes) -> ArchitectureCatalog:
    """Validate an architectures document (dict or JSON text); ValidationError on bad data."""
    if isinstance(payload, str | bytes):
        try:
            payload = json.loads(payload)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValidationError(f"architectures data is not valid JSON: {exc}") from exc
    if not isinstance(payload, Mapping):
        raise ValidationError("architectures data must be a JSON object")
    version = payload.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise ValidationError(
            f"architectures data has schema_version {version!r}; this build reads {SCHEMA_VERSION}"
        )
    for key in ("source", "generated_at"):
        if not isinstance(payload.get(key), str) or not payload[key].strip():
            raise ValidationError(f"architectures data lacks a '{key}' string")
    entries = payload.get("architectures")
    if not isinstance(entries, list) or not entries:
        raise ValidationError("architectures data has no 'architectures' list")
    parsed = [_parse_entry(entry, i) for i, entry in enumerate(entries)]
    seen: set[str] = set()
    for arch in parsed:
        if arch.name in seen:
            raise ValidationError(f"architectures data lists {arch.name} twice")
        seen.add(arch.name)
    commit = payload.get("vllm_commit")
    return ArchitectureCatalog(
        tuple(parsed),
        payload["source"],
        payload["generated_at"],
        commit if isinstance(commit, str) else None,
    )


def parse_source(payload: Mapping[str, Any] | str | bytes) -> list[Architecture]:
    """The entries of a refreshed architectures document, validated like the packaged one."""
    return list(parse_catalog(payload).architectures)


@lru_cache(maxsize=8)
def _load_cached(path: str | None) -> ArchitectureCatalog:
    if path is None:
        text = resources.files(__package__).joinpath(_PACKAGED).read_text(encoding="utf-8")
    else:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ValidationError(f"cannot read architectures file {path}: {exc.strerror}") from exc
    return parse_catalog(text)


def load_catalog(path: str | Path | None = None) -> ArchitectureCatalog:
    """The packaged catalog, or the file at ``path`` (e.g. a refreshed copy the daemon stored)."""
    return _load_cached(str(path) if path is not None else None)


def lookup(name: str, catalog: ArchitectureCatalog | None = None) -> Architecture | None:
    return (catalog or load_catalog()).lookup(name)


def is_supported(name: str, catalog: ArchitectureCatalog | None = None) -> bool:
    return (catalog or load_catalog()).is_supported(name)


def search(
    text: str, catalog: ArchitectureCatalog | None = None, limit: int | None = None
) -> list[Architecture]:
    return (catalog or load_catalog()).search(text, limit)


def architecture_for_config(
    config: Mapping[str, Any], catalog: ArchitectureCatalog | None = None
) -> Architecture | None:
    """The catalog entry for config.json's first ``architectures`` name, if vLLM knows it."""
    archs = config.get("architectures")
    if not isinstance(archs, list) or not archs or not isinstance(archs[0], str):
        return None
    return lookup(archs[0], catalog)
