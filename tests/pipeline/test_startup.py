"""What ``marketlake run`` imports: pandas stays off the command path once the calendar is
cached (pyarrow and TA-Lib would import it only to probe for pandas objects)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.pipeline.cli import marketlake


def imported_modules(*args: str) -> set[str]:
    """The modules ``python -X importtime -m marketlake ARGS`` imported."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "marketlake", *args],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("import time:")]
    return {line.rsplit("|", 1)[-1].strip() for line in lines}


def test_a_run_with_a_cached_calendar_does_not_import_pandas(tmp_path: Path) -> None:
    warm = marketlake("run", "--home", str(tmp_path / "warm"), "--quiet")  # caches the calendar
    assert warm.returncode == 0, warm.stderr
    modules = imported_modules("run", "--home", str(tmp_path / "home"), "--quiet")
    assert "marketlake.pipeline.runner" in modules
    assert "talib._ta_lib" in modules  # TA-Lib computed the indicators
    # A declined import is still listed (for a few microseconds), its submodules are not.
    assert not [m for m in modules if m.startswith("pandas.")]
    # The cached session calendar answers: exchange_calendars is not imported at all.
    assert not [m for m in modules if m.startswith("exchange_calendars")]
    # Quiet, with no terminal: neither progress bars nor the summary table are drawn.
    assert not {"rich.progress", "rich.table"} & modules


def test_help_does_not_import_talib_or_pandas() -> None:
    modules = imported_modules("--help")
    assert not [m for m in modules if m.startswith(("talib", "pandas"))]
