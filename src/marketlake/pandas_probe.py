"""Keep pandas off the command path: pyarrow's probes for it are answered "not installed".

pyarrow imports pandas (0.3 to 0.7 s here) the first time it converts a Python list, only to
learn pandas' missing-value markers and to ask whether an object is a pandas one. marketlake
hands pyarrow no pandas objects, so ``marketlake run`` installs an import finder that declines
pandas when the import comes from marketlake's or pyarrow's own code (pyarrow then works
without its pandas integration). TA-Lib does the same on import (0.2 s) to wrap its functions
for pandas Series; marketlake passes it numpy arrays, so its probe is declined too. Any other
library imports pandas as usual: exchange_calendars when a session calendar has to be built
(it is then cached on disk, see :mod:`marketlake.calendar`); once pandas is imported, pyarrow
uses it normally.
"""

from __future__ import annotations

import sys
from types import FrameType

DECLINED_FOR = ("marketlake", "pyarrow", "deltalake", "talib")
_IMPORT_MACHINERY = ("importlib", "_frozen_importlib")


def _importer(frame: FrameType | None) -> str:
    """The module whose code asked for the import (the import machinery skipped)."""
    while frame is not None:
        name = str(frame.f_globals.get("__name__", ""))
        if not name.startswith(_IMPORT_MACHINERY) and name != __name__:
            return name
        frame = frame.f_back
    return ""


class DeferPandas:
    """An import finder that declines pandas to marketlake's and pyarrow's own imports."""

    @staticmethod
    def find_spec(name: str, path: object = None, target: object = None) -> None:
        """Raise ModuleNotFoundError for pandas asked for by :data:`DECLINED_FOR` (what a
        missing pandas raises: TA-Lib only accepts that one); else defer."""
        if name == "pandas" and _importer(sys._getframe(1)).split(".")[0] in DECLINED_FOR:
            raise ModuleNotFoundError(
                "pandas is not imported on marketlake's command path", name="pandas"
            )
        return None


def defer_pandas() -> None:
    """Install :class:`DeferPandas` (once), unless pandas is already imported."""
    if "pandas" in sys.modules or DeferPandas in sys.meta_path:
        return
    sys.meta_path.insert(0, DeferPandas)
