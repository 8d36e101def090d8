"""The core container: settings, database and every service, wired once per process.

Fronts (bot, shell, daemon) build one :class:`Core` and call its services; nothing here knows
which front is calling. Capabilities register their approval actions, job kinds and alert rules
in :data:`REGISTRARS`, so the bot can request what the daemon will run.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING, Any

from modelarium.config.settings import Settings
from modelarium.core.alerts import AlertService
from modelarium.core.approvals import ApprovalService
from modelarium.core.audit import AuditService
from modelarium.core.cache import Cache
from modelarium.core.clock import Clock, SystemClock
from modelarium.core.db import migrate
from modelarium.core.db.engine import create_engine
from modelarium.core.db.uow import Database
from modelarium.core.jobs import JobService
from modelarium.core.notify import NotifyService
from modelarium.core.rbac import RbacService
from modelarium.core.scheduling import TaskLedger
from modelarium.core.secrets import Keyring

if TYPE_CHECKING:
    from modelarium.core.endpoints import EndpointService
    from modelarium.core.gpus import GpuInventory
    from modelarium.core.hub import HubService
    from modelarium.core.modelfiles.service import ModelfileService
    from modelarium.core.weights.service import WeightsService


def _registrars() -> list[Callable[[Core], None]]:
    # Each capability adds one line here: its register(core) wires actions, job kinds, rules.
    from modelarium.core.endpoints import register as endpoints
    from modelarium.core.hub import register as hub
    from modelarium.core.modelfiles.ollama_ops import register as modelfiles_ollama
    from modelarium.core.rbac.actions import register as rbac_actions
    from modelarium.core.scheduling.jobs import register as scheduling_jobs
    from modelarium.core.weights.actions import register as weights

    return [rbac_actions, scheduling_jobs, modelfiles_ollama, endpoints, weights, hub]


class Core:
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
        )
        self.notify = NotifyService(
            self.db,
            self.clock,
            default_channel=settings.notify_default_channel,
            routes=settings.notify_routes,
            webhooks=settings.webhooks,
            update_interval=settings.message_update_interval,
            max_attempts=settings.delivery_max_attempts,
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
        self.alerts = AlertService(
            self.db,
            self.clock,
            self.notify,
            self.audit,
            repeat_interval=settings.alert_repeat_interval,
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
        for register in _registrars():
            register(self)

    @cached_property
    def cache(self) -> Cache:
        return Cache(self.db, self.clock)

    @cached_property
    def endpoints(self) -> EndpointService:
        from modelarium.core.endpoints import EndpointService

        return EndpointService(
            self.db, self.clock, self.keyring, self.rbac, self.alerts, self.audit, self.settings
        )

    @cached_property
    def gpus(self) -> GpuInventory:
        from modelarium.core.gpus import GpuInventory

        return GpuInventory(self.settings, self.cache, self.clock)

    @cached_property
    def hub(self) -> HubService:
        from modelarium.core.hub import HubService

        return HubService(self.settings, self.db, self.cache, self.clock, self.gpus)

    @cached_property
    def modelfiles(self) -> ModelfileService:
        from modelarium.core.modelfiles.service import ModelfileService

        return ModelfileService(self)

    @cached_property
    def weights(self) -> WeightsService:
        from modelarium.core.weights.service import WeightsService

        return WeightsService(self)

    def migrate(self) -> None:
        migrate.upgrade(self.db.engine)

    def close(self) -> None:
        self.db.dispose()
