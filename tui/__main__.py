"""`python -m tui`: the same app as `edgerag tui`."""

import sys

from .app import run

sys.exit(run())
