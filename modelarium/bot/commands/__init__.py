"""Command modules, one per area; importing this package registers them all.

Which modules exist is the manifest's ``commands`` column (``modelarium/manifest.py``). To add a
command: write a decorated function in the module for its area (or a new module, listed in the
manifest). See bot/commands/roles.py for a small complete example.
"""

import importlib

from modelarium.manifest import CAPABILITIES

for _capability in CAPABILITIES:
    for _module in _capability.commands:
        importlib.import_module(_module)
