"""Notifications through a transactional outbox.

Core code *publishes* what a message identified by a key should look like now ("job:12",
"approval:7"); the dispatcher later posts it, or edits it in place, through whichever front is
running. A publish that changes nothing (the same content hash) is not sent at all, so a message
is edited only when what it shows changes. Rapid updates coalesce (only the newest version is
sent), edits of one message are spaced by ``message_update_interval`` so Slack's limits are never
hit, failures back off and are kept, and several replicas share the work with
``FOR UPDATE SKIP LOCKED``.

Chat messages and webhooks are delivered by separate workers (:meth:`deliver_pending`,
:meth:`deliver_webhooks`), and each webhook delivery has one deadline for all of it
(``webhook_timeout``): a receiver that answers a byte at a time cannot hold up anything else.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from modelarium.config.settings import NotificationRoute, WebhookTarget
from modelarium.core.aio import run_sync
from modelarium.core.clock import Clock
from modelarium.core.db.models.notify import OutboundMessage, WebhookDelivery
from modelarium.core.db.uow import Database
from modelarium.core.errors import is_retryable
from modelarium.core.logging import get_logger, redact_text
from modelarium.core.messages import Message
from modelarium.core.notify.sender import DeliveryError, MessageSender
from modelarium.core.notify.webhooks import post_signed

log = get_logger(__name__)

SEVERITIES = ("info", "warning", "critical")
_CLAIM_SECONDS = 60.0
WEBHOOK_CONCURRENCY = 8
"""Webhook deliveries posted at once: one slow receiver holds one slot for one deadline."""


@dataclass(frozen=True)
class DeliveryReport:
    sent: int = 0
    failed: int = 0
    deferred: int = 0


def content_hash(payload: dict[str, Any]) -> str:
    """A stable digest of a message's stored form (key order and spacing do not matter)."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _backoff(attempt: int, base: float = 2.0, cap: float = 600.0) -> float:
    return float(min(cap, base ** max(1, attempt)))


class NotifyService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        default_channel: str | None = None,
        routes: list[NotificationRoute] | None = None,
        webhooks: list[WebhookTarget] | None = None,
        update_interval: float = 1.5,
        max_attempts: int = 8,
        webhook_timeout: float = 10.0,
    ) -> None:
        self._db = db
        self._clock = clock
        self.default_channel = default_channel
        self.routes = routes or []
        self.webhooks = webhooks or []
        self.update_interval = update_interval
        self.max_attempts = max_attempts
        self.webhook_timeout = webhook_timeout

    # -- publishing -------------------------------------------------------------------------

    def route(self, kind: str, severity: str = "info") -> str | None:
        """The channel for a kind/severity: first matching route, else the default channel."""
        for route in self.routes:
            if (not route.kinds or kind in route.kinds) and (
                not route.severities or severity in route.severities
            ):
                return route.channel
        return self.default_channel

    def publish(
        self,
        key: str,
        message: Message,
        *,
        channel: str | None = None,
        kind: str = "notice",
        thread_of: str | None = None,
        session: Session | None = None,
    ) -> None:
        """Make the message ``key`` look like ``message`` (posting it the first time).

        ``thread_of`` names the message this one follows up on: it is posted in its thread.
        """
        if session is None:
            with self._db.transaction() as own:
                self._upsert(own, key, message, channel, kind, thread_of)
        else:
            self._upsert(session, key, message, channel, kind, thread_of)

    def notify(
        self,
        kind: str,
        message: Message,
        *,
        severity: str = "info",
        key: str | None = None,
        channel: str | None = None,
        event: dict[str, Any] | None = None,
        thread_of: str | None = None,
        session: Session | None = None,
    ) -> str:
        """Publish to the routed channel and enqueue matching webhooks; returns the key.

        ``thread_of``: a follow-up, posted in the thread of that message."""
        now = self._clock.now()
        # A random part: two notices of one kind in the same instant (another replica, a coarse
        # clock) must not share a key, or the second would overwrite the first.
        key = key or f"{kind}:{now.timestamp():.6f}:{uuid.uuid4().hex[:8]}"
        target_channel = channel or self.route(kind, severity)

        def write(s: Session) -> None:
            self._upsert(s, key, message, target_channel, kind, thread_of)
            self._enqueue_webhooks(
                s, kind, severity, {"key": key, "text": message.plain_text(), **(event or {})}
            )

        if session is None:
            with self._db.transaction() as own:
                write(own)
        else:
            write(session)
        return key

    def emit_webhooks(
        self,
        kind: str,
        event: dict[str, Any],
        *,
        severity: str = "info",
        session: Session | None = None,
    ) -> None:
        """Send an event to matching webhooks only (no chat message)."""
        if session is None:
            with self._db.transaction() as own:
                self._enqueue_webhooks(own, kind, severity, event)
        else:
            self._enqueue_webhooks(session, kind, severity, event)

    def _enqueue_webhooks(
        self, session: Session, kind: str, severity: str, event: dict[str, Any]
    ) -> None:
        now = self._clock.now()
        payload = {"kind": kind, "severity": severity, "ts": now.isoformat(), **event}
        for hook in self.webhooks:
            if (not hook.kinds or kind in hook.kinds) and (
                not hook.severities or severity in hook.severities
            ):
                session.add(WebhookDelivery(target=hook.name, event=payload, next_attempt_at=now))

    def _upsert(
        self,
        session: Session,
        key: str,
        message: Message,
        channel: str | None,
        kind: str,
        thread_of: str | None = None,
    ) -> None:
        now = self._clock.now()
        payload = message.to_dict()
        digest = content_hash(payload)
        values = {
            "key": key,
            "thread_of": thread_of,
            "channel": channel or "",
            "kind": kind,
            "payload": payload,
            "content_hash": digest,
            "version": 1,
            "delivered_version": 0,
            "pending": True,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
            "updated_at": now,
        }
        dialect = session.get_bind().dialect.name
        insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(OutboundMessage)
        update: dict[str, Any] = {
            "payload": insert.excluded.payload,
            "content_hash": insert.excluded.content_hash,
            "version": OutboundMessage.version + 1,
            "pending": True,
            "attempts": 0,
            "updated_at": now,
        }
        if channel:
            update["channel"] = insert.excluded.channel
        # Unchanged content (the same hash, for the same channel) is not a new version: a
        # re-published card that looks the same is never edited again.
        changed = sa.or_(
            OutboundMessage.content_hash.is_(None),
            OutboundMessage.content_hash != insert.excluded.content_hash,
            *([OutboundMessage.channel != insert.excluded.channel] if channel else []),
        )
        session.execute(
            insert.values(**values).on_conflict_do_update(
                index_elements=["key"], set_=update, where=changed
            )
        )

    def get(self, key: str) -> tuple[Message, str | None, str] | None:
        """(current content, delivered ref, channel) of a published message."""
        with self._db.transaction() as session:
            row = session.get(OutboundMessage, key)
            if row is None:
                return None
            return Message.from_dict(row.payload), row.ref, row.channel

    # -- delivery ---------------------------------------------------------------------------

    def deliver_pending(self, sender: MessageSender, *, limit: int = 25) -> DeliveryReport:
        """Send what is due. Safe to call from many threads and replicas at once.

        Rows are claimed in a short transaction (their ``next_attempt_at`` pushed out as a
        lease) and sent outside it, so a slow chat API never holds a database write lock.
        """
        now = self._clock.now()
        claimed: list[tuple[str, int, str | None, dict[str, Any], str | None, str | None]] = []
        deferred = 0
        with self._db.transaction() as session:
            stmt = (
                sa.select(OutboundMessage)
                .where(OutboundMessage.pending.is_(True), OutboundMessage.next_attempt_at <= now)
                .order_by(OutboundMessage.next_attempt_at)
                .limit(limit)
            )
            if self._db.dialect == "postgresql":
                stmt = stmt.with_for_update(skip_locked=True)
            for row in session.scalars(stmt):
                if (
                    row.ref
                    and row.last_sent_at
                    and (now - row.last_sent_at < timedelta(seconds=self.update_interval))
                ):
                    row.next_attempt_at = row.last_sent_at + timedelta(seconds=self.update_interval)
                    deferred += 1
                    continue
                thread = None
                if row.thread_of and not row.ref:
                    parent = session.get(OutboundMessage, row.thread_of)
                    thread = parent.ref if parent is not None else None
                    if parent is not None and thread is None and parent.pending:
                        # a follow-up waits for the message it answers to be posted first
                        row.next_attempt_at = now + timedelta(seconds=1)
                        deferred += 1
                        continue
                row.next_attempt_at = now + timedelta(seconds=_CLAIM_SECONDS)
                claimed.append(
                    (row.key, row.version, row.channel or None, row.payload, row.ref, thread)
                )

        sent = failed = 0
        for key, version, channel, payload, ref, thread in claimed:
            error: DeliveryError | None = None
            try:
                new_ref = sender.send(channel, Message.from_dict(payload), ref, thread=thread)
            except DeliveryError as exc:
                error = exc
            except Exception as exc:  # a sender bug must not wedge the outbox
                log.exception("notify.send_crashed", key=key)
                error = DeliveryError(f"{type(exc).__name__}: {exc}")
            with self._db.transaction() as session:
                # Locked, so a publish that commits meanwhile is seen: its newer version must
                # stay pending (else the last edit of a card could be lost on PostgreSQL).
                row = session.get(OutboundMessage, key, with_for_update=True)
                if row is None:
                    continue
                done = self._clock.now()
                if error is not None:
                    failed += 1
                    self._record_failure(
                        row, str(error), error.retry_after, not is_retryable(error), done
                    )
                    continue
                sent += 1
                row.ref = new_ref
                row.delivered_version = version
                row.pending = row.version > version
                row.attempts = 0
                row.last_error = None
                row.last_sent_at = done
                row.next_attempt_at = done + timedelta(seconds=self.update_interval)
        return DeliveryReport(sent, failed, deferred)

    def _record_failure(
        self,
        row: OutboundMessage,
        error: str,
        retry_after: float | None,
        permanent: bool,
        now: datetime,
    ) -> None:
        row.attempts += 1
        row.last_error = redact_text(error)[:500]
        if permanent or row.attempts >= self.max_attempts:
            row.pending = False
            log.warning("notify.gave_up", key=row.key, error=row.last_error, attempts=row.attempts)
            return
        wait = retry_after if retry_after is not None else _backoff(row.attempts)
        row.next_attempt_at = now + timedelta(seconds=wait)
        log.info("notify.retry", key=row.key, error=row.last_error, wait=wait)

    def deliver_webhooks(self, *, limit: int = 25) -> DeliveryReport:
        """POST what is due. Like :meth:`deliver_pending`, rows are claimed in a short
        transaction and posted outside it: a slow receiver must not hold a database write lock
        (on SQLite that would stall every other writer until it answered). Deliveries run
        concurrently, each within ``webhook_timeout`` seconds in all."""
        failed = 0
        now = self._clock.now()
        targets = {hook.name: hook for hook in self.webhooks}
        claimed: list[tuple[int, WebhookTarget, dict[str, Any]]] = []
        with self._db.transaction() as session:
            stmt = (
                sa.select(WebhookDelivery)
                .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
                .order_by(WebhookDelivery.id)
                .limit(limit)
            )
            if self._db.dialect == "postgresql":
                stmt = stmt.with_for_update(skip_locked=True)
            for delivery in session.scalars(stmt):
                hook = targets.get(delivery.target)
                if hook is None:
                    delivery.status = "failed"
                    delivery.last_error = "webhook target no longer configured"
                    failed += 1
                    continue
                delivery.next_attempt_at = now + timedelta(seconds=_CLAIM_SECONDS)
                claimed.append((delivery.id, hook, dict(delivery.event)))
        if not claimed:
            return DeliveryReport(0, failed, 0)

        sent = 0
        errors = run_sync(self._post_all(claimed))
        for (delivery_id, hook, _event), error in zip(claimed, errors, strict=True):
            with self._db.transaction() as session:
                delivery = session.get(WebhookDelivery, delivery_id)
                if delivery is None:
                    continue
                done = self._clock.now()
                delivery.attempts += 1
                if error is None:
                    delivery.status = "delivered"
                    delivery.delivered_at = done
                    delivery.last_error = None
                    sent += 1
                    continue
                failed += 1
                delivery.last_error = redact_text(error)[:500]
                if delivery.attempts >= self.max_attempts:
                    delivery.status = "failed"
                    log.warning("webhook.gave_up", target=hook.name, delivery=delivery.id)
                else:
                    delivery.next_attempt_at = done + timedelta(seconds=_backoff(delivery.attempts))
        return DeliveryReport(sent, failed, 0)

    async def _post_all(
        self, claimed: list[tuple[int, WebhookTarget, dict[str, Any]]]
    ) -> list[str | None]:
        """Post every claimed delivery; the error of each (``None`` when delivered)."""
        deadline = self.webhook_timeout
        slots = asyncio.Semaphore(WEBHOOK_CONCURRENCY)
        async with httpx.AsyncClient(
            timeout=httpx.Timeout(deadline), follow_redirects=False
        ) as client:

            async def post(
                delivery_id: int, hook: WebhookTarget, event: dict[str, Any]
            ) -> str | None:
                async with slots:
                    try:
                        async with asyncio.timeout(deadline):
                            status = await post_signed(
                                client, hook.url, hook.secret.get_secret_value(), event, delivery_id
                            )
                    except TimeoutError:
                        return f"no answer within {deadline:g}s"
                    except httpx.HTTPError as exc:
                        return f"{type(exc).__name__}: {exc}"
                return None if 200 <= status < 300 else f"HTTP {status}"

            return await asyncio.gather(*(post(*item) for item in claimed))

    def failed_deliveries(self) -> list[tuple[str, str, str | None]]:
        """(what, target, error) of deliveries that were given up on, for /model status."""
        with self._db.transaction() as session:
            messages = session.execute(
                sa.select(OutboundMessage.key, OutboundMessage.channel, OutboundMessage.last_error)
                .where(OutboundMessage.pending.is_(False), OutboundMessage.last_error.is_not(None))
                .order_by(OutboundMessage.updated_at.desc())
                .limit(20)
            ).all()
            hooks = session.execute(
                sa.select(WebhookDelivery.id, WebhookDelivery.target, WebhookDelivery.last_error)
                .where(WebhookDelivery.status == "failed")
                .order_by(WebhookDelivery.id.desc())
                .limit(20)
            ).all()
        return [(k, c, e) for k, c, e in messages] + [(f"webhook #{i}", t, e) for i, t, e in hooks]
