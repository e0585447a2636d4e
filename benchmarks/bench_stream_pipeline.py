"""Stream pipeline throughput and latency, beside the bare bus rates measured in the same run.

- local log → processor → lake (target >= 1 M ticks/s), beside the bare produce and consume
  rate of the local log;
- Kafka (Tansu) → processor → lake, group join included (target >= 300k ticks/s), beside
  Tansu's bare rates;
- p99 tick-to-window latency at a paced 10k ticks/s on the local log (target <= 50 ms).

Every throughput is shown twice: end to end (``total``), and from the start of the first poll
that returned messages to the end (``after join``; bare consumers read like the pipeline, as
the group's sole consumer (``Bus.sole_consumer``), 512 messages a poll with a 0.1 s timeout,
so at most 0.1 s of the start is counted in). The difference is the consumer's start: a group
member waits for the broker's join (Tansu holds a new group's first join for about 3 s with
the bus's ``session.timeout.ms`` of 6 s); the pipeline's sole consumer is assigned the
partitions instead, so on Kafka it only fetches the group's offsets and the topic's metadata.
Both figures are printed; neither replaces the other.

Latency is the wall time from the moment a tick's message is handed to the producer
(header ``sent_at_us``) to the moment the processor has returned the emission (window rows,
provisional or final) that includes that tick. It does not wait for the lake write, which runs
in the sink writer thread; the sink's commit interval is the pipeline's default.

Run: ``python benchmarks/bench_stream_pipeline.py [--ticks N] [--runs R] [--no-kafka]
[--arrow-pool jemalloc|default]`` (jemalloc, as the stream commands use, by default).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

from marketlake.arrow_pool import prefer_jemalloc
from marketlake.bus.base import Bus, Consumer, Message, Producer, Retention
from marketlake.bus.registry import open_bus
from marketlake.lake.storage import LakeStorage
from marketlake.lake.tables import LakeTables
from marketlake.sources.live import SimTickSource
from marketlake.streaming.runtime.pipeline import PipelineOptions, StreamPipeline
from marketlake.streaming.runtime.producer import TickProducer, produce_ticks

SYMBOLS = ["AAPL", "MSFT", "GOOGL", "AMZN", "META", "TSLA", "NVDA", "INTC", "JPM", "V"]
START = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)


def _source(count: int, rate: float | None = None) -> SimTickSource:
    return SimTickSource(
        SYMBOLS, rate_per_s=rate, start=START, count=count, event_rate_per_s=2000, batch_size=20_000
    )


def _batches(count: int) -> list[pa.RecordBatch]:
    return list(_source(count).ticks())


class _TimedConsumer(Consumer):
    """A consumer that notes when its first non-empty poll was called (a poll waits for
    messages for at most its timeout, so this is at most one timeout after the join)."""

    def __init__(self, inner: Consumer, clock: dict[str, float]) -> None:
        self.inner = inner
        self.clock = clock

    def poll(self, max_messages: int = 1000, timeout_s: float = 1.0) -> list[Message]:
        called = time.perf_counter()
        out = self.inner.poll(max_messages, timeout_s)
        if out and "first" not in self.clock:
            self.clock["first"] = called
        return out

    def commit(self) -> None:
        self.inner.commit()

    def lag(self) -> int:
        return self.inner.lag()

    def close(self) -> None:
        self.inner.close()


class _TimedBus(Bus):
    """``inner`` with consumers that note their first non-empty poll."""

    def __init__(self, inner: Bus) -> None:
        self.inner = inner
        self.clock: dict[str, float] = {}

    def create_topic(
        self, topic: str, partitions: int | None = None, retention: Retention | None = None
    ) -> None:
        self.inner.create_topic(topic, partitions, retention)

    def producer(self) -> Producer:
        return self.inner.producer()

    def consumer(self, group: str, topics: Sequence[str]) -> Consumer:
        return _TimedConsumer(self.inner.consumer(group, topics), self.clock)

    def sole_consumer(self, group: str, topics: Sequence[str]) -> Consumer:
        return _TimedConsumer(self.inner.sole_consumer(group, topics), self.clock)

    def close(self) -> None:
        self.inner.close()


def bare_rates(url: str, batches: list[pa.RecordBatch], topic: str) -> tuple[float, float, float]:
    """Ticks/s of producing ``batches`` (encoded, keyed) and of consuming them back (total and
    after the group join)."""
    bus = open_bus(url)
    ticks = sum(b.num_rows for b in batches)
    producer = TickProducer(bus, topic, 4)
    started = time.perf_counter()
    for batch in batches:
        producer.send(batch)
    producer.flush()
    produce_s = time.perf_counter() - started
    producer.close()
    messages = producer.stats.messages
    seen = 0
    timed = _TimedBus(bus)
    with timed.sole_consumer(f"bare-{topic}", [topic]) as consumer:
        started = time.perf_counter()
        while seen < messages:
            seen += len(consumer.poll(PipelineOptions.max_messages, PipelineOptions.poll_timeout_s))
        ended = time.perf_counter()
    bus.close()
    return ticks / produce_s, ticks / (ended - started), ticks / (ended - timed.clock["first"])


def pipeline_rate(
    url: str, batches: list[pa.RecordBatch], topic: str, lake_dir: Path
) -> tuple[float, float]:
    """Ticks/s from the bus through the processor into the lake (already produced data), in
    total and after the group join."""
    bus = _TimedBus(open_bus(url))
    producer = TickProducer(bus.inner, topic, 4)
    for batch in batches:
        producer.send(batch)
    producer.close()
    tables = LakeTables(LakeStorage.from_url(lake_dir.resolve().as_uri()))
    options = PipelineOptions(group=f"bench-{topic}", topic=topic, alerts_topic=None)
    pipeline = StreamPipeline(bus, tables, options)
    started = time.perf_counter()
    stats = pipeline.run(until_caught_up=True)
    ended = time.perf_counter()
    bus.close()
    return stats.ticks / (ended - started), stats.ticks / (ended - bus.clock["first"])


def latency_p99(url: str, lake_dir: Path, seconds: float, rate: float) -> float:
    """p99 send-to-window latency (ms) with the producer paced at ``rate`` ticks/s."""
    bus = open_bus(url)
    tables = LakeTables(LakeStorage.from_url(lake_dir.resolve().as_uri()))
    options = PipelineOptions(group="bench-latency", topic="latency", alerts_topic=None)
    pipeline = StreamPipeline(bus, tables, options)
    done = threading.Event()
    thread = threading.Thread(
        target=lambda: pipeline.run(until_caught_up=True, upstream_done=done.is_set)
    )
    thread.start()
    time.sleep(1.5)  # the processor has joined and polls an empty topic
    source = _source(int(seconds * rate), rate)
    source.linger_s = 0.001
    producer = TickProducer(bus, "latency", 4)
    produce_ticks(producer, source)
    producer.close()
    done.set()
    thread.join()
    bus.close()
    p99 = pipeline.stats.latency_ms(0.99)
    return float("nan") if p99 is None else p99


def _median(label: str, runs: int, measure: Callable[[int], tuple[float, ...]]) -> list[float]:
    results = [measure(i) for i in range(runs)]
    medians = [statistics.median(column) for column in zip(*results, strict=True)]
    print(f"  {label}: {', '.join(f'{m:,.0f}' for m in medians)}", flush=True)
    return medians


def bench_bus(name: str, url_for: Callable[[int], str], ticks: int, runs: int, root: Path) -> None:
    batches = _batches(ticks)
    total = sum(b.num_rows for b in batches)
    print(f"{name}: {total:,} ticks, median of {runs} runs", flush=True)
    produce, consume, consume_joined = _median(
        "bare produce / consume total / consume after join, ticks/s",
        runs,
        lambda i: bare_rates(url_for(i), batches, f"bare{i}"),
    )
    rate, rate_joined = _median(
        "bus → processor → lake total / after join, ticks/s",
        runs,
        lambda i: pipeline_rate(url_for(100 + i), batches, f"pipe{i}", root / f"{name}-lake{i}"),
    )
    print(
        f"  pipeline / bare consume = {rate / consume:.2f} total, "
        f"{rate_joined / consume_joined:.2f} after join; pipeline / bare produce = "
        f"{rate / produce:.2f}",
        flush=True,
    )


def main() -> None:
    """Run every benchmark and print the medians next to their baselines."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--ticks", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-kafka", action="store_true")
    parser.add_argument(
        "--arrow-pool",
        choices=("jemalloc", "default"),
        default="jemalloc",
        help="Arrow's memory pool: jemalloc, as the stream commands use, or pyarrow's default",
    )
    args = parser.parse_args()
    if args.arrow_pool == "jemalloc":
        prefer_jemalloc()
    print(f"Arrow memory pool: {pa.default_memory_pool().backend_name}")
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        bench_bus("local", lambda i: f"local://{root}/bus{i}", args.ticks, args.runs, root)
        if not args.no_kafka:
            sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
            from services.tansu import start_tansu, stop_tansu

            url, broker = start_tansu(root)
            try:
                bench_bus("kafka", lambda i: url, args.ticks, args.runs, root)
            finally:
                stop_tansu(broker)
        p99s = [
            latency_p99(f"local://{root}/lat{i}", root / f"lat-lake{i}", 5.0, 10_000)
            for i in range(args.runs)
        ]
        print(
            f"latency at 10k ticks/s (local): p99 {statistics.median(p99s):.1f} ms "
            f"(target <= 50 ms; runs: {', '.join(f'{p:.1f}' for p in p99s)})"
        )


if __name__ == "__main__":
    main()
