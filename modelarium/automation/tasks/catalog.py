"""Catalog tasks: mirror the catalog's default branch (catalog_sync) and open Renovate-style
update PRs when an approved entry's Hub repo moves on (catalog_watch). Registered only when a
catalog repository is configured."""

from __future__ import annotations

from modelarium.core.app import Core
from modelarium.core.catalog.changes import PR
from modelarium.core.scheduling import PeriodicTask, TaskResult

WATCH_USER = "catalog_watch"


def register(core: Core, fronts: object = None) -> None:
    settings = core.settings
    if not settings.catalog_repo:
        return

    def catalog_sync() -> TaskResult:
        return TaskResult(summary=core.catalog.sync().summary())

    def catalog_watch() -> TaskResult:
        def propose(entry_id: str) -> int:
            proposal = core.changes.propose(
                PR, {"entry_id": entry_id, "source": "watch"}, WATCH_USER, system=True
            )
            return proposal.change.id

        return TaskResult(summary=core.catalog.watch(WATCH_USER, propose=propose).summary())

    core.tasks.register(
        PeriodicTask(
            "catalog_sync",
            settings.schedule_catalog_sync,
            catalog_sync,
            "mirror the catalog repository's entries and settle merged or closed catalog PRs",
        )
    )
    core.tasks.register(
        PeriodicTask(
            "catalog_watch",
            settings.schedule_catalog_watch,
            catalog_watch,
            "open or refresh a PR per approved entry whose Hub repo has a newer commit or licence",
        )
    )
