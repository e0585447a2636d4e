"""Stream processor benchmark: throughput (ticks/s) and p99 tick-to-window latency.

Throughput: ~2 M simulated ticks (10 symbols, one session) through a fresh
:class:`~marketlake.streaming.StreamProcessor` in batches, median of 5 runs, next to a bare
Polars group-by of the same ticks into 1-minute OHLCV buckets measured in the same run.

Latency: a :class:`~marketlake.sources.live.SimTickSource` paced at 10k ticks/s feeds the
processor directly; a tick's latency is the wall time from the instant it was due to be sent
until ``process`` returned the (provisional) window row containing it.

Run: ``python benchmarks/bench_stream.py [--ticks N] [--batch N] [--seconds S]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime

import numpy as np
import polars as pl
import pyarrow as pa

from marketlake.sources.live import SimTickSource
from marketlake.streaming import StreamConfig, StreamProcessor
from marketlake.symbols import DEFAULT_SYMBOLS

START = datetime(2025, 11, 25, 14, 30, tzinfo=UTC)
RUNS = 5


def make_ticks(count: int) -> pa.Table:
    """``count`` simulated ticks of the default symbols over about one session."""
    rate = count / 23_000.0
    source = SimTickSource(
        DEFAULT_SYMBOLS, start=START, count=count, event_rate_per_s=rate, batch_size=count
    )
    return pa.Table.from_batches(list(source.ticks())).combine_chunks()


def run_processor(batches: list[pa.RecordBatch]) -> float:
    """Seconds to push ``batches`` through a fresh processor and flush it."""
    processor = StreamProcessor(StreamConfig())
    started = time.perf_counter()
    for batch in batches:
        processor.process(batch)
    processor.flush_all()
    return time.perf_counter() - started


def run_baseline(table: pa.Table) -> float:
    """Seconds for a bare Polars group-by of the ticks into 1-minute OHLCV buckets."""
    started = time.perf_counter()
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    frame.sort("ts").group_by("symbol", pl.col("ts").dt.truncate("1m")).agg(
        open=pl.col("price").first(),
        high=pl.col("price").max(),
        low=pl.col("price").min(),
        close=pl.col("price").last(),
        volume=pl.col("size").sum(),
        trades=pl.len(),
    )
    return time.perf_counter() - started


def measure_latency(rate: float, seconds: float) -> np.ndarray:
    """Per-tick latencies (s) with the source paced at ``rate`` ticks per wall second."""
    source = SimTickSource(DEFAULT_SYMBOLS, rate_per_s=rate, start=START, count=int(rate * seconds))
    source.open()  # the simulator's set-up (daily bars, the session's layout) is not a tick's wait
    warm = StreamProcessor(StreamConfig())  # first calls pay one-off start-up costs
    warm.process(make_ticks(1_000).to_batches()[0])
    processor = StreamProcessor(StreamConfig())
    latencies: list[np.ndarray] = []
    sent = 0
    started = time.perf_counter()
    for batch in source.ticks():
        out = processor.process(batch)
        done = time.perf_counter()
        assert out.windows.num_rows > 0
        due = started + (sent + np.arange(batch.num_rows)) / rate
        latencies.append(done - due)
        sent += batch.num_rows
    return np.concatenate(latencies)


def main() -> None:
    """Print throughput against the baseline, and the latency percentiles."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=2_000_000)
    parser.add_argument("--batch", type=int, default=50_000, help="ticks per process() call")
    parser.add_argument("--rate", type=float, default=10_000.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()

    table = make_ticks(args.ticks)
    batches = table.to_batches(max_chunksize=args.batch)
    run_processor(batches[:2])  # warm-up
    ours = statistics.median(run_processor(batches) for _ in range(RUNS))
    base = statistics.median(run_baseline(table) for _ in range(RUNS))
    print(f"ticks: {table.num_rows:,} in batches of {args.batch:,} (median of {RUNS} runs)")
    print(f"stream processor : {table.num_rows / ours:>12,.0f} ticks/s  ({ours:.2f} s)")
    print(f"polars group_by  : {table.num_rows / base:>12,.0f} ticks/s  ({base:.2f} s) baseline")
    print(f"ratio processor/baseline throughput: {base / ours:.3f}")
    print("target: >= 250,000 ticks/s")

    latency = measure_latency(args.rate, args.seconds) * 1e3
    p50, p99, worst = np.percentile(latency, [50, 99, 100])
    print(
        f"latency at {args.rate:,.0f} ticks/s over {args.seconds:.0f} s: "
        f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {worst:.1f} ms (target p99 <= 50 ms)"
    )


if __name__ == "__main__":
    main()
