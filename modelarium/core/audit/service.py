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
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
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
        if session is not None:
            return self._append(session, actor, action, target, params, result, detail)
        with self._db.transaction() as own:
            return self._append(own, actor, action, target, params, result, detail)

    def _append(
        self,
        session: Session,
        actor: str,
        action: str,
        target: str | None,
        params: dict[str, Any] | None,
        result: str,
        detail: str | None,
    ) -> int:
        head = session.execute(
            sa.select(AuditHead).where(AuditHead.id == 1).with_for_update()
        ).scalar_one_or_none()
        if head is None:
            head = AuditHead(id=1, last_id=0, last_hash=GENESIS)
            session.add(head)
            session.flush()
        # Ids come from the head, not the sequence, so the chain has no gaps by construction.
        entry_id = head.last_id + 1
        clean_params = redact(params or {})
        fields = {
            "id": entry_id,
            "ts": self._clock.now(),
            "actor": actor,
            "action": action[:128],
            "target": target[:255] if target else None,
            "params": json.loads(json.dumps(clean_params, default=str)),
            "result": result,
            "detail": redact(detail) if detail else None,
            "prev_hash": head.last_hash,
        }
        digest = hashlib.sha256(_canonical(fields)).hexdigest()
        signature = hmac.new(self._key, digest.encode(), hashlib.sha256).hexdigest()
        session.add(AuditEntry(**fields, hash=digest, signature=signature))
        head.last_id = entry_id
        head.last_hash = digest
        session.flush()
        return entry_id

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
        previous = GENESIS
        expected_id = 1
        checked = 0
        with self._db.transaction() as session:
            for entry in session.scalars(
                sa.select(AuditEntry).order_by(AuditEntry.id).execution_options(yield_per=1000)
            ):
                if entry.id != expected_id:
                    return VerifyReport(
                        False, checked, f"entry {expected_id} is missing", expected_id
                    )
                if entry.prev_hash != previous:
                    return VerifyReport(
                        False,
                        checked,
                        f"entry {entry.id} does not follow entry {entry.id - 1}",
                        entry.id,
                    )
                digest = hashlib.sha256(_canonical(entry)).hexdigest()
                if digest != entry.hash:
                    return VerifyReport(False, checked, f"entry {entry.id} was modified", entry.id)
                signature = hmac.new(self._key, digest.encode(), hashlib.sha256).hexdigest()
                if not hmac.compare_digest(signature, entry.signature):
                    return VerifyReport(
                        False, checked, f"entry {entry.id} has a bad signature", entry.id
                    )
                previous = entry.hash
                expected_id += 1
                checked += 1
            head = session.get(AuditHead, 1)
        if head is not None and (head.last_id != checked or head.last_hash != previous):
            return VerifyReport(
                False,
                checked,
                f"the log ends at {checked} but entries up to {head.last_id} were written",
                checked + 1,
            )
        return VerifyReport(True, checked)

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
