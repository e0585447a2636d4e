"""Benchmark: ``marketlake run --engine spark`` beside the Polars engine, in the same run.

Run by hand: ``python benchmarks/bench_spark.py [--runs N] [--skip-large]
[--symbols 500 --years 10] [--master local[2]]``.

Each case runs ``marketlake run`` as a user does (a new process, a fresh home) with
``--engine local`` and with ``--engine spark``, interleaved so both see the same load:
(a) the defaults (10 symbols x one year, about 2,500 daily bars);
(b) 500 symbols x 10 years (about 1.26 M bars).
It prints the wall time of each run and of its ``process`` stage (from the ``runs`` table),
the ratio Spark / Polars, and how much of the Spark figure is starting the JVM and the Spark
session (recorded by the engine in the stage's ``detail``). For scale: the platform this
project replaces took 25 s to process 2,500 records with Spark.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import duckdb


def _run(home: Path, engine: str, master: str, extra: list[str]) -> dict[str, float]:
    """One ``marketlake run`` in a new process: wall, process stage and Spark start-up."""
    env = {**os.environ, "MARKETLAKE_SPARK__MASTER": master}
    cmd = [sys.executable, "-m", "marketlake", "run", "--home", str(home), "--quiet"]
    began = time.perf_counter()
    subprocess.run([*cmd, "--engine", engine, *extra], env=env, check=True)
    wall = time.perf_counter() - began
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        ((seconds, detail),) = con.execute(
            "SELECT duration_s, detail FROM runs WHERE stage = 'process'"
        ).fetchall()
    finally:
        con.close()
    start = float(json.loads(detail).get("spark_session_start_s", 0.0))
    return {"wall": wall, "process": float(seconds), "start": start}


def bench(label: str, runs: int, master: str, extra: list[str]) -> None:
    """Runs of both engines on the same data, interleaved; print medians and ratios."""
    figures: dict[str, list[dict[str, float]]] = {"local": [], "spark": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(runs):
            for engine in figures:
                figures[engine].append(_run(Path(tmp) / f"{engine}-{i}", engine, master, extra))

    def median(engine: str, key: str) -> float:
        return statistics.median(f[key] for f in figures[engine])

    local_wall, spark_wall = median("local", "wall"), median("spark", "wall")
    local_proc, spark_proc = median("local", "process"), median("spark", "process")
    start = median("spark", "start")
    print(f"{label} ({runs} runs each, median; Spark master {master})")
    print(f"    run, Polars engine: {local_wall:.2f} s wall, process stage {local_proc:.2f} s")
    print(f"    run, Spark engine:  {spark_wall:.2f} s wall, process stage {spark_proc:.2f} s")
    print(f"    ratio Spark / Polars: run {spark_wall / local_wall:.1f}x, ", end="")
    print(f"process stage {spark_proc / max(local_proc, 1e-9):.1f}x")
    share = start / spark_proc if spark_proc else float("nan")
    print(
        f"    JVM + Spark session start-up: {start:.2f} s, {share:.0%} of the Spark process "
        f"stage; the stage without it: {spark_proc - start:.2f} s "
        f"({(spark_proc - start) / max(local_proc, 1e-9):.1f}x the Polars engine)"
    )


def main() -> None:
    """Parse the options and print both cases."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--large-runs", type=int, default=1)
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args()
    bench("(a) defaults, 10 symbols x 1 year", args.runs, args.master, [])
    if args.skip_large:
        return
    names = [f"S{i:03d}" for i in range(args.symbols)]
    end = date(2024, 12, 31)
    start = date(end.year - args.years + 1, 1, 1)
    extra = ["--symbols", ",".join(names), "--start", start.isoformat(), "--end", end.isoformat()]
    label = f"(b) {args.symbols} symbols x {args.years} years"
    bench(label, args.large_runs, args.master, extra)


if __name__ == "__main__":
    main()
