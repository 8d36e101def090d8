"""ORM models, one module per capability; importing this registers them all on ``Base``.

Which modules exist is the manifest's ``models`` column (``modelarium/manifest.py``); a
capability adding tables lists its module there and adds an Alembic migration under
``core/db/migrations/versions``.
"""

import importlib

from modelarium.manifest import CAPABILITIES

for _capability in CAPABILITIES:
    for _module in _capability.models:
        importlib.import_module(_module)
