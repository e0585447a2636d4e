"""Benchmark: simulated history of 500 symbols x 10 years, against a raw Parquet write.

Run by hand: ``python benchmarks/bench_sim.py``. Prints the median CPU and wall time of
several runs of ``simulate_bars`` and of ``SimSource.fetch_history`` (which adds the raw JSON
payloads), next to the time pyarrow takes to write the same bars to Parquet in memory.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import date

import pyarrow as pa
import pyarrow.parquet as pq

from marketlake.calendar import get_sessions
from marketlake.sources.sim import SimSource, simulate_bars

SYMBOLS = [f"S{i:03d}" for i in range(500)]
START, END = date(2015, 1, 1), date(2024, 12, 31)
RUNS = 5


def measure(action: Callable[[], object]) -> tuple[float, float]:
    """Median (cpu, wall) seconds of ``action`` over RUNS runs."""
    cpu, wall = [], []
    for _ in range(RUNS):
        c0, w0 = time.process_time(), time.perf_counter()
        action()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return statistics.median(cpu), statistics.median(wall)


def main() -> None:
    """Print the figures and their ratio to the Parquet baseline."""
    get_sessions("XNYS")
    bars, _ = simulate_bars(SYMBOLS, START, END)

    def write_parquet() -> None:
        pq.write_table(bars, pa.BufferOutputStream())

    source = SimSource()
    base_cpu, base_wall = measure(write_parquet)
    print(
        f"baseline parquet write of {bars.num_rows} bars: cpu {base_cpu:.3f}s wall {base_wall:.3f}s"
    )
    for label, action in (
        ("simulate_bars", lambda: simulate_bars(SYMBOLS, START, END)),
        ("fetch_history", lambda: list(source.fetch_history(SYMBOLS, START, END))),
    ):
        cpu, wall = measure(action)
        print(f"{label}: cpu {cpu:.3f}s wall {wall:.3f}s ratio {cpu / base_cpu:.1f}x")


if __name__ == "__main__":
    main()
