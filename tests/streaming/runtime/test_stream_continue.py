"""A second `marketlake stream` in the same home continues the first; a re-sent stream
(explicit --start and --seed) leaves the lake and the warehouse as they were, and says why."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow.compute as pc

from pipeline.cli import marketlake, sql_json
from streaming.runtime.stream_checks import SIM_ARGS, SYMBOLS, lake, tick_keys

SIM = ("--event-rate", "3", "--symbols", ",".join(SYMBOLS), "--seed", "7")


def _ticks_agree(home: Path, count: int) -> None:
    """The lake and the warehouse hold the same ``count`` ticks, each once."""
    ticks = lake(home).read("curated/ticks")
    assert ticks.num_rows == count
    assert len(set(tick_keys(ticks))) == count
    rows = sql_json(home, "SELECT count(*) AS n, count(DISTINCT (symbol, ts, seq)) AS k FROM ticks")
    assert rows == [{"n": count, "k": count}]


def test_a_second_stream_continues_after_the_first(home: Path) -> None:
    first = marketlake("stream", "--home", str(home), "--count", "2000", "--quiet", *SIM_ARGS)
    assert first.returncode == 0, first.stderr
    last = pc.max(lake(home).read("curated/ticks").column("ts")).as_py()

    again = marketlake("stream", "--home", str(home), "--count", "2000", *SIM_ARGS)
    assert again.returncode == 0, again.stderr
    assert "warning: all 2,000 ticks this run received were late" in again.stderr
    _ticks_agree(home, 2000)

    more = marketlake("stream", "--home", str(home), "--count", "2000", *SIM)
    assert more.returncode == 0, more.stderr
    assert "late 0" in more.stdout and "warning" not in more.stderr
    _ticks_agree(home, 4000)
    ticks = lake(home).read("curated/ticks")
    new = ticks.filter(pc.greater(ticks.column("ts"), last))
    assert new.num_rows == 2000
    # the first stream's session (2024-03-04) had closed: the next one starts at its open
    assert pc.min(new.column("ts")).as_py() >= datetime(2024, 3, 5, 14, 30, tzinfo=UTC)
    windows = sql_json(
        home, f"SELECT count(*) AS n FROM stream_windows WHERE window_end > '{last.isoformat()}'"
    )
    assert windows[0]["n"] > 0


def test_a_replay_continues_after_what_it_already_sent(home: Path, tmp_path: Path) -> None:
    bars = tmp_path / "ZZZ_1min.csv"
    rows = [f"2024-03-04 09:{30 + i}:00,10,11,9,10.5,400" for i in range(6)]
    bars.write_text("timestamp,open,high,low,close,volume\n" + "\n".join(rows) + "\n")
    replay = ("--source", "replay", "--path", str(bars), "--speed", "0")
    first = marketlake("stream", "produce", "--home", str(home), *replay, "--quiet")
    assert first.returncode == 0, first.stderr
    second = marketlake("stream", "produce", "--home", str(home), *replay)
    assert second.returncode == 0, second.stderr
    assert "produced 0 ticks" in second.stdout
    assert "pass --start to send ticks again" in second.stderr
    resent = marketlake(
        "stream", "produce", "--home", str(home), *replay, "--start", "2024-03-04T14:33:00"
    )
    assert resent.returncode == 0, resent.stderr
    assert "produced 12 ticks" in resent.stdout  # the last three minutes again
    done = marketlake("stream", "process", "--home", str(home), "--until-caught-up")
    assert done.returncode == 0, done.stderr
    assert "duplicates 12" in done.stdout
    _ticks_agree(home, 24)
