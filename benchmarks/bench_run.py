"""Benchmark: ``marketlake run`` end to end, as a user runs it (a new process each time).

Run by hand: ``python benchmarks/bench_run.py [--runs N] [--skip-large]
[--symbols 1000 --years 20] [--against OTHER/src]``.

(a) the defaults (10 symbols x one year, about 2,500 daily bars), wall time including
    process start-up, beside a baseline process that only imports the libraries the run
    needs (the floor any Python implementation of the command pays);
(b) 500 symbols x 10 years (about 1.26 M bars; ``--symbols``/``--years`` choose another
    size) on the embedded components, beside the time pyarrow takes to write the same bars
    to one Parquet file in this process;
(c) the run of (b) twice more in the same home, with nothing new to fetch, beside the first;
(d) the daily run: in a home that holds the run of (b) up to the day before its last day, the
    run of (b) again, which brings that one session, beside the first run of (b).

Every figure is a median over the runs, with the peak memory (maximum resident set size) of
the run's process; (b) and (d) also give each stage's median seconds, as the run recorded
them in its warehouse's ``runs`` table. ``--against`` runs another checkout's ``src`` folder
the same way, runs interleaved, so a change and its baseline are measured under the same
load. Child processes may write bytecode caches, as an installed package has them.

Every run gets a home folder of its own, and the homes are deleted after the last measured
run, not between runs (unless the disk lacks room for them all, which the benchmark then
says). On ext4 without a journal (this machine's root file system) the inode allocator skips
every inode freed in the last minute or more, reading its inode-table block to tell, so
files created soon after many deletions cost several times the kernel time: 500 files
written, fsynced and renamed as the raw payloads are took 0.87 s of system time right
after 5,000 deletions, 0.23 s after a quiet minute and a half. A first run creates about
600 files. Four pairs of runs 20 s after 2,500 files were written and then deleted or kept
took 5.83 s against 4.56 s, 6.85 against 5.91, 6.04 against 5.30 and 5.23 against 5.03 at
500 x 10; the benchmark's own deletions (fewer, and 10-20 s older) showed no difference
beyond the noise, but the homes are kept so that they cannot.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

IMPORTS = "import pyarrow, polars, duckdb, deltalake, typer, rich, pydantic_settings, numpy"
DEFAULTS_TARGET_S = 1.0
TARGETS = {(500, 10): (5.0, 1.0), (1000, 20): (20.0, 1.5)}  # (symbols, years): (s, GB)


def _env(src: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    if src is not None:
        env["PYTHONPATH"] = src
    return env


def _measure(cmd: list[str], src: str | None = None) -> tuple[float, float]:
    """Wall seconds and peak resident memory (GB) of one child process.

    Files written before (the previous run, a home built for the daily run) are flushed to
    the disk first, so their writeback does not land in the measured run."""
    os.sync()
    start = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, env=_env(src))
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} ... failed with exit code {child.returncode}")
    return wall, usage.ru_maxrss / 1024**2  # ru_maxrss is in KB on Linux


def _run_cmd(home: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "marketlake", "run", "--home", str(home), "--quiet", *extra]


def _report(label: str, figures: list[tuple[float, float]], target: str) -> float:
    wall = statistics.median(f[0] for f in figures)
    peak = max(f[1] for f in figures)
    print(
        f"{label}: median {wall:.3f} s wall over {len(figures)} runs, "
        f"peak memory {peak:.2f} GB ({target})"
    )
    return wall


def _stage_seconds(home: Path) -> dict[str, float]:
    """Seconds of each stage of the last run in ``home``, from its warehouse's ``runs``."""
    import duckdb

    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute(
            "SELECT stage, duration_s FROM runs WHERE status = 'succeeded' AND run_id = "
            "(SELECT run_id FROM runs ORDER BY started_at DESC LIMIT 1)"
        ).fetchall()
    return {str(stage): float(seconds) for stage, seconds in rows}


def _report_stages(label: str, runs: list[dict[str, float]]) -> None:
    order = ["fetch_history", "consume_history", "process", "load_warehouse", "success"]
    medians = [
        f"{stage} {statistics.median(r[stage] for r in runs):.2f}"
        for stage in order
        if all(stage in r for r in runs)
    ]
    print(f"    {label} by stage (median s): {', '.join(medians)}")


def _variants(against: str | None) -> list[tuple[str, str | None]]:
    own = os.environ.get("PYTHONPATH")
    return [("this tree", own)] + ([("against", against)] if against else [])


def bench_defaults(runs: int, against: str | None, tmp: Path) -> None:
    """(a): a fresh home per run (under ``tmp``), so every run does the whole work."""
    baseline = [_measure([sys.executable, "-c", IMPORTS]) for _ in range(runs)]
    variants = _variants(against)
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in variants}
    for name, src in variants:  # builds the session calendar cache and bytecode once
        _measure(_run_cmd(tmp / f"defaults-warm-{name}"), src)
    for i in range(runs):
        for name, src in variants:
            figures[name].append(_measure(_run_cmd(tmp / f"defaults-{name}-{i}"), src))
    base = statistics.median(b[0] for b in baseline)
    for name, _ in variants:
        run = _report(
            f"(a) marketlake run, defaults [{name}]", figures[name], f"target {DEFAULTS_TARGET_S} s"
        )
        print(f"    ratio run / baseline: {run / base:.2f}")
    print(f"    baseline, python importing the libraries only: {base:.3f} s")


class _Homes:
    """Fresh home folders under ``root``, kept until the end when the disk has room for all
    of them (see the module's docstring), else each deleted once its runs are done."""

    MARGIN_BYTES = 2 * 1024**3

    def __init__(self, root: Path, count: int) -> None:
        self.root = root
        self.count = count  # homes the benchmark will make
        self.made = 0
        self.keep: bool | None = None  # decided by the size of the first home done

    def new(self, name: str) -> Path:
        """A home that does not exist yet."""
        self.made += 1
        return self.root / name

    def done(self, home: Path) -> None:
        """``home``'s runs are over: keep it, or delete it when the disk lacks room."""
        if self.keep is None:
            size = sum(f.stat().st_size for f in home.rglob("*") if f.is_file())
            room = shutil.disk_usage(self.root).free - self.MARGIN_BYTES
            self.keep = size * (self.count - self.made) < room
            if not self.keep:
                print(
                    "    (too little disk to keep every home: each is deleted after its runs, "
                    "and later runs pay for the deletions; see the module's docstring)"
                )
        if not self.keep:
            shutil.rmtree(home)


def bench_large(runs: int, symbols: int, years: int, against: str | None, tmp: Path) -> None:
    """(b): ``symbols`` x ``years``, beside a raw Parquet write of the same bars."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from marketlake.sources.sim import simulate_bars

    names = [f"S{i:04d}" if symbols > 1000 else f"S{i:03d}" for i in range(symbols)]
    end = date(2024, 12, 31)
    start = date(end.year - years + 1, 1, 1)
    bars, _ = simulate_bars(names, start, end)
    baseline = []
    for _ in range(runs):
        began = time.perf_counter()
        pq.write_table(bars, pa.BufferOutputStream())
        baseline.append(time.perf_counter() - began)
    rows = bars.num_rows
    del bars
    extra = ["--symbols", ",".join(names), "--start", start.isoformat(), "--end", end.isoformat()]
    variants = _variants(against)
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in variants}
    again: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in variants}
    third: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in variants}
    daily: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in variants}
    stages: dict[str, list[dict[str, float]]] = {name: [] for name, _ in variants}
    daily_stages: dict[str, list[dict[str, float]]] = {name: [] for name, _ in variants}
    day_before = [*extra[:-1], (end - timedelta(days=1)).isoformat()]
    homes = _Homes(tmp, 2 * runs * len(variants))
    for i in range(runs):
        for name, src in variants:
            home = homes.new(f"{name}-{i}")
            command = _run_cmd(home, *extra)
            figures[name].append(_measure(command, src))
            stages[name].append(_stage_seconds(home))
            again[name].append(_measure(command, src))
            third[name].append(_measure(command, src))
            homes.done(home)
            home = homes.new(f"{name}-{i}-daily")
            _measure(_run_cmd(home, *day_before), src)
            daily[name].append(_measure(_run_cmd(home, *extra), src))
            daily_stages[name].append(_stage_seconds(home))
            homes.done(home)
    base = statistics.median(baseline)
    target_s, target_gb = TARGETS.get((symbols, years), (float("nan"), float("nan")))
    for name, _ in variants:
        run = _report(
            f"(b) marketlake run, {symbols} symbols x {years} years ({rows:,} bars) [{name}]",
            figures[name],
            f"target {target_s} s, {target_gb} GB",
        )
        print(f"    ratio run / baseline: {run / base:.1f}")
        _report_stages("first run", stages[name])
    print(f"    baseline, pyarrow Parquet write of the same bars: {base:.3f} s")
    for name, _ in variants:
        first = statistics.median(f[0] for f in figures[name])
        for label, rerun in (("second", again[name]), ("third", third[name])):
            wall = _report(
                f"(c) the same run again, {label} in its home [{name}]", rerun, "no target"
            )
            print(f"    ratio / first run: {wall / first:.2f}")
    for name, _ in variants:
        first = statistics.median(f[0] for f in figures[name])
        wall = _report(
            f"(d) the daily run: one session more than its home holds [{name}]",
            daily[name],
            "no target",
        )
        print(f"    ratio / first run: {wall / first:.2f}")
        _report_stages("daily run", daily_stages[name])


def main() -> None:
    """Parse the options and print both benchmarks."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--skip-defaults", action="store_true")
    parser.add_argument("--large-runs", type=int, default=3)
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--against", help="another checkout's src folder, measured alongside")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:  # every home, deleted at the end
        if not args.skip_defaults:
            bench_defaults(args.runs, args.against, Path(tmp))
        if not args.skip_large:
            bench_large(args.large_runs, args.symbols, args.years, args.against, Path(tmp))


if __name__ == "__main__":
    main()
