"""Append-only audit log, hash-chained and HMAC-signed so tampering is detectable.

Each entry's hash covers its content and the previous entry's hash; the signature is an HMAC of
that hash under a key the database never sees. Editing, deleting or reordering rows breaks the
chain; recomputing the hashes still fails the signatures without the key.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from modelarium.core.clock import Clock
from modelarium.core.db.models.audit import AuditEntry, AuditHead
from modelarium.core.db.uow import Database
from modelarium.core.logging import redact

GENESIS = "0" * 64


@dataclass(frozen=True)
class AuditRecord:
    id: int
    ts: datetime
    actor: str
    action: str
    target: str | None
    params: dict[str, Any]
    result: str
    detail: str | None


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    checked: int
    problem: str | None = None
    bad_id: int | None = None
    last_hash: str = GENESIS


def _canonical(entry: AuditEntry | dict[str, Any]) -> bytes:
    get = entry.get if isinstance(entry, dict) else lambda k: getattr(entry, k)
    body = {
        "id": get("id"),
        "ts": get("ts").isoformat(),
        "actor": get("actor"),
        "action": get("action"),
        "target": get("target"),
        "params": get("params"),
        "result": get("result"),
        "detail": get("detail"),
        "prev_hash": get("prev_hash"),
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()


class AuditService:
    def __init__(self, db: Database, clock: Clock, key: bytes) -> None:
        self._db = db
        self._clock = clock
        self._key = key

    def record(
        self,
        actor: str,
        action: str,
        *,
        target: str | None = None,
        params: dict[str, Any] | None = None,
        result: str = "ok",
        detail: str | None = None,
        session: Session | None = None,
    ) -> int:
        """Append one entry; pass ``session`` to make it part of the caller's transaction."""
        # Redaction and serialisation happen before any lock is taken: on hostile input they
        # are the slow part, and every audited write in the system waits for the head row.
        content = {
            "actor": actor[:64],
            "action": action[:128],
            "target": target[:255] if target else None,
            "params": json.loads(json.dumps(redact(params or {}), default=str)),
            "result": result,
            "detail": redact(detail) if detail else None,
        }
        # PostgreSQL stores no NUL character in text or JSON: a typed NUL is kept visibly.
        content = _without_nul(content)
        if session is not None:
            return self._append(session, content)
        try:
            with self._db.transaction() as own:
                return self._append(own, content)
        except (IntegrityError, OperationalError):
            # A conflict with a concurrent writer (or a dropped connection): the transaction
            # was rolled back as a whole, so one more attempt is safe.
            with self._db.transaction() as own:
                return self._append(own, content)

    def _append(self, session: Session, content: dict[str, Any]) -> int:
        head = self._lock_head(session)
        # Ids come from the head, not the sequence, so the chain has no gaps by construction.
        entry_id = head.last_id + 1
        fields = {
            "id": entry_id,
            "ts": self._clock.now(),
            **content,
            "prev_hash": head.last_hash,
        }
        digest = hashlib.sha256(_canonical(fields)).hexdigest()
        signature = hmac.new(self._key, digest.encode(), hashlib.sha256).hexdigest()
        session.add(AuditEntry(**fields, hash=digest, signature=signature))
        head.last_id = entry_id
        head.last_hash = digest
        session.flush()
        return entry_id

    @staticmethod
    def _lock_head(session: Session) -> AuditHead:
        """The head row, locked. Migration 0013 creates it; should it be missing anyway, it is
        created without a race (``ON CONFLICT DO NOTHING``, then locked like any writer)."""
        select = sa.select(AuditHead).where(AuditHead.id == 1).with_for_update()
        head = session.execute(select).scalar_one_or_none()
        if head is not None:
            return head
        dialect = session.get_bind().dialect.name
        insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(AuditHead)
        session.execute(
            insert.values(id=1, last_id=0, last_hash=GENESIS).on_conflict_do_nothing(
                index_elements=["id"]
            )
        )
        return session.execute(select).scalar_one()

    def query(
        self,
        *,
        since: datetime | None = None,
        user: str | None = None,
        limit: int = 50,
        action: str | None = None,
    ) -> list[AuditRecord]:
        stmt = sa.select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
        if since is not None:
            stmt = stmt.where(AuditEntry.ts >= since)
        if user is not None:
            stmt = stmt.where(AuditEntry.actor == user)
        if action is not None:
            stmt = stmt.where(AuditEntry.action.startswith(action))
        with self._db.transaction() as session:
            return [_record(e) for e in session.scalars(stmt)]

    def iter_all(self, since: datetime | None = None) -> Iterator[AuditRecord]:
        with self._db.transaction() as session:
            stmt = sa.select(AuditEntry).order_by(AuditEntry.id)
            if since is not None:
                stmt = stmt.where(AuditEntry.ts >= since)
            for entry in session.scalars(stmt.execution_options(yield_per=500)):
                yield _record(entry)

    def verify(self) -> VerifyReport:
        with self._db.transaction() as session:
            entries = session.scalars(
                sa.select(AuditEntry).order_by(AuditEntry.id).execution_options(yield_per=1000)
            )
            report = verify_chain(entries, None, self._key, head_checked=False)
            if not report.ok:
                return report
            head = session.get(AuditHead, 1)
        return check_head(report, head.last_id if head else None, head.last_hash if head else None)

    def export(self, fmt: str, since: datetime | None = None) -> bytes:
        records = list(self.iter_all(since))
        if fmt == "json":
            rows = [_as_row(r) for r in records]
            return json.dumps(rows, indent=2, default=str).encode()
        buffer = io.StringIO()
        writer = csv.DictWriter(
            buffer,
            fieldnames=["id", "ts", "actor", "action", "target", "result", "detail", "params"],
        )
        writer.writeheader()
        for record in records:
            row = _as_row(record)
            row["params"] = json.dumps(row["params"], sort_keys=True, default=str)
            writer.writerow(row)
        return buffer.getvalue().encode()


def verify_chain(
    entries: Iterable[Any], head: tuple[int, str] | None, key: bytes, *, head_checked: bool = True
) -> VerifyReport:
    """Check a log read in id order: no gaps, each entry follows the one before, hashes and
    signatures under ``key``, and (with ``head_checked``) that it ends where ``head`` says.

    Entries are ORM rows or anything with the same attributes (or keys): a backup's rows are
    checked by the same code as the live log.
    """
    previous = GENESIS
    expected_id = 1
    checked = 0
    for entry in entries:
        get = entry.get if isinstance(entry, dict) else lambda k, e=entry: getattr(e, k)
        entry_id = get("id")
        if entry_id != expected_id:
            return VerifyReport(False, checked, f"entry {expected_id} is missing", expected_id)
        if get("prev_hash") != previous:
            return VerifyReport(
                False, checked, f"entry {entry_id} does not follow entry {entry_id - 1}", entry_id
            )
        digest = hashlib.sha256(_canonical(entry)).hexdigest()
        if digest != get("hash"):
            return VerifyReport(False, checked, f"entry {entry_id} was modified", entry_id)
        signature = hmac.new(key, digest.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(signature, get("signature")):
            return VerifyReport(False, checked, f"entry {entry_id} has a bad signature", entry_id)
        previous = get("hash")
        expected_id += 1
        checked += 1
    report = VerifyReport(True, checked, last_hash=previous)
    if not head_checked:
        return report
    return check_head(report, head[0] if head else None, head[1] if head else None)


def check_head(report: VerifyReport, last_id: int | None, last_hash: str | None) -> VerifyReport:
    """A verified chain must end where the head row says the last append ended."""
    if last_id is not None and (last_id != report.checked or last_hash != report.last_hash):
        return VerifyReport(
            False,
            report.checked,
            f"the log ends at {report.checked} but entries up to {last_id} were written",
            report.checked + 1,
        )
    return report


def _record(entry: AuditEntry) -> AuditRecord:
    return AuditRecord(
        entry.id,
        entry.ts,
        entry.actor,
        entry.action,
        entry.target,
        entry.params,
        entry.result,
        entry.detail,
    )


def _as_row(record: AuditRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "ts": record.ts.isoformat(),
        "actor": record.actor,
        "action": record.action,
        "target": record.target,
        "result": record.result,
        "detail": record.detail,
        "params": record.params,
    }


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\\x00")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value
