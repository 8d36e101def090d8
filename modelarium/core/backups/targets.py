"""Where backups live: a directory, holding ``<name>.<ext>`` and its manifest ``<name>.json``.

The manifest is written last and removed first, so a backup without one (a crash, a full disk)
does not exist for ``list`` or ``restore``; ``.partial`` files are what is still being written.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from modelarium.core.backups.files import fsync_dir, write_json_atomic
from modelarium.core.backups.model import MANIFEST_SUFFIX, BackupError, BackupInfo

PARTIAL_SUFFIX = ".partial"


class DirectoryTarget:
    def __init__(self, root: Path, label: str | None = None) -> None:
        self.root = root
        self.label = label or str(root)

    def prepare(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BackupError(
                f"cannot create the backup folder {self.root}: {exc.strerror}"
            ) from None
        if not os.access(self.root, os.W_OK):
            raise BackupError(f"the backup folder {self.root} is not writable")

    def partial(self, name: str, suffix: str) -> Path:
        return self.root / f".{name}{suffix}{PARTIAL_SUFFIX}"

    def data_path(self, info: BackupInfo) -> Path:
        return self.root / info.file

    def manifest_path(self, name: str) -> Path:
        return self.root / f"{name}{MANIFEST_SUFFIX}"

    def commit(self, info: BackupInfo, partial: Path) -> None:
        """Move the verified file into place, then write its manifest: the commit point."""
        final = self.data_path(info)
        os.replace(partial, final)
        fsync_dir(self.root)
        try:
            write_json_atomic(self.manifest_path(info.name), info.to_json())
        except BaseException:
            final.unlink(missing_ok=True)
            raise

    def infos(self) -> list[BackupInfo]:
        if not self.root.is_dir():
            return []
        found = []
        for path in sorted(self.root.glob(f"*{MANIFEST_SUFFIX}")):
            if path.name.startswith("."):
                continue
            try:
                info = BackupInfo.from_json(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, json.JSONDecodeError, BackupError):
                continue  # not one of ours, or unreadable: never listed, never pruned
            if (self.root / info.file).is_file():
                found.append(info)
        return found

    def names(self) -> set[str]:
        taken = {i.name for i in self.infos()}
        if self.root.is_dir():
            taken |= {p.name.split(".")[1] for p in self.root.glob(f".*{PARTIAL_SUFFIX}")}
        return taken

    def delete(self, info: BackupInfo) -> None:
        self.manifest_path(info.name).unlink(missing_ok=True)
        fsync_dir(self.root)
        self.data_path(info).unlink(missing_ok=True)

    def remove_stale_partials(self, older_than: float) -> list[str]:
        """``.partial`` files left by a killed backup (not one still being written)."""
        if not self.root.is_dir():
            return []
        removed = []
        cutoff = time.time() - older_than
        for path in self.root.glob(f".*{PARTIAL_SUFFIX}"):
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed.append(path.name)
            except FileNotFoundError:
                continue
        return removed
