"""Benchmark: ``marketlake run`` end to end, as a user runs it (a new process each time).

Run by hand: ``python benchmarks/bench_run.py [--runs N] [--skip-large]``.

(a) the defaults (10 symbols x one year, about 2,500 daily bars), wall time including
    process start-up, beside a baseline process that only imports the libraries the run
    needs (the floor any Python implementation of the command pays);
(b) 500 symbols x 10 years (about 1.26 M bars) on the embedded components, beside the time
    pyarrow takes to write the same bars to one Parquet file in this process.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

LARGE_SYMBOLS = [f"S{i:03d}" for i in range(500)]
LARGE_START, LARGE_END = date(2015, 1, 1), date(2024, 12, 31)
IMPORTS = "import pyarrow, polars, duckdb, deltalake, typer, rich, pydantic_settings, numpy"


def _wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def _run_cmd(home: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "marketlake", "run", "--home", str(home), "--quiet", *extra]


def bench_defaults(runs: int) -> None:
    """(a): a fresh home per run, so every run does the whole work."""
    baseline = [_wall([sys.executable, "-c", IMPORTS]) for _ in range(runs)]
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        _wall(_run_cmd(Path(tmp) / "warm"))  # builds the session calendar cache once
        for i in range(runs):
            times.append(_wall(_run_cmd(Path(tmp) / f"h{i}")))
    run, base = statistics.median(times), statistics.median(baseline)
    print(f"(a) marketlake run, defaults: median {run:.3f} s wall over {runs} runs (target 1.5 s)")
    print(f"    baseline, python importing the libraries only: {base:.3f} s")
    print(f"    ratio run / baseline: {run / base:.2f}")


def bench_large(runs: int) -> None:
    """(b): 500 symbols x 10 years, beside a raw Parquet write of the same bars."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from marketlake.sources.sim import simulate_bars

    bars, _ = simulate_bars(LARGE_SYMBOLS, LARGE_START, LARGE_END)
    baseline = []
    for _ in range(runs):
        start = time.perf_counter()
        pq.write_table(bars, pa.BufferOutputStream())
        baseline.append(time.perf_counter() - start)
    times = []
    extra = [
        "--symbols",
        ",".join(LARGE_SYMBOLS),
        "--start",
        LARGE_START.isoformat(),
        "--end",
        LARGE_END.isoformat(),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(runs):
            times.append(_wall(_run_cmd(Path(tmp) / f"h{i}", *extra)))
    run, base = statistics.median(times), statistics.median(baseline)
    print(
        f"(b) marketlake run, 500 symbols x 10 years ({bars.num_rows:,} bars): "
        f"median {run:.2f} s wall over {runs} runs (target 5 s)"
    )
    print(f"    baseline, pyarrow Parquet write of the same bars: {base:.3f} s")
    print(f"    ratio run / baseline: {run / base:.1f}")


def main() -> None:
    """Parse the options and print both benchmarks."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--skip-large", action="store_true")
    args = parser.parse_args()
    bench_defaults(args.runs)
    if not args.skip_large:
        bench_large(max(3, args.runs // 2))


if __name__ == "__main__":
    main()
