"""Killing `marketlake stream process` and `stream produce` with SIGKILL mid-run, for the kill
tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

TICKS_LOG = Path("lake") / "curated" / "ticks" / "_delta_log"


def tick_commits(home: Path) -> int:
    """Commits in the ticks table's Delta log so far."""
    folder = home / TICKS_LOG
    return len(list(folder.glob("*.json"))) if folder.is_dir() else 0


def start_process(home: Path, *args: str) -> subprocess.Popen[bytes]:
    """Start a processor that commits often and polls little, so a kill lands mid-run."""
    return subprocess.Popen(
        [
            sys.executable, "-m", "marketlake", "stream", "process", "--home", str(home),
            "--until-caught-up", "--commit-interval", "0.05", "--max-messages", "4", "--quiet",
            *args,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=dict(os.environ),
    )  # fmt: skip


def kill_after_commits(home: Path, extra_commits: int, *args: str) -> bool:
    """Run a processor and SIGKILL it once ``extra_commits`` more tick commits exist.

    Returns True when the kill happened mid-run, False when the processor finished first.
    """
    before = tick_commits(home)
    process = start_process(home, *args)
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        if tick_commits(home) >= before + extra_commits:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            return True
        time.sleep(0.01)
    process.wait()
    assert process.returncode == 0, process.stderr.read() if process.stderr else ""
    return False


def kill_producer_midway(home: Path, *args: str) -> int:
    """Run ``stream produce`` with ``args`` and SIGKILL it once it reports ticks sent.

    Returns the ticks it had reported (0 when it finished before reporting any).
    """
    process = subprocess.Popen(
        [sys.executable, "-m", "marketlake", "stream", "produce", "--home", str(home), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ),
    )
    assert process.stdout is not None
    for line in process.stdout:
        words = line.decode().split()
        if words[:1] == ["produced"] and int(words[1].replace(",", "")) > 0:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            return int(words[1].replace(",", ""))
    process.wait()
    return 0
