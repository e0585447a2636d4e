"""Killing `marketlake run` with SIGKILL at any point, then re-running, loses nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.pipeline.cli import marketlake, warehouse_snapshot

ARGS = ["--start", "2023-01-03", "--end", "2024-12-31", "--symbols", "AAPL,MSFT,TSLA,NVDA,JPM,V"]


def _kill_after(home: Path, delay_s: float) -> int | None:
    """Start a run, SIGKILL it after ``delay_s`` seconds; return its exit code if it finished."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "marketlake", "run", "--home", str(home), "--quiet", *ARGS],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=os.environ.copy(),
    )
    time.sleep(delay_s)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    return proc.wait()


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple[object, ...]]]:
    home = tmp_path_factory.mktemp("reference") / "home"
    proc = marketlake("run", "--home", str(home), *ARGS)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return warehouse_snapshot(home)


def test_killed_runs_end_exactly_once(
    reference: dict[str, list[tuple[object, ...]]], tmp_path: Path
) -> None:
    # Kill the same home repeatedly at growing offsets, so kills land in every stage; the
    # steps are small because a run on a quiet machine finishes in about a second and a half.
    # A run that finishes before its kill (the killed ones left it little to do) hands the
    # next kills to a new home, so every offset still lands in a run with work to do.
    homes = [tmp_path / "home-0"]
    kills = 0
    for delay in (0.4, 0.7, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4, 1.6, 2.0, 2.5, 3.0):
        code = _kill_after(homes[-1], delay)
        if code == -signal.SIGKILL:
            kills += 1
        elif code == 0:
            homes.append(tmp_path / f"home-{len(homes)}")
    # a resumed run has little left to do and may beat every later offset on a fast machine:
    # top up with early kills of runs in new homes, which take longer than that to finish
    for _ in range(6):
        if kills >= 3:
            break
        homes.append(tmp_path / f"home-{len(homes)}")
        if _kill_after(homes[-1], 0.5) == -signal.SIGKILL:
            kills += 1
    assert kills >= 3
    for home in homes:
        proc = marketlake("run", "--home", str(home), *ARGS)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert warehouse_snapshot(home) == reference
