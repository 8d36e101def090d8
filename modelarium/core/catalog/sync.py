"""``catalog_sync``: mirror the catalog's default branch into the database, cheaply.

An unchanged catalog costs one conditional request: ``GET /git/ref/heads/<branch>`` with the
last ETag answers 304 (free against GitHub's rate limit). Only when the branch moved is the tree
read, in one recursive request, and only files whose blob id changed are fetched. The
repository itself (for its default branch, when ``MODELARIUM_CATALOG_BRANCH`` is unset) is
re-read at most once a day (postponed while PRs are open, up to a week), or when the branch is
gone. While Modelarium has pull requests open, one more conditional request (the repository's
pull requests, most recently updated first) tells whether any was merged or closed: a merged
PR's entry is then read from the branch like any other change; a PR closed without merging
marks its draft rejected. So an unchanged catalog costs at most 2 requests, whatever its size
(3, once a week, when PRs stay open that long and the default branch is not configured).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import PurePosixPath
from typing import Any, TypeVar

import sqlalchemy as sa

from modelarium.config.settings import Settings
from modelarium.core.catalog.validate import Checks, validate_text
from modelarium.core.clients.github import GitHubClient, GitHubNotFoundError, TreeItem
from modelarium.core.clock import Clock
from modelarium.core.db.models.catalog import (
    CatalogDraft,
    CatalogEntryRow,
    CatalogPull,
    CatalogSyncState,
)
from modelarium.core.db.uow import Database
from modelarium.core.errors import NotFoundError, UsageError
from modelarium.core.vllm import ArchitectureCatalog

T = TypeVar("T")
BRANCH_RECHECK = timedelta(days=1)
BRANCH_RECHECK_LATEST = timedelta(days=7)


@dataclass
class SyncResult:
    repo: str
    branch: str
    head_sha: str | None
    changed: bool = False
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)
    pulls: list[tuple[str, int, str]] = field(default_factory=list)
    """(entry, PR number, new state) for PRs merged or closed since the last sync."""
    calls: int = 0
    entries: int = 0

    def summary(self) -> str:
        parts = []
        if not self.changed:
            parts.append(f"catalog unchanged ({self.entries} entries)")
        else:
            parts.append(
                f"catalog at {self.branch}@{(self.head_sha or '')[:7]}: {self.entries} entries, "
                f"{len(self.added)} added, {len(self.updated)} changed, "
                f"{len(self.removed)} removed"
            )
        if self.invalid:
            parts.append(f"{len(self.invalid)} invalid ({', '.join(self.invalid[:5])})")
        for entry_id, number, state in self.pulls:
            parts.append(f"PR #{number} ({entry_id}) {state}")
        parts.append(f"{self.calls} GitHub request{'s' if self.calls != 1 else ''}")
        return "; ".join(parts)


class CatalogSync:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        client: GitHubClient,
        settings: Settings,
        architectures: Callable[[], ArchitectureCatalog] | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._client = client
        self._settings = settings
        self._architectures = architectures
        self._calls = 0

    def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        self._calls += 1
        return fn(*args, **kwargs)

    @property
    def repo(self) -> str:
        repo = self._settings.catalog_repo
        if not repo:
            raise UsageError("no catalog repository: set MODELARIUM_CATALOG_REPO=org/repo")
        return repo

    def _load_state(self, repo: str) -> CatalogSyncState:
        with self._db.transaction() as session:
            state = session.get(CatalogSyncState, repo)
            if state is None:
                return CatalogSyncState(repo=repo, entries=0)
            session.expunge(state)
            return state

    def _branch(
        self, repo: str, state: CatalogSyncState, *, force: bool = False, busy: bool = False
    ) -> str:
        """The branch to read. ``busy``: this run also reads the pull requests, so a daily
        re-check of the default branch waits for a run that does not (at most a week), which
        keeps every run at two requests or fewer."""
        configured = self._settings.catalog_branch
        if configured:
            if state.branch != configured:
                state.branch, state.ref_etag, state.head_sha = configured, None, None
            return configured
        now = self._clock.now()
        age = now - state.branch_checked_at if state.branch_checked_at else None
        due = (
            force
            or state.branch is None
            or age is None
            or (age >= BRANCH_RECHECK and not busy)
            or age >= BRANCH_RECHECK_LATEST
        )
        if due:
            answer = self._call(
                self._client.repo, repo, etag=state.repo_etag if state.branch else None
            )
            state.repo_etag = answer.etag
            state.branch_checked_at = now
            if answer.value is not None and answer.value.default_branch != state.branch:
                state.branch = answer.value.default_branch
                state.ref_etag, state.head_sha = None, None
        assert state.branch is not None
        return state.branch

    def run(self) -> SyncResult:
        self._calls = 0
        repo = self.repo
        state = self._load_state(repo)
        busy = bool(self._open_pulls(repo))
        branch = self._branch(repo, state, busy=busy)
        try:
            ref = self._call(
                self._client.ref, repo, branch, etag=state.ref_etag if state.head_sha else None
            )
        except GitHubNotFoundError:
            if self._settings.catalog_branch:
                raise NotFoundError(
                    f"{repo} has no branch {branch} (MODELARIUM_CATALOG_BRANCH)"
                ) from None
            branch = self._branch(repo, state, force=True)  # the default branch was renamed
            ref = self._call(self._client.ref, repo, branch)
        result = SyncResult(repo, branch, state.head_sha)
        files: dict[str, TreeItem] | None = None
        contents: dict[str, bytes] = {}
        if ref.modified and ref.value != state.head_sha:
            assert ref.value is not None
            files = self._entry_files(repo, ref.value)
            known = self._known_blobs()
            for path, item in files.items():
                if known.get(path) != item.sha:
                    contents[path] = self._call(self._client.blob, repo, item.sha)
            result.head_sha = ref.value
            result.changed = True
        state.ref_etag = ref.etag
        pulls = self._pull_states(repo, state)
        self._store(state, result, files, contents, pulls)
        result.calls = self._calls
        return result

    # -- reading Git ---------------------------------------------------------------------------
    def _entry_files(self, repo: str, head_sha: str) -> dict[str, TreeItem]:
        folder = self._settings.catalog_path
        tree = self._call(self._client.tree, repo, head_sha, recursive=True)
        items = tree.items
        if tree.truncated:  # a huge repository: walk down to the entries folder instead
            sha = head_sha
            for part in [p for p in folder.split("/") if p]:
                level = self._call(self._client.tree, repo, sha, recursive=False)
                found = next((i for i in level.items if i.path == part and i.type == "tree"), None)
                if found is None:
                    return {}
                sha = found.sha
            level = self._call(self._client.tree, repo, sha, recursive=False)
            items = tuple(TreeItem(folder + i.path, i.type, i.sha, i.size) for i in level.items)
        return {
            item.path: item
            for item in items
            if item.type == "blob"
            and item.path.startswith(folder)
            and "/" not in item.path[len(folder) :]
            and item.path.endswith(".json")
        }

    def _known_blobs(self) -> dict[str, str]:
        with self._db.transaction() as session:
            rows = session.execute(sa.select(CatalogEntryRow.path, CatalogEntryRow.blob_sha))
            return {str(path): str(sha) for path, sha in rows}

    def _open_pulls(self, repo: str) -> set[int]:
        with self._db.transaction() as session:
            return set(
                session.scalars(
                    sa.select(CatalogPull.number).where(
                        CatalogPull.repo == repo, CatalogPull.state == "open"
                    )
                )
            )

    def _pull_states(self, repo: str, state: CatalogSyncState) -> dict[int, Any]:
        """Pull requests Modelarium holds open, as GitHub has them now (only when it changed)."""
        open_numbers = self._open_pulls(repo)
        if not open_numbers:
            return {}
        page = self._call(
            self._client.pulls,
            repo,
            state="all",
            sort="updated",
            direction="desc",
            per_page=100,
            etag=state.pulls_etag,
        )
        state.pulls_etag = page.etag
        if not page.modified or page.value is None:
            return {}
        return {p.number: p for p in page.value if p.number in open_numbers}

    # -- writing the mirror ----------------------------------------------------------------------
    def _store(
        self,
        state: CatalogSyncState,
        result: SyncResult,
        files: dict[str, TreeItem] | None,
        contents: dict[str, bytes],
        pulls: dict[int, Any],
    ) -> None:
        now = self._clock.now()
        checks = Checks(architectures=self._architectures() if self._architectures else None)
        with self._db.transaction() as session:
            if files is not None:
                rows = {r.path: r for r in session.scalars(sa.select(CatalogEntryRow))}
                for path, row in rows.items():
                    if path not in files:
                        result.removed.append(row.entry_id)
                        session.delete(row)
                session.flush()
                for path, item in files.items():
                    row = rows.get(path)
                    if path in contents:
                        name = PurePosixPath(path).name
                        text = contents[path].decode("utf-8", errors="replace")
                        checked = validate_text(text, checks, name)
                        try:
                            data = json_object(text)
                        except ValueError:
                            data = {}
                        values = {
                            "entry_id": PurePosixPath(path).stem,
                            "path": path,
                            "blob_sha": item.sha,
                            "data": data,
                            "status": checked.entry.status
                            if checked.entry is not None and checked.ok
                            else "invalid",
                            "issues": [i.to_json() for i in checked.errors],
                            "repo_id": checked.entry.repo if checked.entry else None,
                            "commit": checked.entry.commit if checked.entry else None,
                            "git_commit": result.head_sha,
                            "synced_at": now,
                            "changed_at": now,
                        }
                        if not checked.ok:
                            result.invalid.append(values["entry_id"])
                        if row is None:
                            session.add(CatalogEntryRow(**values))
                            result.added.append(values["entry_id"])
                        else:
                            for key, value in values.items():
                                setattr(row, key, value)
                            result.updated.append(values["entry_id"])
                    elif row is not None:
                        row.git_commit = result.head_sha or row.git_commit
                        row.synced_at = now
                        if row.status == "invalid":
                            result.invalid.append(row.entry_id)
                state.head_sha = result.head_sha
            self._settle_pulls(session, pulls, result, now)
            state.entries = session.scalar(sa.select(sa.func.count(CatalogEntryRow.id))) or 0
            state.synced_at = now
            state.last_error = None
            session.merge(state)
        result.entries = state.entries

    def _settle_pulls(
        self, session: Any, pulls: dict[int, Any], result: SyncResult, now: Any
    ) -> None:
        if not pulls:
            return
        rows = session.scalars(
            sa.select(CatalogPull).where(
                CatalogPull.number.in_(list(pulls)), CatalogPull.state == "open"
            )
        )
        for row in rows:
            pull = pulls[row.number]
            if pull.status == "open":
                if pull.head_sha and pull.head_sha != row.head_sha and not row.left_alone:
                    row.left_alone = True  # a person pushed: stop updating the branch
                    row.updated_at = now
                continue
            row.state, row.closed_at, row.updated_at = pull.status, now, now
            result.pulls.append((row.entry_id, row.number, pull.status))
            draft = session.scalar(
                sa.select(CatalogDraft).where(CatalogDraft.entry_id == row.entry_id)
            )
            if draft is not None and draft.state == "proposed":
                draft.state = "merged" if pull.status == "merged" else "rejected"
                draft.updated_at = now


def json_object(text: str) -> dict[str, Any]:
    import json

    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("not an object")
    return data
