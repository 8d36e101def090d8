"""What is known about a backup: the manifest written beside it, and how backups are named."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from modelarium.core.errors import ModelariumError

MANIFEST_SUFFIX = ".json"
FORMATS = {"sqlite": ("sqlite3", ".sqlite3"), "postgresql": ("pg_dump-custom", ".pgdump")}
KINDS = ("manual", "scheduled")


class BackupError(ModelariumError):
    """A backup or restore could not be done; the message is the one line the user sees."""


@dataclass(frozen=True)
class BackupInfo:
    """The manifest of one backup (``<name>.json`` beside ``<name>.sqlite3|.pgdump``)."""

    name: str
    file: str
    created_at: datetime
    kind: str
    dialect: str
    format: str
    size: int
    sha256: str
    revisions: list[str]
    audit_entries: int
    created_by: str
    modelarium_version: str
    pg_schema: str | None = None
    duration: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["created_at"] = self.created_at.isoformat()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BackupInfo:
        try:
            values = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
            values["created_at"] = datetime.fromisoformat(data["created_at"]).astimezone(UTC)
            return cls(**values)
        except (KeyError, TypeError, ValueError) as exc:
            raise BackupError(f"unreadable backup manifest ({type(exc).__name__}: {exc})") from None


def backup_name(now: datetime, taken: set[str]) -> str:
    """``modelarium-20261206-061200``, with ``-2``, ``-3``... when that second is taken."""
    base = f"modelarium-{now.astimezone(UTC):%Y%m%d-%H%M%S}"
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}-{n}"
    return name
