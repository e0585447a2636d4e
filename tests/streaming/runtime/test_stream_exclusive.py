"""One stream processor per group and lake: a second one stops at once, a killed one's
successor starts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from marketlake.errors import ConfigError
from marketlake.lake.storage import LakeStorage
from marketlake.streaming.runtime.exclusive import ProcessorLock, lock_relpath
from pipeline.cli import marketlake
from streaming.runtime.stream_checks import SIM_ARGS


def test_a_second_lock_of_the_group_fails_naming_the_holder(tmp_path: Path) -> None:
    storage = LakeStorage.from_url(tmp_path.as_uri())
    with ProcessorLock(storage, "g"):
        with pytest.raises(ConfigError, match=f"pid {os.getpid()}"):
            ProcessorLock(storage, "g").acquire()
        with ProcessorLock(storage, "other"):  # another group runs beside it
            pass
    with ProcessorLock(storage, "g"):  # released
        pass


def test_a_second_processor_of_the_group_stops_and_a_killed_ones_successor_runs(
    home: Path,
) -> None:
    produced = marketlake(
        "stream", "produce", "--home", str(home), "--count", "2000", "--event-rate", "2",
        *SIM_ARGS,
    )  # fmt: skip
    assert produced.returncode == 0, produced.stderr
    first = subprocess.Popen(
        [sys.executable, "-m", "marketlake", "stream", "process", "--home", str(home), "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ),
    )
    lock = home / "lake" / lock_relpath("stream-processor")
    try:
        deadline = time.monotonic() + 120
        while first.poll() is None and time.monotonic() < deadline:
            if lock.exists() and lock.read_text().strip() == str(first.pid):
                break
            time.sleep(0.05)
        assert lock.read_text().strip() == str(first.pid)

        second = marketlake("stream", "process", "--home", str(home), "--until-caught-up")
        assert second.returncode != 0
        assert "another stream processor of group 'stream-processor'" in second.stderr
        assert f"pid {first.pid}" in second.stderr
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait()

    after = marketlake("stream", "process", "--home", str(home), "--until-caught-up", "--quiet")
    assert after.returncode == 0, after.stderr
