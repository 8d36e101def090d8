"""Which vLLM architectures table is current: the packaged one, or a refreshed copy in the DB.

The daemon fetches ``settings.vllm_architectures_url`` (same schema as the packaged
``core/vllm/architectures.json``), validates it with the registry's own parser and stores it in
the shared cache, so every replica serves the same table and a bad document never replaces a good
one. Readers fall back to the packaged file until a refresh has succeeded.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from modelarium.config.settings import Settings
from modelarium.core.cache import Cache
from modelarium.core.clock import Clock
from modelarium.core.db.uow import Database
from modelarium.core.errors import UpstreamError, ValidationError
from modelarium.core.messages import timestamp
from modelarium.core.vllm import ArchitectureCatalog, load_catalog, parse_catalog, parse_source

NAMESPACE = "vllm.archs"
KEY = "catalog"
KEEP = 10 * 365 * 86400.0
"""A refreshed table stays until replaced: an old table beats none when the source is down."""
MEMO_SECONDS = 60.0
"""How long a process reuses the table it read before looking in the database again."""


@dataclass(frozen=True)
class CatalogInfo:
    origin: str  # "packaged" or "refreshed"
    source: str
    generated_at: str
    vllm_commit: str | None
    count: int
    refreshed_at: datetime | None

    def describe(self) -> str:
        commit = f" @ {self.vllm_commit[:12]}" if self.vllm_commit else ""
        when = f", refreshed {timestamp(self.refreshed_at)}" if self.refreshed_at else ""
        return f"{self.count} architectures, {self.origin} table{commit}{when}"


@dataclass(frozen=True)
class RefreshOutcome:
    url: str
    count: int
    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: bool

    def summary(self) -> str:
        if not self.changed:
            return f"vLLM architectures unchanged ({self.count})"
        return (
            f"vLLM architectures refreshed: {self.count} "
            f"(+{len(self.added)} / -{len(self.removed)})"
        )


class ArchitectureStore:
    def __init__(self, settings: Settings, db: Database, clock: Clock) -> None:
        self._settings = settings
        # Its own Cache over the shared table: reading the table is bookkeeping, and must not
        # move the hit ratio `/model status` reports for Hub lookups.
        self._cache = Cache(db, clock)
        self._clock = clock
        self._lock = threading.Lock()
        self._memo: tuple[float, ArchitectureCatalog, datetime | None] | None = None

    def _load(self) -> tuple[ArchitectureCatalog, datetime | None]:
        with self._lock:
            memo = self._memo
        if memo is not None and time.monotonic() - memo[0] < MEMO_SECONDS:
            return memo[1], memo[2]
        entry = self._cache.get(NAMESPACE, KEY, stale_ttl=KEEP)
        catalog, refreshed = load_catalog(), None
        if entry is not None:
            # A row from an incompatible build: keep serving the packaged table.
            with contextlib.suppress(KeyError, ValidationError):
                catalog, refreshed = parse_catalog(entry.value["document"]), entry.fetched_at
        with self._lock:
            self._memo = (time.monotonic(), catalog, refreshed)
        return catalog, refreshed

    def catalog(self) -> ArchitectureCatalog:
        return self._load()[0]

    def forget(self) -> None:
        """Drop this process's copy; the next read looks in the database again."""
        with self._lock:
            self._memo = None

    def info(self) -> CatalogInfo:
        catalog, refreshed = self._load()
        return CatalogInfo(
            "refreshed" if refreshed else "packaged",
            catalog.source,
            catalog.generated_at,
            catalog.vllm_commit,
            len(catalog.architectures),
            refreshed,
        )

    def refresh(self, url: str | None = None) -> RefreshOutcome:
        """Fetch, validate (``parse_source``) and store the table at ``url`` (default: settings)."""
        url = url or self._settings.vllm_architectures_url
        if not url:
            raise ValidationError(
                "no vLLM architectures source configured (MODELARIUM_VLLM_ARCHITECTURES_URL)"
            )
        try:
            response = httpx.get(url, timeout=self._settings.hub_timeout, follow_redirects=True)
        except httpx.HTTPError as exc:
            raise UpstreamError(f"vLLM architectures source {url} is unreachable ({exc})") from None
        if response.status_code != 200:
            raise UpstreamError(
                f"vLLM architectures source {url} answered HTTP {response.status_code}"
            )
        try:
            document: Any = json.loads(response.content)
        except ValueError as exc:
            raise ValidationError(f"vLLM architectures source {url}: not JSON ({exc})") from None
        fresh = parse_source(document)  # raises ValidationError: the stored table is kept
        before = {a.name for a in self.catalog().architectures}
        after = {a.name for a in fresh}
        previous = self._cache.get(NAMESPACE, KEY, stale_ttl=KEEP)
        changed = previous is None or previous.value.get("document") != document
        self._cache.put(NAMESPACE, KEY, {"url": url, "document": document}, KEEP)
        self.forget()
        return RefreshOutcome(
            url,
            len(fresh),
            tuple(sorted(after - before)),
            tuple(sorted(before - after)),
            changed,
        )
