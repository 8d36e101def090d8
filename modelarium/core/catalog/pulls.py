"""Opening and updating one pull request per catalog entry, through the Git data API.

Each entry has a stable branch, ``modelarium/catalog/<id>``. Every change is ONE commit made
from a blob, a tree and a commit object, then published by moving the branch ref; until that ref
moves, nothing anyone can see has changed, so a failure half-way leaves at most unreferenced
objects behind (nothing half-written). The ref moves without ``force``: GitHub refuses anything
but a fast-forward, so if a person pushed to the branch meanwhile, our update is refused and the
branch is left alone (the result says so).

Costs, counted against the fake GitHub: opening a new PR with its labels is 8 calls (repository:
push rights and default branch; base branch; blob; tree; commit; ref; pull request; labels);
updating an open one is 5 (blob, tree, commit, ref, pull request; 6 when the kind changes and
the labels follow); an unchanged entry is 0.
Re-running for the same entry updates the same PR; a lost record is recovered from the branch
itself (its head commit carries the ``Modelarium-Catalog-Entry`` trailer), never by opening a
second PR.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from modelarium.core.catalog.entry import CatalogEntry
from modelarium.core.catalog.template import KINDS, TRAILER, PullText
from modelarium.core.clients.github import (
    GitHubClient,
    GitHubConflictError,
    GitHubPermissionError,
    PullInfo,
)

BRANCH_PREFIX = "modelarium/catalog/"
T = TypeVar("T")


def branch_for(entry_id: str) -> str:
    return f"{BRANCH_PREFIX}{entry_id}"


def blob_sha(content: bytes) -> str:
    """The git blob id of ``content``: known before asking GitHub, so an unchanged entry costs
    nothing."""
    return hashlib.sha1(f"blob {len(content)}\0".encode() + content).hexdigest()


@dataclass(frozen=True)
class PullRecord:
    """What Modelarium remembers of the PR it keeps for an entry."""

    number: int
    branch: str
    head_sha: str
    tree_sha: str
    blob_sha: str
    kind: str
    url: str = ""


@dataclass(frozen=True)
class PublishResult:
    action: str  # "opened", "updated", "unchanged" or "left-alone"
    branch: str
    kind: str
    number: int | None = None
    url: str | None = None
    head_sha: str | None = None
    tree_sha: str | None = None
    blob_sha: str | None = None
    note: str = ""
    calls: int = 0

    @property
    def record(self) -> PullRecord | None:
        if self.number is None or not (self.head_sha and self.tree_sha and self.blob_sha):
            return None
        return PullRecord(
            self.number,
            self.branch,
            self.head_sha,
            self.tree_sha,
            self.blob_sha,
            self.kind,
            self.url or "",
        )

    def summary(self) -> str:
        link = f"#{self.number} {self.url}" if self.number else self.branch
        text = {
            "opened": f"opened pull request {link}",
            "updated": f"updated pull request {link} with one commit",
            "unchanged": f"pull request {link} already holds this entry",
            "left-alone": f"left {self.branch} alone",
        }[self.action]
        return f"{text} ({self.note})" if self.note else text


class PullRequestWriter:
    """Publishes one entry change as one commit on its branch and one PR (plain service: the
    caller keeps the :class:`PullRecord` between runs)."""

    def __init__(
        self,
        client: GitHubClient,
        repo: str,
        folder: str,
        base_branch: str | None = None,
        author: tuple[str, str] | None = None,
    ) -> None:
        self._client = client
        self.repo = repo
        self.folder = folder
        self.base_branch = base_branch
        self.author = author
        self._calls = 0

    def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        self._calls += 1
        return fn(*args, **kwargs)

    def path(self, entry_id: str) -> str:
        return f"{self.folder}{entry_id}.json"

    def publish(
        self,
        entry: CatalogEntry,
        text: PullText,
        kind: str,
        previous: PullRecord | None = None,
        *,
        refresh_text: bool = False,
    ) -> PublishResult:
        """``refresh_text``: when the entry is unchanged, still rewrite the PR's title and body
        (one call) because what the body reports changed (e.g. the weights got installed)."""
        self._calls = 0
        content = entry.dumps().encode()
        local_sha = blob_sha(content)
        branch = branch_for(entry.id)
        if previous is not None and previous.branch == branch:
            if previous.blob_sha == local_sha:
                if refresh_text:
                    self._call(
                        self._client.update_pull,
                        self.repo,
                        previous.number,
                        title=text.title,
                        body=text.body,
                    )
                    return self._done("unchanged", previous, kind, note="description refreshed")
                return self._done("unchanged", previous, kind, note="")
            updated = self._update(entry, content, text, kind, previous)
            if updated is not None:
                return updated
        return self._open(entry, content, text, kind, branch)

    # -- paths -------------------------------------------------------------------------------
    def _done(self, action: str, record: PullRecord, kind: str, note: str) -> PublishResult:
        return PublishResult(
            action,
            record.branch,
            kind,
            record.number,
            record.url,
            record.head_sha,
            record.tree_sha,
            record.blob_sha,
            note,
            self._calls,
        )

    def _commit(
        self, entry: CatalogEntry, content: bytes, message: str, base_tree: str, parent: str
    ) -> tuple[str, str, str]:
        client = self._client
        blob = self._call(client.create_blob, self.repo, content)
        tree = self._call(client.create_tree, self.repo, base_tree, {self.path(entry.id): blob})
        commit = self._call(client.create_commit, self.repo, message, tree, [parent], self.author)
        return blob, tree, commit

    def _update(
        self,
        entry: CatalogEntry,
        content: bytes,
        text: PullText,
        kind: str,
        previous: PullRecord,
    ) -> PublishResult | None:
        """Stack one commit on our last one; None when the branch is gone (open afresh)."""
        client = self._client
        blob, tree, commit = self._commit(
            entry, content, text.message, previous.tree_sha, previous.head_sha
        )
        try:
            self._call(client.update_ref, self.repo, previous.branch, commit)
        except GitHubConflictError as exc:
            if exc.reason == "ref-missing":
                return None  # merged or closed with its branch deleted
            if exc.reason == "not-fast-forward":
                return self._done(
                    "left-alone",
                    previous,
                    kind,
                    "someone else pushed to the branch; Modelarium does not overwrite their work",
                )
            raise
        pull = self._call(
            client.update_pull, self.repo, previous.number, title=text.title, body=text.body
        )
        note = ""
        if pull.status != "open":
            # Merged or closed since we last looked, branch kept: the new commit is on the branch,
            # so a fresh PR from it shows exactly this change.
            new = self._create_pull(previous.branch, text, kind)
            note = f"#{pull.number} was {pull.status}; opened #{new.number} for this change"
            pull = new
        elif kind != previous.kind:
            keep = [label for label in pull.labels if label not in KINDS and label != "catalog"]
            self._call(client.set_labels, self.repo, pull.number, ["catalog", kind, *keep])
        return PublishResult(
            "updated" if not note else "opened",
            previous.branch,
            kind,
            pull.number,
            pull.html_url,
            commit,
            tree,
            blob,
            note,
            self._calls,
        )

    def _create_pull(self, branch: str, text: PullText, kind: str) -> PullInfo:
        base = self._base()
        pull = self._call(
            self._client.create_pull,
            self.repo,
            head=branch,
            base=base,
            title=text.title,
            body=text.body,
        )
        self._call(self._client.add_labels, self.repo, pull.number, ["catalog", kind])
        return pull

    def _base(self) -> str:
        if self.base_branch is None:
            info = self._call(self._client.repo, self.repo).value
            assert info is not None
            self.base_branch = info.default_branch
        return self.base_branch

    def _open(
        self, entry: CatalogEntry, content: bytes, text: PullText, kind: str, branch: str
    ) -> PublishResult:
        client = self._client
        info = self._call(client.repo, self.repo).value
        assert info is not None
        if info.can_push is False:
            raise GitHubPermissionError(
                f"GitHub token cannot push to {self.repo}: give it write access (contents and "
                "pull requests) to open catalog pull requests"
            )
        base = self.base_branch or info.default_branch
        self.base_branch = base
        head = self._call(client.branch, self.repo, base)
        blob, tree, commit = self._commit(entry, content, text.message, head.tree_sha, head.sha)
        try:
            self._call(client.create_ref, self.repo, branch, commit)
        except GitHubConflictError as exc:
            if exc.reason != "ref-exists":
                raise
            return self._adopt(entry, text, kind, branch, blob, tree)
        pull = self._create_pull(branch, text, kind)
        return PublishResult(
            "opened", branch, kind, pull.number, pull.html_url, commit, tree, blob, "", self._calls
        )

    def _adopt(
        self, entry: CatalogEntry, text: PullText, kind: str, branch: str, blob: str, tree: str
    ) -> PublishResult:
        """The branch exists but we hold no record of it: continue it if its head is ours."""
        client = self._client
        current = self._call(client.ref, self.repo, branch).value
        assert current is not None
        head = self._call(client.commit, self.repo, current)
        if f"{TRAILER}: {entry.id}" not in head.message:
            return PublishResult(
                "left-alone",
                branch,
                kind,
                note=f"{branch} already exists with commits Modelarium did not write",
                calls=self._calls,
            )
        commit = self._call(
            client.create_commit, self.repo, text.message, tree, [current], self.author
        )
        try:
            self._call(client.update_ref, self.repo, branch, commit)
        except GitHubConflictError as exc:
            if exc.reason != "not-fast-forward":
                raise
            return PublishResult(
                "left-alone",
                branch,
                kind,
                note="someone else pushed to the branch; Modelarium does not overwrite their work",
                calls=self._calls,
            )
        found = self._call(client.pulls, self.repo, head=branch, state="open").value or []
        if found:
            pull = self._call(
                client.update_pull, self.repo, found[0].number, title=text.title, body=text.body
            )
            action, note = "updated", "found the branch and its open pull request"
        else:
            pull = self._create_pull(branch, text, kind)
            action, note = "opened", "continued the existing branch"
        return PublishResult(
            action, branch, kind, pull.number, pull.html_url, commit, tree, blob, note, self._calls
        )
