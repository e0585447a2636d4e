"""SIGKILL ``stream process --engine spark`` twice mid-run and restart it: every tick lands
once and the windows equal an uninterrupted embedded run's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.cli import marketlake, marketlake_process
from streaming.runtime.stream_checks import SIM_ARGS, frame, lake, sim_ticks, tick_keys
from streaming.runtime.stream_kill import tick_commits
from streaming.stream_reference import BAR_VALUES, WINDOW_VALUES, assert_frames_close

pytestmark = pytest.mark.usefixtures("spark_session")  # skips without PySpark or Java

COUNT = 2_000
PRODUCE = ("--count", str(COUNT), "--event-rate", "4", "--rate", "40000", *SIM_ARGS)
# one message per partition per micro-batch: many small batches to land the kills in
FINISH = ("--engine", "spark", "--until-caught-up", "--quiet")
PROCESS = (*FINISH, "--max-messages", "4")


def kill_after_a_commit(home: Path) -> bool:
    """Run the Spark processor and SIGKILL it once one more tick commit exists; False when it
    finished first."""
    before = tick_commits(home)
    process = subprocess.Popen(
        [sys.executable, "-m", "marketlake", "stream", "process", "--home", str(home), *PROCESS],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 300
    while process.poll() is None and time.monotonic() < deadline:
        if tick_commits(home) > before:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            return True
        time.sleep(0.01)
    _, err = process.communicate()
    assert process.returncode == 0, err.decode()
    return False


def test_spark_processor_killed_twice_ends_with_every_tick_once(tmp_path: Path) -> None:
    killed_home, clean_home = tmp_path / "killed", tmp_path / "clean"
    for home in (killed_home, clean_home):
        produced = marketlake("stream", "produce", "--home", str(home), "--quiet", *PRODUCE)
        assert produced.returncode == 0, produced.stderr

    assert kill_after_a_commit(killed_home) and kill_after_a_commit(killed_home), (
        "the processor finished before it could be killed twice"
    )
    assert 0 < lake(killed_home).read("curated/ticks").num_rows < COUNT
    # the restart that finishes reads what is left in whole micro-batches
    done = marketlake_process("stream", "process", "--home", str(killed_home), *FINISH)
    assert done.returncode == 0, done.stderr
    clean = marketlake("stream", "process", "--home", str(clean_home), "--until-caught-up", "-q")
    assert clean.returncode == 0, clean.stderr

    killed, reference = lake(killed_home), lake(clean_home)
    assert tick_keys(killed.read("curated/ticks")) == tick_keys(sim_ticks(COUNT, 4))
    assert_frames_close(
        frame(killed.read("curated/bars_1m")),
        frame(reference.read("curated/bars_1m")),
        ["symbol", "ts"],
        BAR_VALUES,
    )
    assert_frames_close(
        frame(killed.read("analytics/stream_windows")),
        frame(reference.read("analytics/stream_windows")),
        ["symbol", "kind", "window_start"],
        [*WINDOW_VALUES, "is_final"],
    )
    count = marketlake(
        "sql", "--home", str(killed_home), "--format", "csv",
        "SELECT count(*) AS n, count(DISTINCT (symbol, ts, seq)) AS k FROM ticks",
    )  # fmt: skip
    assert count.returncode == 0, count.stderr
    assert count.stdout.split() == ["n,k", f"{COUNT},{COUNT}"]
