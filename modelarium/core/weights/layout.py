"""The Hugging Face cache layout on a storage location, written the way huggingface_hub does.

``<root>/models--org--name/{blobs,snapshots,refs,trees}``: blobs are named by their hub ETag
(sha256 for LFS files, the git blob sha1 otherwise), snapshots hold relative symlinks into
``blobs``, ``refs/<branch>`` holds a commit, and ``trees/<commit>.json`` lists the commit's files
so ``snapshot_download(local_files_only=True)`` trusts the snapshot is complete. vLLM,
transformers and ``scan_cache_dir`` therefore read a location as an ordinary HF cache.

Everything here is idempotent: each step can be re-run after a crash at any point.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ID = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9._-]{0,95}/)?[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
COMMIT = re.compile(r"^[0-9a-f]{40}$")
INCOMPLETE_SUFFIX = ".incomplete"


@dataclass(frozen=True)
class RepoFile:
    """One file of a commit as the hub lists it: what the install must write and verify."""

    path: str
    size: int
    blob_id: str
    """Git blob sha1: the ETag (and blob name) of a regular file."""
    sha256: str | None = None
    """LFS files only: the content sha256, which is also their ETag and blob name."""

    @property
    def etag(self) -> str:
        return self.sha256 or self.blob_id

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"path": self.path, "size": self.size, "blob_id": self.blob_id}
        if self.sha256:
            data["sha256"] = self.sha256
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RepoFile:
        return cls(data["path"], int(data["size"]), data["blob_id"], data.get("sha256"))


def check_repo_file(file: RepoFile) -> None:
    """Refuse manifest entries that could write outside the snapshot or name a bad blob."""
    parts = file.path.split("/")
    if (
        not file.path
        or file.path.startswith("/")
        or "\\" in file.path
        or any(part in ("", ".", "..") for part in parts)
    ):
        raise ValueError(f"unsafe file path in the hub listing: {file.path!r}")
    if not re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", file.etag):
        raise ValueError(f"unexpected blob id for {file.path}: {file.etag!r}")
    if file.size < 0:
        raise ValueError(f"negative size for {file.path}")


def repo_folder_name(repo_id: str) -> str:
    return "models--" + repo_id.replace("/", "--")


def repo_id_from_folder(name: str) -> str | None:
    if not name.startswith("models--"):
        return None
    return name.removeprefix("models--").replace("--", "/")


@dataclass(frozen=True)
class RepoLayout:
    root: Path
    repo_id: str

    @property
    def dir(self) -> Path:
        return self.root / repo_folder_name(self.repo_id)

    @property
    def blobs(self) -> Path:
        return self.dir / "blobs"

    @property
    def snapshots(self) -> Path:
        return self.dir / "snapshots"

    @property
    def refs(self) -> Path:
        return self.dir / "refs"

    def blob(self, etag: str) -> Path:
        return self.blobs / etag

    def incomplete(self, etag: str, tag: str) -> Path:
        """A partial download, named like huggingface_hub's ``<etag>.<8hex>.incomplete``; the
        tag is the install's, so a resumed attempt (any process) finds it again."""
        return self.blobs / f"{etag}.{tag}{INCOMPLETE_SUFFIX}"

    def snapshot(self, commit: str) -> Path:
        return self.snapshots / commit

    def tree_file(self, commit: str) -> Path:
        return self.dir / "trees" / f"{commit}.json"


def install_tag(record_id: int) -> str:
    return f"{record_id:08x}"


# -- writing ---------------------------------------------------------------------------------


def atomic_write(path: Path, data: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def write_tree(layout: RepoLayout, commit: str, files: Iterable[RepoFile]) -> None:
    """``trees/<commit>.json`` in huggingface_hub's format (lets offline snapshot_download in)."""
    entries: dict[str, Any] = {}
    for file in sorted(files, key=lambda f: f.path):
        entry: dict[str, Any] = {"size": file.size, "blob_id": file.blob_id}
        if file.sha256:
            entry["lfs_sha256"] = file.sha256
            entry["lfs_size"] = file.size
        entries[file.path] = entry
    atomic_write(
        layout.tree_file(commit), json.dumps({"format_version": 1, "files": entries}, indent=1)
    )


def _link(link: Path, blob: Path) -> None:
    """Point ``link`` at ``blob`` (relative, as huggingface_hub does), replacing atomically."""
    link.parent.mkdir(parents=True, exist_ok=True)
    target = os.path.relpath(blob, link.parent)
    try:
        if os.readlink(link) == target:
            return
    except OSError:
        pass
    tmp = link.with_name(f".{link.name}.{uuid.uuid4().hex[:8]}.lnk")
    os.symlink(target, tmp)
    os.replace(tmp, link)


def link_snapshot(layout: RepoLayout, commit: str, files: Iterable[RepoFile]) -> None:
    """Make ``snapshots/<commit>`` complete: a new snapshot appears with one rename, so no reader
    ever sees half of it; an existing one (a crash after the rename, a reinstall) is repaired."""
    files = list(files)
    final = layout.snapshot(commit)
    if not final.is_dir():
        # Built at the same depth as snapshots/<commit>, so the relative links stay right.
        scratch = layout.dir / f".staging-{uuid.uuid4().hex[:8]}"
        staging = scratch / commit
        try:
            # A fresh folder: plain symlink calls, each directory made once (200 small files
            # made this a visible part of an install).
            made: set[Path] = set()
            for file in files:
                link = staging / file.path
                if link.parent not in made:
                    link.parent.mkdir(parents=True, exist_ok=True)
                    made.add(link.parent)
                os.symlink(os.path.relpath(layout.blob(file.etag), link.parent), link)
            staging.mkdir(parents=True, exist_ok=True)  # an empty repo still gets its folder
            layout.snapshots.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(staging, final)
                return
            except OSError:
                if not final.is_dir():
                    raise
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    for file in files:
        _link(final / file.path, layout.blob(file.etag))


def write_ref(layout: RepoLayout, ref: str, commit: str) -> None:
    if COMMIT.match(ref) or not ref or ".." in ref.split("/") or ref.startswith("/"):
        return
    atomic_write(layout.refs / ref, commit)


# -- reading ---------------------------------------------------------------------------------


def snapshot_blobs(layout: RepoLayout, commit: str | None = None) -> set[str]:
    """Blob names the snapshots (or one of them) point at."""
    found: set[str] = set()
    base = layout.snapshot(commit) if commit else layout.snapshots
    if not base.is_dir():
        return found
    for dirpath, _dirs, names in os.walk(base):
        for name in names:
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                found.add(os.path.basename(os.readlink(path)))
    return found


def refs_to(layout: RepoLayout, commit: str) -> list[Path]:
    if not layout.refs.is_dir():
        return []
    out = []
    for path in layout.refs.rglob("*"):
        if path.is_file():
            try:
                if path.read_text().strip() == commit:
                    out.append(path)
            except OSError:
                continue
    return out


def missing_files(layout: RepoLayout, commit: str, files: Iterable[RepoFile]) -> list[str]:
    """Files of an installed revision whose link or blob is gone or has the wrong size."""
    snapshot = layout.snapshot(commit)
    missing = []
    for file in files:
        try:
            if (snapshot / file.path).stat().st_size != file.size:
                missing.append(file.path)
        except OSError:
            missing.append(file.path)
    return missing


def tree_size(path: Path) -> int:
    """Apparent bytes under ``path`` (symlinks not followed)."""
    total = 0
    stack = [path]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(Path(entry.path))
                        elif entry.is_file(follow_symlinks=False):
                            total += entry.stat(follow_symlinks=False).st_size
                    except OSError:
                        continue
        except OSError:
            continue
    return total


@dataclass
class DiskRepo:
    """What a location holds for one repo, read from disk alone."""

    repo_id: str
    path: Path
    revisions: dict[str, int] = field(default_factory=dict)
    """commit -> bytes of the blobs its snapshot points at."""
    incomplete: dict[str, int] = field(default_factory=dict)
    """partial download file name -> bytes."""
    loose_blobs: dict[str, int] = field(default_factory=dict)
    """blobs no snapshot points at -> bytes."""


def scan_root(root: Path) -> Iterator[DiskRepo]:
    if not root.is_dir():
        return
    for entry in sorted(root.iterdir()):
        repo_id = repo_id_from_folder(entry.name)
        if repo_id is None or not entry.is_dir():
            continue
        layout = RepoLayout(root, repo_id)
        repo = DiskRepo(repo_id, entry)
        sizes: dict[str, int] = {}
        if layout.blobs.is_dir():
            for blob in layout.blobs.iterdir():
                try:
                    size = blob.stat().st_size
                except OSError:
                    continue
                if blob.name.endswith(INCOMPLETE_SUFFIX):
                    repo.incomplete[blob.name] = size
                else:
                    sizes[blob.name] = size
        referenced: set[str] = set()
        if layout.snapshots.is_dir():
            for snap in layout.snapshots.iterdir():
                if snap.is_dir():
                    blobs = snapshot_blobs(layout, snap.name)
                    referenced |= blobs
                    repo.revisions[snap.name] = sum(sizes.get(b, 0) for b in blobs)
        repo.loose_blobs = {b: s for b, s in sizes.items() if b not in referenced}
        yield repo


# -- removing --------------------------------------------------------------------------------


def remove_incomplete(layout: RepoLayout, tag: str) -> int:
    """Delete one install's partial downloads; returns bytes freed."""
    freed = 0
    if layout.blobs.is_dir():
        for path in layout.blobs.glob(f"*.{tag}{INCOMPLETE_SUFFIX}"):
            try:
                freed += path.stat().st_size
                path.unlink()
            except OSError:
                continue
    return freed


def remove_blobs(layout: RepoLayout, etags: Iterable[str], keep: set[str]) -> int:
    """Delete blobs that no snapshot and nothing in ``keep`` refers to; returns bytes freed."""
    referenced = snapshot_blobs(layout) | keep
    freed = 0
    for etag in set(etags) - referenced:
        path = layout.blob(etag)
        try:
            freed += path.stat().st_size
            path.unlink()
        except OSError:
            continue
    return freed


def remove_revision(
    layout: RepoLayout, commit: str, keep: set[str], manifest: Iterable[str] = ()
) -> int:
    """Remove a revision in the order that never leaves a dangling ref or link visible:
    refs, then the snapshot, then blobs only it used (its links, plus ``manifest`` in case a
    crash already took the snapshot). Returns bytes freed."""
    for ref in refs_to(layout, commit):
        ref.unlink(missing_ok=True)
    snapshot = layout.snapshot(commit)
    etags = snapshot_blobs(layout, commit) | set(manifest)
    if snapshot.exists():
        # Rename first so the snapshot disappears in one step, then delete at leisure.
        doomed = layout.dir / f".removing-{commit}.{uuid.uuid4().hex[:8]}"
        os.rename(snapshot, doomed)
        shutil.rmtree(doomed, ignore_errors=True)
    layout.tree_file(commit).unlink(missing_ok=True)
    freed = remove_blobs(layout, etags, keep)
    prune_repo(layout, keep)
    return freed


def prune_repo(layout: RepoLayout, keep: set[str]) -> None:
    """Drop a repo folder that holds no snapshot, no partial and nothing kept."""
    if not layout.dir.is_dir():
        return
    if layout.snapshots.is_dir() and any(layout.snapshots.iterdir()):
        return
    if layout.blobs.is_dir():
        names = {p.name for p in layout.blobs.iterdir()}
        if names & keep or any(n.endswith(INCOMPLETE_SUFFIX) for n in names):
            return
    shutil.rmtree(layout.dir, ignore_errors=True)
