"""Lake write benchmark: Delta create / MERGE / replace_symbols against a raw Parquet write.

Run by hand: ``python benchmarks/bench_lake.py [--symbols 500 --days 2520 --runs 3]``.
Prints the median of several runs of each operation next to the baseline (pyarrow writing
the same rows to one Parquet file) and the ratio.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from marketlake.lake import LakeStorage, LakeTables
from marketlake.schemas import BAR_KEYS, BAR_SCHEMA


def make_bars(symbols: int, days: int, shift: float = 0.0) -> pa.Table:
    """``symbols`` x ``days`` daily bars with deterministic prices."""
    start = datetime(2015, 1, 1, tzinfo=UTC)
    ts = np.array([start + timedelta(days=d) for d in range(days)], dtype="datetime64[us]")
    names = [f"S{i:04d}" for i in range(symbols)]
    rng = np.random.default_rng(7)
    n = symbols * days
    close = 100 + rng.standard_normal(n).cumsum() * 0.1 + shift
    return pa.table(
        {
            "symbol": pa.array(np.repeat(names, days)),
            "ts": pa.array(np.tile(ts, symbols), pa.timestamp("us", tz="UTC")),
            "open": close,
            "high": close + 1,
            "low": close - 1,
            "close": close,
            "volume": rng.integers(1, 10**6, n).astype("float64"),
            "source": pa.array(["sim"] * n),
            "ingested_at": pa.array([start] * n, pa.timestamp("us", tz="UTC")),
        },
        schema=BAR_SCHEMA,
    )


def median_time(
    runs: int, setup: Callable[[Path], object], operation: Callable[[Path], object]
) -> float:
    """Median wall time of ``operation`` over ``runs`` fresh folders prepared by ``setup``."""
    times = []
    for _ in range(runs):
        folder = Path(tempfile.mkdtemp(prefix="bench-lake-"))
        try:
            setup(folder)
            start = time.perf_counter()
            operation(folder)
            times.append(time.perf_counter() - start)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return statistics.median(times)


def bench(symbols: int, days: int, runs: int) -> None:
    """Print the figures for one data size."""
    first = make_bars(symbols, days)
    changed = make_bars(symbols, days, shift=1.0)
    names = [f"S{i:04d}" for i in range(symbols)]
    name = "curated/bars_1d"

    def tables(folder: Path) -> LakeTables:
        return LakeTables(LakeStorage.from_url(str(folder / "lake")))

    def nothing(folder: Path) -> None:
        return None

    def create(folder: Path) -> None:
        tables(folder).merge(name, first, BAR_KEYS)

    baseline = median_time(runs, nothing, lambda f: pq.write_table(first, f / "bars.parquet"))
    cases = {
        "create (first write)": (nothing, create),
        "merge, same rows again": (create, lambda f: tables(f).merge(name, first, BAR_KEYS)),
        "merge, every row changed": (create, lambda f: tables(f).merge(name, changed, BAR_KEYS)),
        "replace_symbols, all symbols": (
            create,
            lambda f: tables(f).replace_symbols(name, changed, names),
        ),
    }
    print(f"\n{first.num_rows:,} rows ({symbols} symbols x {days} days), median of {runs} runs")
    print(f"  baseline pyarrow.parquet.write_table: {baseline:8.3f} s")
    for label, (setup, operation) in cases.items():
        seconds = median_time(runs, setup, operation)
        print(f"  {label:32s} {seconds:8.3f} s  ratio {seconds / baseline:6.1f}x")


def main() -> None:
    """Benchmark the 2,500-row default run size and the 1.26 M-row large size."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--large-symbols", type=int, default=500)
    parser.add_argument("--large-days", type=int, default=2520)
    args = parser.parse_args()
    bench(10, 250, args.runs)
    bench(args.large_symbols, args.large_days, args.runs)


if __name__ == "__main__":
    main()
