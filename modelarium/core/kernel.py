"""The kernel: the engines every capability may use (settings, clock, database, secrets, audit,
roles, notifications, approvals, jobs, changes, alerts, tasks, cache).

Capabilities are built from a kernel and their ports; they never see the whole core, so what a
capability depends on is exactly its constructor's arguments.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from modelarium.config.settings import Settings
from modelarium.core.alerts import AlertService
from modelarium.core.approvals import ApprovalService
from modelarium.core.audit import AuditService
from modelarium.core.cache import Cache
from modelarium.core.changes import ChangeService
from modelarium.core.clock import Clock, SystemClock
from modelarium.core.db import migrate
from modelarium.core.db.engine import create_engine
from modelarium.core.db.uow import Database
from modelarium.core.jobs import JobService
from modelarium.core.notify import NotifyService
from modelarium.core.rbac import RbacService
from modelarium.core.scheduling import TaskLedger
from modelarium.core.secrets import Keyring


class Kernel:
    def __init__(
        self, settings: Settings, *, clock: Clock | None = None, db: Database | None = None
    ) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.db = db or Database(
            create_engine(
                settings.effective_database_url,
                busy_timeout=settings.database_busy_timeout,
                pool_size=settings.database_pool_size,
            )
        )
        self.keyring = Keyring.from_settings(settings)
        self.audit = AuditService(self.db, self.clock, self.keyring.audit_key)
        self.rbac = RbacService(
            self.db,
            self.clock,
            admins=settings.admins,
            default_role=settings.default_role,
            group_roles=settings.group_roles,
            audit=self.audit,
        )
        self.notify = NotifyService(
            self.db,
            self.clock,
            default_channel=settings.notify_default_channel,
            routes=settings.notify_routes,
            webhooks=settings.webhooks,
            update_interval=settings.message_update_interval,
            max_attempts=settings.delivery_max_attempts,
            webhook_timeout=settings.webhook_timeout,
        )
        self.approvals = ApprovalService(
            self.db,
            self.clock,
            self.rbac,
            self.audit,
            self.notify,
            expiry=settings.approval_expiry,
            self_approval_actions=frozenset(settings.self_approval_actions),
            approvals_channel=settings.approvals_channel,
        )
        self.jobs = JobService(
            self.db,
            self.clock,
            self.notify,
            max_attempts=settings.job_max_attempts,
            stale_after=settings.job_stale_after,
        )
        self.changes = ChangeService(
            self.db,
            self.clock,
            self.rbac,
            self.approvals,
            self.jobs,
            self.notify,
            self.audit,
            approver_groups=dict(settings.approver_groups),
            approval_dm=settings.approval_dm,
        )
        self.alerts = AlertService(
            self.db,
            self.clock,
            self.notify,
            self.audit,
            repeat_interval=settings.alert_repeat_interval,
            runbooks=dict(settings.alert_runbooks),
            hub_url=settings.hf_endpoint,
        )
        self.tasks = TaskLedger(
            self.db,
            self.clock,
            self.alerts,
            self.notify,
            failure_threshold=settings.task_failure_threshold,
            job_stale_after=settings.job_stale_after,
        )
        self.secret_columns: list[Any] = []
        """Encrypted columns (ORM attributes) that ``modelarium keys rotate`` rewrites."""

    @cached_property
    def cache(self) -> Cache:
        return Cache(self.db, self.clock)

    def migrate(self) -> None:
        migrate.upgrade(self.db.engine)

    def close(self) -> None:
        self.db.dispose()
