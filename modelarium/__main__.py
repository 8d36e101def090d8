"""``python -m modelarium``: the same as the ``modelarium`` command."""

import sys

from modelarium.entrypoints.cli import main

sys.exit(main())
