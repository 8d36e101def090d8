"""The catalog capability: drafts made in chat, validated, carried to Git by pull requests.

Git's default branch is the truth (mirrored by :mod:`.sync`); a *draft* is a change not in Git
yet: a new entry (``catalog add``), a status change (``catalog status``) or an update found by
``catalog_watch``. ``catalog pr`` publishes a validated draft as one commit on the entry's
branch and one PR (:mod:`.pulls`); the next sync after the merge makes it an approved entry, a PR
closed without merging marks the draft rejected.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from modelarium.core.catalog.entry import STATUSES, CatalogEntry, check_id, diff_lines
from modelarium.core.catalog.generate import (
    draft_from_report,
    hf_cache_path,
    in_claim,
    parse_storage_uri,
    storage_uri_for,
)
from modelarium.core.catalog.hubcheck import latest_commit
from modelarium.core.catalog.pulls import PublishResult, PullRecord, PullRequestWriter, branch_for
from modelarium.core.catalog.sync import CatalogSync, SyncResult
from modelarium.core.catalog.template import kind_for, render
from modelarium.core.catalog.validate import (
    Checks,
    HubFacts,
    Validated,
    validate_document,
    validate_text,
)
from modelarium.core.db.models.catalog import (
    CatalogDraft,
    CatalogEntryRow,
    CatalogHistory,
    CatalogPull,
)
from modelarium.core.errors import (
    ConflictError,
    ModelariumError,
    NotFoundError,
    UsageError,
    ValidationError,
)
from modelarium.core.hub.models import parse_repo_ref

if TYPE_CHECKING:
    from modelarium.core.clients.github import GitHubClient
    from modelarium.core.kernel import Kernel
    from modelarium.core.ports import ModelFacts, WeightsStore

ACTIVE_DRAFT = ("draft", "validated", "proposed")
STATUS_TARGETS = ("approved", "deprecated", "retired")
LIST_STATUSES = (*STATUSES, "invalid", "rejected")


@dataclass(frozen=True)
class PullView:
    number: int
    url: str
    state: str
    kind: str
    branch: str
    left_alone: bool
    source: str

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "url": self.url,
            "state": self.state,
            "kind": self.kind,
            "branch": self.branch,
            "left_alone": self.left_alone,
            "source": self.source,
        }


@dataclass(frozen=True)
class EntryView:
    """One entry id: what Git has, what is drafted, and the PR between them."""

    entry_id: str
    git: CatalogEntry | None = None
    git_status: str | None = None  # the entry's status in Git, or "invalid"
    git_issues: tuple[dict[str, Any], ...] = ()
    git_data: dict[str, Any] | None = None
    draft: CatalogEntry | None = None
    draft_state: str | None = None
    draft_reason: str | None = None
    draft_issues: tuple[dict[str, Any], ...] = ()
    pull: PullView | None = None
    hub_commit: str | None = None
    hub_license: str | None = None

    @property
    def status(self) -> str:
        """What ``catalog list --status`` filters on: Git's status, else the draft's state."""
        if self.git_status is not None:
            return self.git_status
        return self.draft_state or "draft"

    @property
    def current(self) -> CatalogEntry | None:
        return self.draft if self.draft is not None else self.git

    @property
    def update_available(self) -> bool:
        git = self.git
        if git is None or self.hub_commit is None:
            return False
        return self.hub_commit != git.commit or (
            self.hub_license is not None and self.hub_license.lower() != git.license.lower()
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.entry_id,
            "status": self.status,
            "git": self.git.to_json() if self.git else self.git_data,
            "git_status": self.git_status,
            "git_issues": list(self.git_issues),
            "draft": self.draft.to_json() if self.draft else None,
            "draft_state": self.draft_state,
            "draft_reason": self.draft_reason,
            "draft_issues": list(self.draft_issues),
            "pull": self.pull.to_json() if self.pull else None,
            "hub_commit": self.hub_commit,
            "hub_license": self.hub_license,
            "update_available": self.update_available,
        }


@dataclass(frozen=True)
class EntryDiff:
    entry_id: str
    kind: str
    lines: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.entry_id, "kind": self.kind, "diff": list(self.lines)}


@dataclass(frozen=True)
class PrPlan:
    """What ``catalog pr <id>`` will do, resolved before anything is written."""

    entry: CatalogEntry
    before: CatalogEntry | None
    kind: str
    branch: str
    blob_sha: str
    previous: PullRecord | None
    diff: tuple[str, ...]
    reason: str

    @property
    def action(self) -> str:
        return "update" if self.previous is not None else "open"

    def params(self) -> dict[str, Any]:
        return {
            "entry_id": self.entry.id,
            "kind": self.kind,
            "branch": self.branch,
            "blob_sha": self.blob_sha,
            "pull": self.previous.number if self.previous else None,
        }


@dataclass
class WatchResult:
    checked: int = 0
    updates: list[str] = field(default_factory=list)
    published: list[PublishResult] = field(default_factory=list)
    proposed: list[tuple[str, int]] = field(default_factory=list)
    """(entry, change id) when the PRs go through the change engine (the daemon's task)."""
    deferred: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = f"checked {self.checked} approved entr{'y' if self.checked == 1 else 'ies'}"
        if self.updates:
            text += f"; updates for {', '.join(self.updates)}"
        for result in self.published:
            text += f"; {result.summary()}"
        for entry_id, change_id in self.proposed:
            text += f"; change #{change_id} publishes {entry_id}"
        if self.deferred:
            text += f"; {len(self.deferred)} deferred (PRs per day reached)"
        if self.errors:
            text += f"; {len(self.errors)} failed ({self.errors[0]})"
        return text


def _entry_or_none(data: dict[str, Any] | None) -> CatalogEntry | None:
    if not data:
        return None
    try:
        return CatalogEntry.from_json(data)
    except (KeyError, TypeError, ValueError):
        return None


class CatalogService:
    def __init__(self, kernel: Kernel, models: ModelFacts, weights: WeightsStore) -> None:
        self.settings = kernel.settings
        self._db = kernel.db
        self._clock = kernel.clock
        self._changes = kernel.changes
        self._models = models
        self._weights = weights

    # -- wiring ------------------------------------------------------------------------------
    @cached_property
    def github(self) -> GitHubClient:
        from modelarium.core.clients.github import GitHubClient

        return GitHubClient(self.settings)

    @property
    def repo(self) -> str:
        if not self.settings.catalog_repo:
            raise UsageError("no catalog repository: set MODELARIUM_CATALOG_REPO=org/repo")
        return self.settings.catalog_repo

    def writer(self) -> PullRequestWriter:
        return PullRequestWriter(
            self.github, self.repo, self.settings.catalog_path, self.settings.catalog_branch
        )

    def syncer(self) -> CatalogSync:
        return CatalogSync(
            self._db,
            self._clock,
            self.github,
            self.settings,
            self._models.architectures.catalog,
        )

    # -- reading -----------------------------------------------------------------------------
    def _view(
        self,
        entry_id: str,
        row: CatalogEntryRow | None,
        draft: CatalogDraft | None,
        pull: CatalogPull | None,
    ) -> EntryView:
        git = _entry_or_none(row.data) if row is not None and row.status != "invalid" else None
        return EntryView(
            entry_id=entry_id,
            git=git,
            git_status=row.status if row is not None else None,
            git_issues=tuple(row.issues or ()) if row is not None else (),
            git_data=row.data if row is not None else None,
            draft=_entry_or_none(draft.data) if draft is not None else None,
            draft_state=draft.state if draft is not None else None,
            draft_reason=draft.reason if draft is not None else None,
            draft_issues=tuple(draft.issues or ()) if draft is not None else (),
            pull=PullView(
                pull.number,
                pull.url,
                pull.state,
                pull.kind,
                pull.branch,
                pull.left_alone,
                pull.source,
            )
            if pull is not None
            else None,
            hub_commit=row.hub_commit if row is not None else None,
            hub_license=row.hub_license if row is not None else None,
        )

    def _latest_pull(self, session: Session, entry_id: str) -> CatalogPull | None:
        return session.scalar(
            sa.select(CatalogPull)
            .where(CatalogPull.entry_id == entry_id)
            .order_by(CatalogPull.id.desc())
            .limit(1)
        )

    def view(self, entry_id: str) -> EntryView:
        entry_id = check_id(entry_id)
        with self._db.transaction() as session:
            row = session.scalar(
                sa.select(CatalogEntryRow).where(CatalogEntryRow.entry_id == entry_id)
            )
            draft = self._draft(session, entry_id)
            pull = self._latest_pull(session, entry_id)
            if row is None and draft is None:
                raise NotFoundError(f"no catalog entry {entry_id!r} (see `catalog list`)")
            return self._view(entry_id, row, draft, pull)

    def entries(self, status: str | None = None) -> list[EntryView]:
        if status is not None and status not in LIST_STATUSES:
            raise UsageError(f"--status must be one of {', '.join(LIST_STATUSES)}")
        with self._db.transaction() as session:
            rows = {r.entry_id: r for r in session.scalars(sa.select(CatalogEntryRow))}
            drafts = {d.entry_id: d for d in session.scalars(sa.select(CatalogDraft))}
            pulls: dict[str, CatalogPull] = {}
            for pull in session.scalars(sa.select(CatalogPull).order_by(CatalogPull.id)):
                pulls[pull.entry_id] = pull
            views = [
                self._view(entry_id, rows.get(entry_id), drafts.get(entry_id), pulls.get(entry_id))
                for entry_id in sorted(set(rows) | set(drafts))
            ]
        if status is not None:
            views = [v for v in views if v.status == status or v.draft_state == status]
        return views

    def for_repo(self, repo_id: str) -> list[EntryView]:
        """The entries (Git's or drafted) of one Hugging Face repo, for `info`."""
        wanted = repo_id.lower()
        return [
            v for v in self.entries() if v.current is not None and v.current.repo.lower() == wanted
        ]

    def deploy_refusal(self, entry_id: str) -> str | None:
        """Why an entry must not be deployed (deprecated, retired, not approved), or None.

        For the deployments capability (not built yet): ``deploy`` refuses with this line, and
        ``deployments`` warns with it for what already runs."""
        view = self.view(entry_id)
        git = view.git
        if git is None:
            return f"{view.entry_id} is not an approved entry in the catalog's Git repository"
        if git.status in ("deprecated", "retired"):
            why = f": {git.status_reason}" if git.status_reason else ""
            return f"{view.entry_id} is {git.status} in the catalog{why}"
        if git.status != "approved":
            return f"{view.entry_id} is {git.status}, not approved"
        return None

    def deprecation(self, repo_id: str, commit: str) -> str | None:
        """The ``model_deprecation`` port: why a model must not be deployed because the
        catalog's Git deprecates or retires an entry of it, or None (models the catalog does
        not list are not refused here)."""
        wanted = repo_id.lower()
        for view in self.entries():
            git = view.git
            if git is None or git.repo.lower() != wanted:
                continue
            if git.status in ("deprecated", "retired"):
                why = f": {git.status_reason}" if git.status_reason else ""
                return f"catalog entry {view.entry_id} is {git.status}{why}"
        return None

    def _draft(self, session: Session, entry_id: str, *, lock: bool = False) -> CatalogDraft | None:
        stmt = sa.select(CatalogDraft).where(CatalogDraft.entry_id == entry_id)
        if lock:
            stmt = stmt.with_for_update()
        return session.scalar(stmt)

    # -- drafting ----------------------------------------------------------------------------
    def _save_draft(
        self,
        entry: CatalogEntry,
        user: str,
        *,
        reason: str | None,
        size_bytes: int | None = None,
        source: str = "chat",
    ) -> EntryView:
        now = self._clock.now()
        with self._db.transaction() as session:
            draft = self._draft(session, entry.id, lock=True)
            if (
                draft is not None
                and source == "watch"
                and draft.source == "chat"
                and draft.state in ACTIVE_DRAFT
            ):
                raise ConflictError(f"{entry.id} has a PR open from chat")
            if draft is None:
                draft = CatalogDraft(entry_id=entry.id, created_by=user, created_at=now)
                session.add(draft)
            draft.data = entry.to_json()
            draft.state = "draft"
            draft.reason = reason
            draft.issues = []
            draft.validated_at = None
            draft.size_bytes = size_bytes if size_bytes is not None else draft.size_bytes
            draft.source = source
            draft.updated_at = now
            session.flush()
            row = session.scalar(
                sa.select(CatalogEntryRow).where(CatalogEntryRow.entry_id == entry.id)
            )
            return self._view(entry.id, row, draft, self._latest_pull(session, entry.id))

    def _verified_weights(self, repo: str, commit: str) -> tuple[str | None, int | None]:
        """(storage URI, size) of verified installed weights of (repo, commit), if any."""
        weights = self._weights
        for record in weights.matching(repo, commit, statuses=("installed",)):
            if record.verified_at is not None and record.commit == commit:
                location = weights.location(record.location)
                if location.is_bucket:
                    return weights.bucket_uri(location.name, repo, commit), record.size_bytes
                return storage_uri_for(location, repo, commit), record.size_bytes
        return None, None

    def add(
        self,
        model_ref: str,
        user: str,
        *,
        entry_id: str | None = None,
        tags: tuple[str, ...] = (),
        notes: str = "",
    ) -> EntryView:
        """A draft for ``org/name[@rev]`` from the Hub, config.json, the vLLM table and the fit.

        An id Git already has becomes an update draft (owners, tags and notes kept)."""
        repo, revision = parse_repo_ref(model_ref)
        if entry_id is not None:
            check_id(entry_id)
        report = self._models.describe(repo, revision)
        commit = report.model.sha or ""
        storage, size = self._verified_weights(report.model.id, commit)
        if size is None and report.fit is not None and report.fit.explained is not None:
            result = report.fit.explained.result
            size = int(result.weights.total) if result is not None else None
        entry = draft_from_report(
            report, entry_id=entry_id, owners=(user,), storage_uri=storage, tags=tags, notes=notes
        )
        current = self._git_entry(entry.id)
        if current is not None:
            entry = entry.with_changes(
                display_name=current.display_name,
                owners=current.owners or entry.owners,
                tags=tuple(dict.fromkeys([*current.tags, *entry.tags])),
                notes=notes or current.notes,
            )
        reason = (
            f"requested by {user}"
            if current is None
            else f"{user} re-drafted it from {report.model.id}@{commit[:7]}"
        )
        return self._save_draft(entry, user, reason=reason, size_bytes=size)

    def _git_entry(self, entry_id: str) -> CatalogEntry | None:
        with self._db.transaction() as session:
            row = session.scalar(
                sa.select(CatalogEntryRow).where(CatalogEntryRow.entry_id == entry_id)
            )
            if row is None or row.status == "invalid":
                return None
            return _entry_or_none(row.data)

    def status_entry(
        self, entry_id: str, status: str, reason: str
    ) -> tuple[CatalogEntry, CatalogEntry | None]:
        """(the entry moved to ``status``, Git's version): pure, for planning the change."""
        entry_id = check_id(entry_id)
        if status not in STATUS_TARGETS:
            raise UsageError(
                f"status must be one of {', '.join(STATUS_TARGETS)} (draft and validated are "
                "the states of a draft before its PR)"
            )
        if not reason.strip():
            raise UsageError("say why: --reason TEXT")
        view = self.view(entry_id)
        active = view.draft is not None and view.draft_state in ACTIVE_DRAFT
        if active and view.draft_state == "draft":
            raise ConflictError(
                f"{entry_id} has a draft that is not validated: `catalog validate {entry_id}` "
                "first, so the status change does not carry unchecked edits"
            )
        base = view.draft if active else view.git
        if base is None:
            raise NotFoundError(f"{entry_id} is not a valid entry in Git; fix it first")
        if view.git is not None and view.git.status == status and not active:
            raise ConflictError(f"{entry_id} is already {status}")
        entry = base.with_changes(
            status=status,
            status_reason=reason.strip() if status in ("deprecated", "retired") else None,
        )
        return entry, view.git

    def set_status(self, entry_id: str, status: str, reason: str, user: str) -> EntryView:
        """A draft moving an entry to ``status`` (carried to Git by its PR), validated at once:
        only the status changed on top of Git's entry or of a validated draft."""
        entry, _ = self.status_entry(entry_id, status, reason)
        result = validate_document(entry.to_json(), Checks(), f"{entry.id}.json")
        if not result.ok:
            raise ValidationError(f"{entry.id}: {result.errors[0]}")
        self._save_draft(entry, user, reason=reason.strip())
        with self._db.transaction() as session:
            draft = self._draft(session, entry.id, lock=True)
            assert draft is not None
            draft.state, draft.validated_at = "validated", self._clock.now()
        return self.view(entry.id)

    # -- storage (the ``catalog_storage`` port) ---------------------------------------------
    def storage_entry(
        self, entry_id: str, storage_uri: str
    ) -> tuple[CatalogEntry, CatalogEntry | None]:
        """(the entry pointing at ``storage_uri``, Git's version): pure, for planning."""
        entry_id = check_id(entry_id)
        parse_storage_uri(storage_uri)
        view = self.view(entry_id)
        active = view.draft is not None and view.draft_state in ACTIVE_DRAFT
        if active and view.draft_state == "draft":
            raise ConflictError(
                f"{entry_id} has a draft that is not validated: `catalog validate {entry_id}` "
                "first, so the storage change does not carry unchecked edits"
            )
        base = view.draft if active else view.git
        if base is None:
            raise NotFoundError(f"{entry_id} is not a valid entry in Git; fix it first")
        if base.storage_uri == storage_uri:
            raise ConflictError(f"{entry_id} already has storage_uri {storage_uri}")
        return base.with_changes(storage_uri=storage_uri), view.git

    def set_storage(self, entry_id: str, storage_uri: str, reason: str, user: str) -> EntryView:
        """A draft moving an entry's ``storage_uri`` (carried to Git by its PR), validated at
        once: the weights there must be installed and verified."""
        entry, _ = self.storage_entry(entry_id, storage_uri)
        result = validate_document(
            entry.to_json(), Checks(storage=self._storage), f"{entry.id}.json"
        )
        if not result.ok:
            raise ValidationError(f"{entry.id}: {result.errors[0]}")
        self._save_draft(entry, user, reason=reason)
        with self._db.transaction() as session:
            draft = self._draft(session, entry.id, lock=True)
            assert draft is not None
            draft.state, draft.validated_at = "validated", self._clock.now()
        return self.view(entry.id)

    def record_history(
        self,
        repo_id: str,
        action: str,
        text: str,
        *,
        user: str | None = None,
        source: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> list[str]:
        """The ``catalog_history`` port: record what happened to ``repo_id``'s model (a group
        promotion or rollback) in the history of each catalog entry of that repo (Git's or
        drafted). Returns the entry ids recorded; none when the catalog does not list the model.
        Recording the same ``source`` and ``action`` twice records it once (a resumed job)."""
        ids = [v.entry_id for v in self.for_repo(repo_id)]
        if not ids:
            return []
        recorded = []
        with self._db.transaction() as session:
            for entry_id in ids:
                if source is not None and session.scalar(
                    sa.select(CatalogHistory.id).where(
                        CatalogHistory.entry_id == entry_id,
                        CatalogHistory.source == source,
                        CatalogHistory.action == action,
                    )
                ):
                    continue
                session.add(
                    CatalogHistory(
                        entry_id=entry_id, at=self._clock.now(), action=action[:32],
                        text=text, user=user, source=source and source[:255],
                        detail=dict(detail or {}),
                    )
                )  # fmt: skip
                recorded.append(entry_id)
        return recorded

    def history(self, entry_id: str, limit: int = 20) -> list[dict[str, Any]]:
        """An entry's recorded history (newest last): group promotions and rollbacks."""
        entry_id = check_id(entry_id)
        with self._db.transaction() as session:
            rows = session.scalars(
                sa.select(CatalogHistory)
                .where(CatalogHistory.entry_id == entry_id)
                .order_by(CatalogHistory.id.desc())
                .limit(limit)
            ).all()
            return [
                {"at": r.at.isoformat(), "action": r.action, "text": r.text, "user": r.user,
                 "detail": dict(r.detail or {})}
                for r in reversed(rows)
            ]  # fmt: skip

    def propose_storage(
        self, repo_id: str, commit: str, storage_uri: str, user: str, channel: str | None = None
    ) -> list[str]:
        """The ``catalog_storage`` port: weights of ``repo_id@commit`` were published at
        ``storage_uri``; propose the ``storage_uri`` update of each catalog entry pinned to that
        commit, as a change opening the entry's PR (approved like any catalog PR). One line per
        entry; none when there is no catalog or no such entry."""
        from modelarium.core.catalog.changes import STORAGE

        if not self.settings.catalog_repo:
            return []
        wanted = repo_id.lower()
        lines = []
        for view in self.entries():
            git = view.git
            if git is None or git.repo.lower() != wanted or git.commit != commit:
                continue
            if git.storage_uri == storage_uri:
                continue
            params = {
                "entry_id": view.entry_id,
                "storage_uri": storage_uri,
                "reason": f"{repo_id}@{commit[:7]} published to {storage_uri}",
            }
            try:
                proposal = self._changes.propose(STORAGE, params, user, channel)
            except ModelariumError as exc:
                lines.append(f"catalog entry {view.entry_id}: storage_uri not proposed: {exc}")
                continue
            lines.append(
                f"catalog entry {view.entry_id}: storage_uri update proposed as change "
                f"#{proposal.change.id}"
                + (f" (approval #{proposal.approval.id})" if proposal.approval else "")
            )
        return lines

    # -- validation --------------------------------------------------------------------------
    def _hub_facts(self, repo: str, commit: str) -> HubFacts:
        from modelarium.core.catalog.hubcheck import direct_hub_lookup

        return direct_hub_lookup(self.settings)(repo, commit)

    def _fit(self, entry: CatalogEntry) -> list[tuple[str, bool]]:
        report = self._models.fit(entry.repo, entry.commit)
        return [(s.choice.name, s.fits) for s in report.sized]

    def _storage(self, entry: CatalogEntry) -> str | None:
        """None when ``storage_uri`` holds verified weights of the pinned commit, else why not."""
        assert entry.storage_uri is not None
        ref = parse_storage_uri(entry.storage_uri)
        weights = self._weights
        if ref.scheme == "s3":
            return self._bucket_storage(entry, ref.volume)
        location = next(
            (loc for loc in weights.locations if (loc.pvc or loc.name) == ref.volume), None
        )
        if location is None:
            known = ", ".join(loc.pvc or loc.name for loc in weights.locations)
            return f"no storage location mounts claim {ref.volume!r} (known: {known})"
        if ref.path.strip("/") != in_claim(location, hf_cache_path(entry.repo, entry.commit)):
            return f"{entry.storage_uri} is not the snapshot of {entry.repo}@{entry.commit[:12]}"
        records = weights.matching(entry.repo, entry.commit, location.name, statuses=("installed",))
        if not records:
            return (
                f"{entry.repo}@{entry.commit[:12]} is not installed in {location.name}: "
                f"`install {entry.repo}@{entry.commit} --location {location.name}`"
            )
        if all(r.verified_at is None for r in records):
            return f"the weights in {location.name} were never verified"
        return None

    def _bucket_storage(self, entry: CatalogEntry, bucket: str) -> str | None:
        """An ``s3://`` storage_uri: the folder of the pinned commit in a bucket location,
        installed there (its manifest written) and verified."""
        weights = self._weights
        buckets = [loc for loc in weights.locations if loc.is_bucket and loc.bucket == bucket]
        if not buckets:
            known = ", ".join(str(loc.bucket) for loc in weights.locations if loc.is_bucket)
            return f"no storage location is the bucket {bucket!r} (known: {known or 'none'})"
        wanted = str(entry.storage_uri).rstrip("/")
        for location in buckets:
            if weights.bucket_uri(location.name, entry.repo, entry.commit).rstrip("/") != wanted:
                continue
            records = weights.matching(
                entry.repo, entry.commit, location.name, statuses=("installed",)
            )
            if not records:
                return (
                    f"{entry.repo}@{entry.commit[:12]} is not installed in {location.name}: "
                    f"`install {entry.repo}@{entry.commit} --location {location.name}` or "
                    f"`publish {entry.repo}@{entry.commit} --to {location.name}`"
                )
            if all(r.verified_at is None for r in records):
                return f"the weights in {location.name} were never verified"
            return None
        return f"{entry.storage_uri} is not the folder of {entry.repo}@{entry.commit[:12]}"

    def checks(self) -> Checks:
        """Everything: schema, vLLM, the Hub, the fit against the inventory, the weights."""
        return Checks(
            architectures=self._models.architectures.catalog(),
            hub=self._hub_facts,
            fit=self._fit,
            storage=self._storage,
        )

    def validate(self, entry_id: str) -> tuple[EntryView, Validated]:
        """Validate the draft (else the Git entry); a passing draft becomes ``validated``."""
        view = self.view(entry_id)
        entry = view.draft if view.draft is not None else None
        data = entry.to_json() if entry is not None else view.git_data
        result = validate_document(data, self.checks(), f"{view.entry_id}.json")
        if view.draft is None:
            return view, result
        now = self._clock.now()
        with self._db.transaction() as session:
            draft = self._draft(session, view.entry_id, lock=True)
            if draft is not None and draft.state in ("draft", "validated"):
                draft.issues = [i.to_json() for i in result.issues]
                draft.state = "validated" if result.ok else "draft"
                draft.validated_at = now if result.ok else None
                draft.updated_at = now
        return self.view(view.entry_id), result

    def validate_file(self, path: Path) -> Validated:
        if path.suffix != ".json":
            raise UsageError(f"{path}: a catalog entry is a .json file")
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise NotFoundError(f"cannot read {path}: {exc.strerror or exc}") from None
        return validate_text(text, self.checks(), path.name)

    # -- diffs -------------------------------------------------------------------------------
    def diff(self, entry_id: str | None = None) -> list[EntryDiff]:
        """Database drafts against Git (all active drafts, or one entry)."""
        views = [self.view(entry_id)] if entry_id else self.entries()
        out = []
        for view in views:
            if view.draft is None or view.draft_state not in ACTIVE_DRAFT:
                if entry_id:
                    raise NotFoundError(f"{view.entry_id} has no draft: it is as Git has it")
                continue
            lines = diff_lines(view.git, view.draft)
            out.append(EntryDiff(view.entry_id, kind_for(view.draft, view.git), lines))
        return out

    # -- pull requests -----------------------------------------------------------------------
    def _previous(self, session: Session, entry_id: str) -> PullRecord | None:
        pull = session.scalar(
            sa.select(CatalogPull)
            .where(CatalogPull.entry_id == entry_id, CatalogPull.state == "open")
            .order_by(CatalogPull.id.desc())
            .limit(1)
        )
        if pull is None:
            return None
        return PullRecord(
            pull.number,
            pull.branch,
            pull.head_sha,
            pull.tree_sha,
            pull.blob_sha,
            pull.kind,
            pull.url,
        )

    def plan_pr(self, entry_id: str) -> PrPlan:
        """Refuses what must not reach Git: no draft, a draft not validated, no change."""
        from modelarium.core.catalog.pulls import blob_sha

        view = self.view(entry_id)
        draft = view.draft
        if draft is None or view.draft_state not in ACTIVE_DRAFT:
            raise ConflictError(f"{view.entry_id} has no draft to propose (`catalog add` first)")
        if view.draft_state == "draft":
            raise ConflictError(
                f"{view.entry_id} is not validated: `catalog validate {view.entry_id}` first"
            )
        if view.git is not None and view.git.dumps() == draft.dumps():
            raise ConflictError(f"{view.entry_id}: the draft is what Git has already")
        entry = draft
        if draft.status in ("draft", "validated"):
            entry = draft.with_changes(status="approved")  # merging the PR approves it
        if view.pull is not None and view.pull.left_alone and view.pull.state == "open":
            raise ConflictError(
                f"{view.pull.branch} has commits by someone else: Modelarium leaves it alone "
                f"({view.pull.url})"
            )
        with self._db.transaction() as session:
            previous = self._previous(session, view.entry_id)
        kind = kind_for(entry, view.git)
        return PrPlan(
            entry=entry,
            before=view.git,
            kind=kind,
            branch=branch_for(entry.id),
            blob_sha=blob_sha(entry.dumps().encode()),
            previous=previous,
            diff=diff_lines(view.git, entry),
            reason=view.draft_reason or "requested in chat",
        )

    def publish(self, entry_id: str, user: str, *, source: str = "chat") -> PublishResult:
        """Open or update the entry's PR (what the approved change's job runs)."""
        plan = self.plan_pr(entry_id)
        with self._db.transaction() as session:
            draft = self._draft(session, plan.entry.id)
            size = draft.size_bytes if draft is not None else None
        size_before = None
        notes: list[str] = []
        if source == "watch" and plan.entry.storage_uri:
            problem = self._storage(plan.entry)
            if problem:
                notes.append(f"Not ready to merge: {problem}.")
        text = render(
            plan.entry,
            plan.before,
            plan.kind,
            reason=plan.reason,
            requested_by=user if source == "chat" else "catalog_watch",
            hub_url=self.settings.hf_endpoint,
            size_bytes=size,
            size_before=size_before,
            notes=notes,
        )
        result = self.writer().publish(
            plan.entry, text, plan.kind, plan.previous, refresh_text=source == "watch"
        )
        self._record(plan, result, user, source)
        return result

    def _record(self, plan: PrPlan, result: PublishResult, user: str, source: str) -> None:
        now = self._clock.now()
        with self._db.transaction() as session:
            if result.action == "left-alone":
                pull = session.scalar(
                    sa.select(CatalogPull).where(
                        CatalogPull.entry_id == plan.entry.id, CatalogPull.state == "open"
                    )
                )
                if pull is not None:
                    pull.left_alone, pull.updated_at = True, now
                return
            if result.number is None:
                return
            for stale in session.scalars(
                sa.select(CatalogPull).where(
                    CatalogPull.entry_id == plan.entry.id,
                    CatalogPull.state == "open",
                    CatalogPull.number != result.number,
                )
            ):  # superseded: merged or closed since we last looked
                stale.state, stale.closed_at, stale.updated_at = "closed", now, now
            pull = session.scalar(
                sa.select(CatalogPull).where(
                    CatalogPull.repo == self.repo, CatalogPull.number == result.number
                )
            )
            if pull is None:
                pull = CatalogPull(
                    entry_id=plan.entry.id,
                    repo=self.repo,
                    number=result.number,
                    opened_by=user,
                    opened_at=now,
                    source=source,
                )
                session.add(pull)
            pull.url = result.url or ""
            pull.branch = result.branch
            pull.kind = result.kind
            pull.state = "open"
            pull.head_sha = result.head_sha or ""
            pull.tree_sha = result.tree_sha or ""
            pull.blob_sha = result.blob_sha or ""
            pull.left_alone = False
            pull.source = source
            pull.published_at = now
            pull.updated_at = now
            draft = self._draft(session, plan.entry.id, lock=True)
            if draft is not None:
                draft.state = "proposed"
                draft.updated_at = now

    # -- daemon ------------------------------------------------------------------------------
    def sync(self) -> SyncResult:
        return self.syncer().run()

    def updates(self) -> list[EntryView]:
        """Approved entries whose Hub repo moved on (newer commit or other licence)."""
        return [v for v in self.entries() if v.update_available]

    def watch(
        self,
        user: str = "catalog_watch",
        propose: Callable[[str], int | None] | None = None,
    ) -> WatchResult:
        """Renovate-style: look at each approved entry's Hub repo; open or refresh one PR per
        entry that has a newer commit or a new licence, at most ``catalog_prs_per_day``.

        ``propose(entry_id) -> change id`` hands each PR to the change engine (the daemon does,
        so every PR has its change, job and card); without it the PR is published here."""
        result = WatchResult()
        now = self._clock.now()
        with self._db.transaction() as session:
            rows = list(
                session.scalars(
                    sa.select(CatalogEntryRow)
                    .where(CatalogEntryRow.status == "approved")
                    .order_by(CatalogEntryRow.entry_id)
                )
            )
            session.expunge_all()
        budget = self._budget_left(now)
        for row in rows:
            entry = _entry_or_none(row.data)
            if entry is None:
                continue
            result.checked += 1
            try:
                commit, licence = latest_commit(self.settings, entry.repo)
            except ModelariumError as exc:
                result.errors.append(f"{entry.id}: {exc}")
                continue
            with self._db.transaction() as session:
                fresh = session.get(CatalogEntryRow, row.id)
                if fresh is not None:
                    fresh.hub_commit, fresh.hub_license = commit, licence
                    fresh.hub_checked_at = now
            licence_changed = bool(licence) and str(licence).lower() != entry.license.lower()
            if commit == entry.commit and not licence_changed:
                continue
            result.updates.append(entry.id)
            if budget <= 0:
                result.deferred.append(entry.id)
                continue
            try:
                if not self._watch_draft(entry, commit, licence, user):
                    continue
                if propose is not None:
                    change_id = propose(entry.id)
                    if change_id is not None:
                        result.proposed.append((entry.id, change_id))
                else:
                    result.published.append(self.publish(entry.id, user, source="watch"))
                budget -= 1
            except ModelariumError as exc:
                result.errors.append(f"{entry.id}: {exc}")
        return result

    def _budget_left(self, now: datetime) -> int:
        with self._db.transaction() as session:
            used = session.scalar(
                sa.select(sa.func.count(CatalogPull.id)).where(
                    CatalogPull.source == "watch",
                    CatalogPull.published_at > now - timedelta(days=1),
                )
            )
        return self.settings.catalog_prs_per_day - int(used or 0)

    def _watch_draft(
        self, entry: CatalogEntry, commit: str, licence: str | None, user: str
    ) -> bool:
        """Draft the update (validated: the PR is the review); False when there is nothing to
        do or a person's work must not be touched."""
        with self._db.transaction() as session:
            draft = self._draft(session, entry.id)
            if draft is not None and draft.source == "chat" and draft.state in ACTIVE_DRAFT:
                return False  # someone is editing it in chat: their PR carries it
            if (
                draft is not None
                and draft.state == "rejected"
                and (draft.data.get("huggingface") or {}).get("commit") == commit
            ):
                return False  # reviewers closed the PR for this very commit: do not nag
            pull = self._latest_pull(session, entry.id)
            if pull is not None and pull.state == "open" and pull.left_alone:
                return False
        report = self._models.describe(entry.repo, commit)
        storage, size = self._verified_weights(entry.repo, commit)
        if storage is None and entry.storage_uri:
            # where the weights will be once installed: same claim, the new commit's snapshot
            ref = parse_storage_uri(entry.storage_uri)
            storage = f"{ref.scheme}://{ref.volume}/{hf_cache_path(entry.repo, commit)}"
        fresh = draft_from_report(report, entry_id=entry.id, storage_uri=storage)
        updated = fresh.with_changes(
            display_name=entry.display_name,
            license=licence or fresh.license,  # asked just now; the model card may be cached
            owners=entry.owners,
            tags=entry.tags,
            notes=entry.notes,
            status="approved",
        )
        if updated.dumps() == entry.dumps():
            return False
        what = []
        if commit != entry.commit:
            what.append(f"a newer commit ({entry.commit[:7]} → {commit[:7]})")
        if updated.license.lower() != entry.license.lower():
            what.append(f"a licence change ({entry.license} → {updated.license})")
        reason = f"The Hub repo {entry.repo} has " + " and ".join(what or ["changed"]) + "."
        self._save_draft(updated, user, reason=reason, size_bytes=size, source="watch")
        with self._db.transaction() as session:
            draft = self._draft(session, entry.id, lock=True)
            assert draft is not None
            draft.state = "validated"  # the PR is the review; CI and the body say what is missing
        return True


__all__ = ["CatalogService", "EntryDiff", "EntryView", "PrPlan", "PullView", "WatchResult"]
