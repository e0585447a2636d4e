"""SIGKILL the producer and the stream processor over the local log: the lake ends exactly right."""

from __future__ import annotations

from pathlib import Path

from pipeline.cli import marketlake
from streaming.runtime.stream_checks import (
    SIM_ARGS,
    check_outputs,
    frame,
    lake,
    sim_ticks,
    tick_keys,
)
from streaming.runtime.stream_kill import kill_after_commits, kill_producer_midway
from streaming.stream_reference import BAR_VALUES, WINDOW_VALUES, assert_frames_close

COUNT = 15_000
PRODUCE = ("--count", str(COUNT), "--event-rate", "4", "--rate", "40000", *SIM_ARGS)


def test_processor_killed_repeatedly_ends_with_every_tick_once(tmp_path: Path) -> None:
    killed_home, clean_home = tmp_path / "killed", tmp_path / "clean"
    # a producer killed midway and run again re-sends the ticks it had sent (same --start and
    # --seed): the bus then holds some ticks twice
    # killed at its first progress report, after 0.5 s: at 4,000 ticks a second, about 2,000
    slow = [a if a != "40000" else "4000" for a in PRODUCE]
    sent = kill_producer_midway(killed_home, *slow)
    assert 0 < sent < COUNT, "the producer finished before it could be killed"
    for home in (killed_home, clean_home):
        produced = marketlake("stream", "produce", "--home", str(home), "--quiet", *PRODUCE)
        assert produced.returncode == 0, produced.stderr

    kills = sum(kill_after_commits(killed_home, extra) for extra in (1, 1, 1, 1))
    assert kills >= 3, "the processor finished before it could be killed three times"
    partial = lake(killed_home).read("curated/ticks").num_rows
    assert partial > 0

    for home in (killed_home, clean_home):
        done = marketlake("stream", "process", "--home", str(home), "--until-caught-up", "-q")
        assert done.returncode == 0, done.stderr

    expected = sim_ticks(COUNT, 4)
    killed, clean = lake(killed_home), lake(clean_home)
    ticks = killed.read("curated/ticks")
    assert ticks.num_rows == COUNT
    assert tick_keys(ticks) == tick_keys(expected)
    check_outputs(
        frame(killed.read("curated/bars_1m")),
        frame(killed.read("analytics/stream_windows")),
        expected,
    )
    assert_frames_close(
        frame(killed.read("curated/bars_1m")),
        frame(clean.read("curated/bars_1m")),
        ["symbol", "ts"],
        BAR_VALUES,
    )
    assert_frames_close(
        frame(killed.read("analytics/stream_windows")),
        frame(clean.read("analytics/stream_windows")),
        ["symbol", "kind", "window_start"],
        [*WINDOW_VALUES, "is_final"],
    )
    count = marketlake(
        "sql", "--home", str(killed_home), "--format", "csv",
        "SELECT count(*) AS n, count(DISTINCT (symbol, ts, seq)) AS k FROM ticks",
    )  # fmt: skip
    assert count.returncode == 0, count.stderr
    assert count.stdout.split() == ["n,k", f"{COUNT},{COUNT}"]
