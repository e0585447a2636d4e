"""Warehouse load benchmark: 500 symbols x 10 years of daily bars into each warehouse.

Run by hand: ``python benchmarks/bench_warehouse.py [--symbols 500 --days 2520]``.
Loads the same bars into DuckDB (the baseline), PostgreSQL (``pgserver``'s server, or
``--postgres-url``) and Snowflake (fakesnow in this process, or ``--snowflake-url``): a
first load (``replace_where`` into an empty table, as ``load_warehouse`` does) and an
upsert of every row again (MERGE / ON CONFLICT over existing rows). Prints rows/s and the
ratio to DuckDB. With psycopg installed it also times PostgreSQL's COPY (CSV through
psycopg 3) beside ADBC's Arrow ingest, the figure behind the adapter's choice.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
from bench_lake import make_bars

from marketlake.warehouse import Warehouse, open_warehouse


@contextlib.contextmanager
def postgres(url: str) -> Iterator[str]:
    """``url``, or a pgserver server's URL for the benchmark's duration."""
    if url:
        yield url
        return
    import pgserver

    folder = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    server = pgserver.get_server(folder, cleanup_mode="stop")
    try:
        yield str(server.get_uri())
    finally:
        server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def snowflake(url: str) -> Iterator[str]:
    """``url``, or fakesnow patched into this process."""
    if url:
        yield url
        return
    import fakesnow

    folder = Path(tempfile.mkdtemp(prefix="bench-snow-"))
    try:
        with fakesnow.patch(db_path=folder):
            yield "snowflake://bench:bench@fake/marketlake/bench"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def timed(operation: Callable[[], object]) -> float:
    """Wall seconds of one call."""
    start = time.perf_counter()
    operation()
    return time.perf_counter() - start


def load(warehouse: Warehouse, bars: pa.Table, symbols: list[str]) -> tuple[float, float]:
    """Seconds of a first load and of an upsert of the same rows."""
    warehouse.ensure_tables()
    first = timed(lambda: warehouse.replace_where("bars_1d", bars, symbols))
    again = timed(lambda: warehouse.upsert("bars_1d", bars))
    assert warehouse.count_rows("bars_1d") == bars.num_rows
    return first, again


def copy_csv(url: str, bars: pa.Table) -> float:
    """Seconds to COPY ``bars`` as CSV through psycopg 3 into an empty table."""
    import psycopg

    with psycopg.connect(url) as connection:
        connection.execute("TRUNCATE bars_1d")
        connection.commit()
        start = time.perf_counter()
        buffer = io.BytesIO()
        pacsv.write_csv(bars, buffer, pacsv.WriteOptions(include_header=False))
        with (
            connection.cursor() as cursor,
            cursor.copy("COPY bars_1d FROM STDIN (FORMAT CSV)") as copy,
        ):
            copy.write(buffer.getvalue())
        connection.commit()
        return time.perf_counter() - start


def main() -> None:
    """Run the benchmark and print one line per warehouse and operation."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--days", type=int, default=2520)
    parser.add_argument("--postgres-url", default="")
    parser.add_argument("--snowflake-url", default="")
    args = parser.parse_args()
    bars = make_bars(args.symbols, args.days)
    symbols = sorted(set(bars.column("symbol").to_pylist()))
    rows = bars.num_rows
    print(f"{rows:,} bars ({args.symbols} symbols x {args.days} sessions)")
    results: dict[str, tuple[float, float]] = {}
    folder = Path(tempfile.mkdtemp(prefix="bench-wh-"))
    try:
        with open_warehouse(f"duckdb://{folder}/w.duckdb") as duck:
            results["duckdb"] = load(duck, bars, symbols)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    with postgres(args.postgres_url) as url:
        with open_warehouse(url) as pg:
            results["postgresql"] = load(pg, bars, symbols)
        with contextlib.suppress(ImportError):
            seconds = copy_csv(url, bars)
            adbc_seconds = results["postgresql"][0]
            print(
                f"postgresql ingest: ADBC {rows / adbc_seconds:,.0f} rows/s (load incl. DELETE), "
                f"psycopg COPY CSV {rows / seconds:,.0f} rows/s: ADBC is "
                f"{seconds / adbc_seconds:.1f}x"
            )
    with snowflake(args.snowflake_url) as url, open_warehouse(url) as snow:
        results["snowflake"] = load(snow, bars, symbols)
    base_first, base_again = results["duckdb"]
    for name, (first, again) in results.items():
        print(
            f"{name:10s} first load {rows / first:>12,.0f} rows/s ({first:6.2f} s, "
            f"{base_first / first:5.2f}x DuckDB)   upsert {rows / again:>12,.0f} rows/s "
            f"({again:6.2f} s, {base_again / again:5.2f}x DuckDB)"
        )


if __name__ == "__main__":
    main()
