"""The Spark Structured Streaming processor against the embedded one, on real PySpark: the same
ticks give the same bars, windows and late ticks; a replayed batch writes nothing; the bus
counts the query as a reader."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketlake.bus.registry import open_bus
from pipeline.cli import marketlake
from streaming.runtime.stream_checks import (
    SIM_ARGS,
    check_outputs,
    frame,
    lake,
    sim_ticks,
    tick_keys,
    warehouse_frame,
)
from streaming.spark.spark_stream import process
from streaming.stream_reference import BAR_VALUES, WINDOW_VALUES, assert_frames_close

pytestmark = pytest.mark.usefixtures("spark_session")

COUNT = 3_000
LATE_KEYS = ["symbol", "ts", "seq"]


def produce(home: Path, *args: str) -> None:
    done = marketlake("stream", "produce", "--home", str(home), "--quiet", "--rate", "40000", *args)
    assert done.returncode == 0, done.stderr


def test_spark_and_embedded_processors_write_the_same_tables(tmp_path: Path) -> None:
    spark_home, embedded_home = tmp_path / "spark", tmp_path / "embedded"
    bus_url = f"local://{spark_home / 'bus'}?segment_bytes=4096"
    for home, bus in ((spark_home, bus_url), (embedded_home, "local")):
        produce(home, "--bus", bus, "--count", str(COUNT), "--event-rate", "4", *SIM_ARGS)

    stats = process(spark_home, "spark", bus=bus_url)
    process(embedded_home, "embedded")

    assert stats.ticks == COUNT
    expected = sim_ticks(COUNT, 4)
    spark, embedded = lake(spark_home), lake(embedded_home)
    assert tick_keys(spark.read("curated/ticks")) == tick_keys(expected)
    bars, windows = (
        frame(spark.read("curated/bars_1m")),
        frame(spark.read("analytics/stream_windows")),
    )
    assert windows.get_column("is_final").all()
    assert_frames_close(bars, frame(embedded.read("curated/bars_1m")), ["symbol", "ts"], BAR_VALUES)
    assert_frames_close(
        windows,
        frame(embedded.read("analytics/stream_windows")),
        ["symbol", "kind", "window_start"],
        [*WINDOW_VALUES, "is_final"],
    )
    check_outputs(bars, windows, expected)
    check_outputs(
        warehouse_frame(spark_home, "bars_1m"),
        warehouse_frame(spark_home, "stream_windows"),
        expected,
    )

    # the query committed what it read for its group: trim deletes it, lag is 0
    bus = open_bus(bus_url)
    try:
        trimmed = bus.trim()
        assert sum(item.records for item in trimmed) > 0
        with bus.consumer("stream-processor", ["ticks"]) as consumer:
            assert consumer.lag() == 0
    finally:
        bus.close()

    # ticks of a session already closed (another seed): late beyond the watermark, recorded
    # the same by both processors and changing no window
    for home, bus in ((spark_home, bus_url), (embedded_home, "local")):
        produce(
            home, "--bus", bus, "--count", "300", "--event-rate", "4", *SIM_ARGS[:4], "--seed", "8"
        )
    late_stats = process(spark_home, "spark", bus=bus_url)
    process(embedded_home, "embedded")
    assert late_stats.late == 300
    late = frame(spark.read("curated/late_ticks"))
    assert late.height == 300
    assert_frames_close(
        late, frame(embedded.read("curated/late_ticks")), LATE_KEYS, ["price", "size", "reason"]
    )
    assert_frames_close(
        frame(spark.read("analytics/stream_windows")),
        windows,
        ["symbol", "kind", "window_start"],
        [*WINDOW_VALUES, "is_final"],
    )


def test_a_replayed_batch_writes_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    produce(home, "--count", "400", "--event-rate", "4", *SIM_ARGS)
    bus = open_bus(f"local://{home / 'bus'}")
    with bus.producer() as producer:  # a message that is not a tick batch
        producer.send("ticks", "AAPL", b"not arrow")
    bus.close()
    first = process(home, "spark", group="replayed")
    assert (first.ticks, first.dead_letters) == (400, 1)
    tables = lake(home)
    dead = tables.read("quality/dead_letters").to_pylist()
    assert [(d["stage"], d["message_key"], d["consumer_group"]) for d in dead] == [
        ("decode", "AAPL", "replayed")
    ]
    version = tables.version("curated/ticks")
    # forget that the last batch completed: the restarted query runs it again
    commits = home / "spark" / "checkpoints" / "replayed" / "commits"
    last = max(int(p.name) for p in commits.iterdir() if p.name.isdigit())
    for name in (str(last), f".{last}.crc"):
        (commits / name).unlink(missing_ok=True)
    again = process(home, "spark", group="replayed")
    assert again.ticks == 0
    assert tables.version("curated/ticks") == version
    assert tables.read("curated/ticks").num_rows == 400
