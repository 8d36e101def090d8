"""ORM models, one module per capability; importing this registers them all on ``Base``.

A capability adding tables adds its module here and an Alembic migration under
``core/db/migrations/versions``.
"""

from modelarium.core.db.models import (  # noqa: F401
    alerts,
    approvals,
    audit,
    cache,
    endpoints,
    jobs,
    modelfiles,
    notify,
    rbac,
    scheduler,
    weights,
)
