"""Make the shared test services (``tests/services``) and the bus contract importable from the
bus tests, including those in the adapter folders."""

from __future__ import annotations

import sys
from pathlib import Path

for folder in (Path(__file__).resolve().parents[1], Path(__file__).resolve().parent):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
