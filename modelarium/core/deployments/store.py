"""The deployments table and its history: written by the change kinds and the reconcile."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from modelarium.core.clock import Clock
from modelarium.core.db.models.deployments import Deployment, DeploymentEvent
from modelarium.core.db.uow import Database
from modelarium.core.errors import NotFoundError, UsageError

GONE = ("deleted", "missing")
"""States of deployments that no longer exist in the cluster."""


@dataclass(frozen=True)
class DeploymentView:
    id: int
    namespace: str
    name: str
    repo: str
    commit: str
    location: str | None
    gpus: int
    manifest: dict[str, Any]
    change_id: int | None
    state: str
    ready: bool | None
    not_ready_since: datetime | None
    url: str | None
    revision: str | None
    last_seen_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def to_json(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "name": self.name,
            "model": self.repo,
            "commit": self.commit,
            "location": self.location,
            "gpus": self.gpus,
            "change": self.change_id,
            "state": self.state,
            "ready": self.ready,
            "not_ready_since": self.not_ready_since.isoformat() if self.not_ready_since else None,
            "url": self.url,
            "revision": self.revision,
        }


@dataclass(frozen=True)
class EventView:
    id: int
    number: int  # 1-based, per deployment: what `rollback --to` names
    action: str
    change_id: int | None
    manifest: dict[str, Any] | None
    digest: str | None
    repo: str | None
    commit: str | None
    proposed_by: str | None
    approved_by: tuple[str, ...]
    outcome: str
    detail: str | None
    started_at: datetime
    effective_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "action": self.action,
            "change": self.change_id,
            "model": self.repo,
            "commit": self.commit,
            "digest": self.digest,
            "proposed_by": self.proposed_by,
            "approved_by": list(self.approved_by),
            "outcome": self.outcome,
            "detail": self.detail,
            "started_at": self.started_at.isoformat(),
            "effective_at": self.effective_at.isoformat() if self.effective_at else None,
        }


def _view(row: Deployment) -> DeploymentView:
    return DeploymentView(
        row.id,
        row.namespace,
        row.name,
        row.repo,
        row.commit,
        row.location,
        row.gpus,
        dict(row.manifest or {}),
        row.change_id,
        row.state,
        row.ready,
        row.not_ready_since,
        row.url,
        row.revision,
        row.last_seen_at,
        row.created_at,
        row.updated_at,
    )


def _event(row: DeploymentEvent, number: int) -> EventView:
    return EventView(
        row.id,
        number,
        row.action,
        row.change_id,
        dict(row.manifest) if row.manifest is not None else None,
        row.digest,
        row.repo,
        row.commit,
        row.proposed_by,
        tuple(row.approved_by or ()),
        row.outcome,
        row.detail,
        row.started_at,
        row.effective_at,
    )


class DeploymentStore:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    # -- writing ------------------------------------------------------------------------------
    def begin(
        self,
        *,
        namespace: str,
        name: str,
        action: str,
        change_id: int | None,
        proposed_by: str | None,
        approved_by: Iterable[str] = (),
        manifest: dict[str, Any] | None = None,
        digest: str | None = None,
        source: dict[str, Any] | None = None,
        gpus: int | None = None,
    ) -> int:
        """Record that ``action`` started (idempotent per change: a resumed job finds its row).
        An apply creates the deployment's row the first time."""
        now = self._clock.now()
        with self._db.transaction() as session:
            row = self._row(session, namespace, name, lock=True)
            if row is None:
                if manifest is None or source is None:
                    raise NotFoundError(f"no deployment {namespace}/{name}")
                row = Deployment(
                    namespace=namespace,
                    name=name,
                    repo=source["repo"],
                    commit=source["commit"],
                    location=source.get("location"),
                    gpus=gpus or 0,
                    manifest=manifest,
                    state="deploying",
                    created_at=now,
                    updated_at=now,
                )
                session.add(row)
                session.flush()
            if change_id is not None:
                existing = session.scalar(
                    sa.select(DeploymentEvent).where(
                        DeploymentEvent.change_id == change_id,
                        DeploymentEvent.action == action,
                    )
                )
                if existing is not None:
                    return existing.id
            event = DeploymentEvent(
                deployment_id=row.id,
                change_id=change_id,
                action=action,
                manifest=manifest,
                digest=digest,
                repo=(source or {}).get("repo") or row.repo,
                commit=(source or {}).get("commit") or row.commit,
                proposed_by=proposed_by,
                approved_by=list(approved_by),
                outcome="running",
                started_at=now,
            )
            session.add(event)
            session.flush()
            return event.id

    def finish(
        self,
        event_id: int,
        outcome: str,
        *,
        detail: str | None = None,
        effective: bool = True,
        state: str | None = None,
        url: str | None = None,
        revision: str | None = None,
    ) -> None:
        """Close a history entry; on success of an apply, the deployment now wants its spec."""
        now = self._clock.now()
        with self._db.transaction() as session:
            event = session.get(DeploymentEvent, event_id)
            if event is None:
                return
            event.outcome = outcome
            event.detail = detail
            if effective and outcome == "succeeded":
                event.effective_at = now
            row = session.get(Deployment, event.deployment_id)
            if row is None:
                return
            if outcome == "succeeded" and event.action in ("apply", "rollback"):
                assert event.manifest is not None
                row.manifest = event.manifest
                row.repo = event.repo or row.repo
                row.commit = event.commit or row.commit
                annotations = (event.manifest.get("metadata") or {}).get("annotations") or {}
                row.location = annotations.get("modelarium.io/location")
                limits = (
                    (((event.manifest.get("spec") or {}).get("predictor") or {}).get("model") or {})
                    .get("resources", {})
                    .get("limits", {})
                )
                row.gpus = int(limits.get("nvidia.com/gpu") or row.gpus or 0)
                row.change_id = event.change_id
            if state is not None:
                row.state = state
                if state == "ready":
                    row.ready, row.not_ready_since = True, None
                elif state in ("failed", "stopped") and row.not_ready_since is None:
                    row.ready, row.not_ready_since = False, now
            if url is not None:
                row.url = url
            if revision is not None:
                row.revision = revision
            row.updated_at = now

    def observe(
        self,
        updates: dict[int, dict[str, Any]],
        removed: Iterable[int] = (),
    ) -> list[int]:
        """Apply what a reconcile saw, in one transaction; rows found gone get a history entry.

        Returns the ids of deployments newly found missing."""
        now = self._clock.now()
        newly_missing: list[int] = []
        gone = set(removed)
        if not updates and not gone:
            return newly_missing
        with self._db.transaction() as session:
            ids = set(updates) | gone
            rows = {
                r.id: r
                for r in session.scalars(sa.select(Deployment).where(Deployment.id.in_(ids)))
            }
            for dep_id, values in updates.items():
                row = rows.get(dep_id)
                if row is None:
                    continue
                for key, value in values.items():
                    setattr(row, key, value)
                row.last_seen_at = now
                row.updated_at = now
            for dep_id in gone:
                row = rows.get(dep_id)
                if row is None or row.state in GONE:
                    continue
                row.state = "missing"
                row.ready = False
                row.updated_at = now
                session.add(
                    DeploymentEvent(
                        deployment_id=row.id,
                        action="removed",
                        repo=row.repo,
                        commit=row.commit,
                        outcome="succeeded",
                        detail="deleted outside Modelarium",
                        started_at=now,
                        effective_at=now,
                        approved_by=[],
                    )
                )
                newly_missing.append(row.id)
        return newly_missing

    # -- reading ------------------------------------------------------------------------------
    @staticmethod
    def _row(
        session: Session, namespace: str, name: str, *, lock: bool = False
    ) -> Deployment | None:
        stmt = sa.select(Deployment).where(
            Deployment.namespace == namespace, Deployment.name == name
        )
        if lock:
            stmt = stmt.with_for_update()
        return session.scalar(stmt)

    def get(self, namespace: str, name: str) -> DeploymentView | None:
        with self._db.transaction() as session:
            row = self._row(session, namespace, name)
            return _view(row) if row is not None else None

    def find(self, name: str, namespace: str | None = None) -> DeploymentView:
        """``name`` (or ``namespace/name``) among known deployments; one line when unknown."""
        if "/" in name and namespace is None:
            namespace, _, name = name.partition("/")
        with self._db.transaction() as session:
            stmt = sa.select(Deployment).where(Deployment.name == name)
            if namespace is not None:
                stmt = stmt.where(Deployment.namespace == namespace)
            rows = list(session.scalars(stmt.order_by(Deployment.namespace)))
        if not rows:
            where = f" in {namespace}" if namespace else ""
            raise NotFoundError(f"no deployment {name!r}{where} (see `deployments`)")
        if len(rows) > 1:
            spaces = ", ".join(r.namespace for r in rows)
            raise UsageError(f"{name!r} exists in several namespaces ({spaces}); add --namespace")
        return _view(rows[0])

    def all(self, namespaces: Iterable[str] | None = None) -> list[DeploymentView]:
        with self._db.transaction() as session:
            stmt = sa.select(Deployment)
            if namespaces is not None:
                stmt = stmt.where(Deployment.namespace.in_(list(namespaces)))
            rows = session.scalars(stmt.order_by(Deployment.namespace, Deployment.name))
            return [_view(r) for r in rows]

    def history(self, deployment_id: int) -> list[EventView]:
        """Oldest first, numbered from 1."""
        with self._db.transaction() as session:
            rows = session.scalars(
                sa.select(DeploymentEvent)
                .where(DeploymentEvent.deployment_id == deployment_id)
                .order_by(DeploymentEvent.id)
            )
            return [_event(r, n) for n, r in enumerate(rows, start=1)]

    def event_for(self, change_id: int, action: str) -> EventView | None:
        with self._db.transaction() as session:
            row = session.scalar(
                sa.select(DeploymentEvent).where(
                    DeploymentEvent.change_id == change_id, DeploymentEvent.action == action
                )
            )
            if row is None:
                return None
            number = int(
                session.scalar(
                    sa.select(sa.func.count())
                    .select_from(DeploymentEvent)
                    .where(
                        DeploymentEvent.deployment_id == row.deployment_id,
                        DeploymentEvent.id <= row.id,
                    )
                )
                or 0
            )
            return _event(row, number)

    def deployed_by(self, repo: str, commit: str, location: str) -> list[str]:
        """Deployments serving (or stopped on) these weights: purges must keep them.

        The weights capability asks from inside its own transactions (which on SQLite hold the
        write lock), so this is one plain read on a connection of its own, outside any unit of
        work: no ``BEGIN IMMEDIATE`` to wait behind that lock (WAL lets readers through), and no
        nested transaction."""
        engine = self._db.engine
        stmt = sa.select(Deployment.namespace, Deployment.name).where(
            Deployment.repo == repo,
            Deployment.commit == commit,
            Deployment.location == location,
            Deployment.state.not_in(GONE),
        )
        sql = str(stmt.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True}))
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            cursor.execute(sql)
            rows = cursor.fetchall()
            cursor.close()
        finally:
            raw.close()  # back to the pool (PostgreSQL: its read-only transaction rolled back)
        return [f"{ns}/{name}" for ns, name in sorted(rows)]
