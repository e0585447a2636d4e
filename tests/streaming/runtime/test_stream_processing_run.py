"""One run of the pipeline's processing: polls fed to the processor in parts, and idle bus
commits that do not wait for the sink writer (ticks arriving meanwhile are processed at once;
the offsets are committed only once everything polled is durable)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from marketlake.bus.local.bus import LocalBus
from marketlake.lake import LakeStorage, LakeTables
from marketlake.sources.live import SimTickSource
from marketlake.streaming.processor import StreamProcessor
from marketlake.streaming.runtime.options import PipelineOptions
from marketlake.streaming.runtime.processing import PROCESS_MESSAGES, ProcessingRun
from marketlake.streaming.runtime.producer import TickProducer
from marketlake.streaming.runtime.sink import StreamSink
from marketlake.streaming.runtime.stats import ProcessStats
from marketlake.warehouse.duckdb import DuckDBWarehouse

START = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)


class GatedWarehouse(DuckDBWarehouse):
    """A DuckDB warehouse whose stream batches wait until ``gate`` is open."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.gate = threading.Event()

    @contextmanager
    def session(self) -> Iterator[None]:
        assert self.gate.wait(timeout=60)
        with super().session():
            yield


def produce(bus: LocalBus, count: int, seed: int) -> None:
    source = SimTickSource(["AAPL", "MSFT"], start=START, count=count, seed=seed)
    with TickProducer(bus, "ticks", 2) as producer:
        for batch in source.ticks():
            producer.send(batch)


def poll_all(run: ProcessingRun) -> int:
    """Process every message on the bus; the number of messages."""
    seen = 0
    while messages := run.poll(100):
        run.process(messages)
        seen += len(messages)
    return seen


def test_an_idle_commit_waits_for_the_writer_without_blocking_processing(
    tmp_path: Path,
) -> None:
    bus = LocalBus(tmp_path / "bus")
    tables = LakeTables(LakeStorage.from_url((tmp_path / "lake").as_uri()))
    warehouse = GatedWarehouse(tmp_path / "wh.duckdb")
    options = PipelineOptions(group="g", partitions=2, alerts_topic=None)
    sink = StreamSink(tables, "g", warehouse)
    stats = ProcessStats()
    processor = StreamProcessor(options.config)
    run = ProcessingRun(bus, sink, options, stats, None, processor, {}, {}, None)
    produce(bus, 300, seed=1)
    with bus.consumer("g", ["ticks"]) as consumer:
        run.consumer = consumer
        try:
            first = poll_all(run)
            assert not run.commit()  # sealed; the writer waits at the gate
            assert consumer.lag() == first

            produce(bus, 200, seed=2)
            second = poll_all(run)
            assert stats.ticks == 500  # processed while the writer still waits
            assert not run.commit()
            assert consumer.lag() == first + second

            warehouse.gate.set()
            run.writer.drain()
            assert run.commit()
            assert consumer.lag() == 0
        finally:
            warehouse.gate.set()
            run.close()
    assert tables.read("curated/ticks").num_rows == 500
    assert sink.checkpoints.load().positions == dict(run.positions)


def test_a_big_poll_is_processed_in_parts_sealed_when_due(tmp_path: Path) -> None:
    bus = LocalBus(tmp_path / "bus")
    tables = LakeTables(LakeStorage.from_url((tmp_path / "lake").as_uri()))
    options = PipelineOptions(group="g", partitions=2, alerts_topic=None, commit_ticks=1)
    sink = StreamSink(tables, "g")
    stats = ProcessStats()
    run = ProcessingRun(
        bus, sink, options, stats, None, StreamProcessor(options.config), {}, {}, None
    )
    source = SimTickSource(["AAPL", "MSFT"], start=START, count=3_000, seed=3, batch_size=10)
    with TickProducer(bus, "ticks", 2) as producer:
        for batch in source.ticks():
            producer.send(batch)
    total = producer.stats.messages
    assert total > 2 * PROCESS_MESSAGES
    with bus.consumer("g", ["ticks"]) as consumer:
        run.consumer = consumer
        try:
            messages = run.poll(total)
            assert len(messages) == total
            run.process_poll(messages)
            assert run.commit(force=True)
            assert consumer.lag() == 0
        finally:
            run.close()
    parts = -(-total // PROCESS_MESSAGES)
    appends = [c for c in tables.history("curated/ticks") if "marketlake.stream.g" in c]
    assert len(appends) == parts  # sealed after every part but the last, then at the commit
    assert stats.ticks == tables.read("curated/ticks").num_rows == 3_000


def test_a_run_until_caught_up_writes_the_closed_sessions_with_its_last_batch(
    tmp_path: Path,
) -> None:
    """Ticks of a session long closed: the run closes it once every message is read, before
    its last batch is sealed, so the final rows are not a lake write of their own."""
    from marketlake.catalogue import BARS_1M, STREAM_WINDOWS, TICKS
    from marketlake.streaming.runtime.pipeline import StreamPipeline

    bus = LocalBus(tmp_path / "bus")
    produce(bus, 3_000, seed=5)
    tables = LakeTables(LakeStorage.from_url((tmp_path / "lake").as_uri()))
    options = PipelineOptions(topic="ticks", partitions=2, alerts_topic=None)
    options.commit_interval_s = 3600.0  # one batch: sealed when the bus is idle
    stats = StreamPipeline(bus, tables, options).run(until_caught_up=True)
    assert stats.ticks == 3_000 and stats.lag == 0
    windows = tables.read(STREAM_WINDOWS.lake_table)
    assert windows.num_rows > 0 and all(windows.column("is_final").to_pylist())
    assert sum(tables.read(BARS_1M.lake_table).column("trades").to_pylist()) == 3_000
    for table in (TICKS, BARS_1M, STREAM_WINDOWS):
        assert len(tables.history(table.lake_table)) == 1, table.name
