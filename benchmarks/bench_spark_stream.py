"""The Spark stream processor (``--engine spark``) beside the embedded one on the same ticks.

- throughput: the same ticks, already on the local log, processed until caught up into the
  lake by each engine (ticks/s); Spark's session start-up is timed apart and shown as its share
  of Spark's total;
- latency: a producer paced at ``--rate`` ticks/s for ``--seconds`` while each engine runs
  (Spark with its 1 s trigger), p50 and p99 of the wall time from a message's hand-over to the
  producer to the processor's emission of the windows that include it (as in
  ``bench_stream_pipeline.py``; the lake write is not waited for).

Run: ``python benchmarks/bench_spark_stream.py [--ticks N] [--rate R] [--seconds S]``.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from marketlake.bus.registry import open_bus
from marketlake.engines.spark.session import open_session
from marketlake.lake.storage import LakeStorage
from marketlake.lake.tables import LakeTables
from marketlake.settings import SparkSettings
from marketlake.sources.live import SimTickSource
from marketlake.streaming.runtime.pipeline import PipelineOptions, StreamPipeline
from marketlake.streaming.runtime.producer import TickProducer, produce_ticks
from marketlake.streaming.runtime.stats import ProcessStats
from marketlake.streaming.spark.pipeline import SparkStreamPipeline

SYMBOLS = ["AAPL", "MSFT", "GOOGL", "AMZN", "META", "TSLA", "NVDA", "INTC", "JPM", "V"]
START = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)
# A loaded machine starts Python workers slowly: give them a minute to connect back.
SPARK = SparkSettings(
    master="local[2]",
    conf={"spark.ui.enabled": "false", "spark.python.authenticate.socketTimeout": "60s"},
)


def _source(count: int, rate: float | None = None) -> SimTickSource:
    return SimTickSource(
        SYMBOLS, rate_per_s=rate, start=START, count=count, event_rate_per_s=2000, batch_size=20_000
    )


def _pipeline(engine: str, url: str, root: Path, topic: str) -> Any:
    tables = LakeTables(LakeStorage.from_url((root / f"lake-{engine}").resolve().as_uri()))
    options = PipelineOptions(group=f"bench-{engine}-{topic}", topic=topic, alerts_topic=None)
    bus = open_bus(url)
    if engine == "embedded":
        return StreamPipeline(bus, tables, options)
    checkpoint = root / "checkpoints" / options.group
    return SparkStreamPipeline(bus, url, tables, options, SPARK, checkpoint)


def throughput(engine: str, url: str, root: Path, ticks: int) -> tuple[float, float]:
    """Ticks/s and seconds of processing ``ticks`` already on the bus, until caught up."""
    topic = f"backlog-{engine}"
    producer = TickProducer(open_bus(url), topic, 4)
    for batch in _source(ticks).ticks():
        producer.send(batch)
    producer.close()
    pipeline = _pipeline(engine, url, root, topic)
    started = time.perf_counter()
    stats: ProcessStats = pipeline.run(until_caught_up=True)
    took = time.perf_counter() - started
    pipeline.bus.close()
    return stats.ticks / took, took


def latency(engine: str, url: str, root: Path, rate: float, seconds: float) -> tuple[float, float]:
    """p50 and p99 send-to-window latency (ms) with the producer paced at ``rate`` ticks/s."""
    topic = f"paced-{engine}"
    pipeline = _pipeline(engine, url, root, topic)
    pipeline.bus.create_topic(topic, 4)
    done = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            pipeline.run(until_caught_up=True, upstream_done=done.is_set)
        except BaseException as exc:  # raised again below
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(5.0 if engine == "spark" else 1.5)  # the query has started and polls
    source = _source(int(seconds * rate), rate)
    source.linger_s = 0.001
    producer = TickProducer(open_bus(url), topic, 4)
    produce_ticks(producer, source)
    producer.close()
    done.set()
    thread.join()
    pipeline.bus.close()
    if errors:
        raise errors[0]
    stats = pipeline.stats
    return (stats.latency_ms(0.5) or float("nan"), stats.latency_ms(0.99) or float("nan"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=200_000)
    parser.add_argument("--rate", type=float, default=2_000)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    handle = open_session(SPARK)
    print(f"spark session start-up: {handle.start_s:.2f} s (master {SPARK.master})")
    rows: dict[str, tuple[float, float, float, float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        url = f"local://{root / 'bus'}"
        for engine in ("embedded", "spark"):
            rate, took = throughput(engine, url, root, args.ticks)
            p50, p99 = latency(engine, url, root, args.rate, args.seconds)
            rows[engine] = (rate, took, p50, p99)
    handle.stop()
    print(f"{args.ticks:,} ticks until caught up; latency at {args.rate:,.0f} ticks/s")
    print(f"{'engine':<10} {'ticks/s':>12} {'seconds':>9} {'p50 ms':>9} {'p99 ms':>9}")
    for engine, (rate, took, p50, p99) in rows.items():
        print(f"{engine:<10} {rate:>12,.0f} {took:>9.2f} {p50:>9.1f} {p99:>9.1f}")
    embedded, spark = rows["embedded"], rows["spark"]
    share = handle.start_s / (handle.start_s + spark[1])
    print(
        f"spark / embedded: throughput {spark[0] / embedded[0]:.3f}x, "
        f"p99 latency {spark[3] / embedded[3]:.1f}x; session start-up is {share:.0%} of "
        "spark's start-up plus its caught-up run"
    )


if __name__ == "__main__":
    main()
