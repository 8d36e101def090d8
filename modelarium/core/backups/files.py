"""Writing files so that a crash or a full disk leaves either the old state or the new one.

Everything a backup writes goes to a temporary name first, is flushed to the disk (``fsync``),
and only then renamed into place; the directory is synced so the rename itself survives a crash.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
from pathlib import Path
from typing import Any

FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
CHUNK = 4 * 1024 * 1024


def is_full(exc: BaseException) -> bool:
    """A write that failed because the target has no room (disk, quota or file size limit)."""
    if isinstance(exc, OSError) and exc.errno in FULL_ERRNOS:
        return True
    # sqlite3 reports SQLITE_FULL (13) as an OperationalError, not an OSError.
    return getattr(exc, "sqlite_errorcode", None) == 13


def free_bytes(directory: Path) -> int:
    stat = os.statvfs(directory)
    return stat.f_bavail * stat.f_frsize


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sha256_file(path: Path) -> tuple[str, int]:
    """(hex digest, size) of a file, read in large blocks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as ``path`` (temp name, fsync, rename, directory fsync)."""
    tmp = path.with_name(f".{path.name}.partial")
    try:
        with tmp.open("w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
