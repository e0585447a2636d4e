"""`marketlake stream` end to end on the local bus: one process, separate processes, late data.

Expected bars and windows come from an independent Polars computation
(tests/streaming/stream_reference.py) over the ticks the sim source produces for the same
seed, regenerated here without the pipeline.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.cli import marketlake, sql_json
from streaming.runtime.stream_checks import (
    SIM_ARGS,
    check_outputs,
    frame,
    lake,
    sim_ticks,
    tick_keys,
    warehouse_frame,
)


def test_stream_in_one_process_lands_every_tick_bar_and_window(home: Path) -> None:
    count = 12_000
    proc = marketlake(
        "stream", "--home", str(home), "--count", str(count), "--event-rate", "3", *SIM_ARGS
    )
    assert proc.returncode == 0, proc.stderr
    assert "processed 12,000 ticks" in proc.stdout

    rows = sql_json(home, "SELECT count(*) AS n, count(DISTINCT (symbol, ts, seq)) AS k FROM ticks")
    assert rows == [{"n": count, "k": count}]
    expected = sim_ticks(count, 3)
    check_outputs(
        warehouse_frame(home, "bars_1m"), warehouse_frame(home, "stream_windows"), expected
    )
    tables = lake(home)
    assert tick_keys(tables.read("curated/ticks")) == tick_keys(expected)
    check_outputs(
        frame(tables.read("curated/bars_1m")),
        frame(tables.read("analytics/stream_windows")),
        expected,
    )


def test_produce_and_process_as_separate_processes(home: Path) -> None:
    count = 10_000
    produced = marketlake(
        "stream", "produce", "--home", str(home), "--count", str(count), "--event-rate", "2",
        *SIM_ARGS,
    )  # fmt: skip
    assert produced.returncode == 0, produced.stderr
    assert not (home / "lake").exists()  # nothing processed yet

    first = marketlake("stream", "process", "--home", str(home), "--count", "3000", "--quiet")
    assert first.returncode == 0, first.stderr
    partial = lake(home).read("curated/ticks").num_rows
    assert 3000 <= partial < count

    rest = marketlake("stream", "process", "--home", str(home), "--until-caught-up")
    assert rest.returncode == 0, rest.stderr
    assert "lag 0 msgs" in rest.stdout
    expected = sim_ticks(count, 2)
    tables = lake(home)
    assert tick_keys(tables.read("curated/ticks")) == tick_keys(expected)
    check_outputs(
        frame(tables.read("curated/bars_1m")),
        frame(tables.read("analytics/stream_windows")),
        expected,
    )
    again = marketlake("stream", "process", "--home", str(home), "--until-caught-up", "-q")
    assert again.returncode == 0, again.stderr
    assert tables.read("curated/ticks").num_rows == count

    compacted = marketlake("stream", "compact", "--home", str(home))
    assert compacted.returncode == 0, compacted.stderr
    assert "curated/ticks" in compacted.stdout
    assert tick_keys(tables.read("curated/ticks")) == tick_keys(expected)


def test_late_ticks_correct_windows_in_lake_and_warehouse(home: Path) -> None:
    count = 9_000
    late = ("--late-fraction", "0.02", "--late-by", "300")
    proc = marketlake(  # paced, so late ticks arrive after their window's watermark passed
        "stream", "--home", str(home), "--count", str(count), "--event-rate", "2",
        "--rate", "3000", "--commit-interval", "0.2", *late, *SIM_ARGS,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    expected = sim_ticks(count, 2, late_fraction=0.02, late_by_s=300.0)

    tables = lake(home)
    late_rows = tables.read("curated/late_ticks")
    assert late_rows.num_rows > 0
    assert set(late_rows.column("reason").to_pylist()) == {"behind_watermark"}
    assert sql_json(home, "SELECT count(*) AS n FROM late_ticks") == [{"n": late_rows.num_rows}]
    # every late tick is in the ticks table too, and the windows include it
    assert set(tick_keys(late_rows)) <= set(tick_keys(tables.read("curated/ticks")))
    check_outputs(
        frame(tables.read("curated/bars_1m")),
        frame(tables.read("analytics/stream_windows")),
        expected,
    )
    check_outputs(
        warehouse_frame(home, "bars_1m"), warehouse_frame(home, "stream_windows"), expected
    )


def test_invalid_ticks_are_quarantined_not_landed(home: Path, tmp_path: Path) -> None:
    bars = tmp_path / "ZZZ_1min.csv"
    bars.write_text(
        "timestamp,open,high,low,close,volume\n"
        "2024-03-04 09:30:00,10,11,9,10.5,400\n"
        "2024-03-04 09:31:00,10.5,10.6,-1,10.2,400\n"  # a negative low: one bad tick
        "2024-03-04 09:32:00,10.2,10.4,10.1,10.3,800\n"
    )
    proc = marketlake(
        "stream", "--home", str(home), "--source", "replay", "--path", str(bars),
        "--speed", "0",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "quarantined 1" in proc.stdout
    assert sql_json(home, "SELECT count(*) AS n FROM ticks") == [{"n": 11}]
    rejected = sql_json(home, "SELECT rule, symbol FROM quarantine")
    assert rejected == [{"rule": "non_positive_price", "symbol": "ZZZ"}]
    assert lake(home).read("quarantine/ticks").num_rows == 1
