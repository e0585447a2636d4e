"""``load_warehouse`` loads a symbol's rows again only when the lake or the warehouse changed.

The warehouse's ``lake_loads`` table records, per dataset and symbol, the lake version the rows
were read at and how many there were; rows handed over in memory are loaded without a mark.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pyarrow.compute as pc
from deltalake import DeltaTable

from tests.pipeline.cli import marketlake, sql_json, warehouse_snapshot

SYMBOLS = "AAPL,MSFT,V"
LOADED = ("bars_1d", "corporate_actions", "bars_1d_adjusted", "daily_metrics", "indicators_1d")


def run(home: Path, *extra: str, end: str = "2024-03-28") -> dict[str, object]:
    """One ``marketlake run`` of :data:`SYMBOLS`; the detail of its ``load_warehouse``."""
    proc = marketlake(
        "run",
        "--home",
        str(home),
        "--symbols",
        SYMBOLS,
        "--start",
        "2024-01-02",
        "--end",
        end,
        *extra,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (row,) = sql_json(
        home,
        "SELECT rows_in, detail FROM runs WHERE stage = 'load_warehouse' "
        "ORDER BY started_at DESC LIMIT 1",
    )
    detail: dict[str, object] = json.loads(row["detail"])
    detail["rows_in"] = row["rows_in"]
    return detail


def marks(home: Path) -> dict[tuple[str, str], tuple[int, int]]:
    rows = sql_json(home, "SELECT dataset, symbol, lake_version, row_count FROM lake_loads")
    return {(r["dataset"], r["symbol"]): (r["lake_version"], r["row_count"]) for r in rows}


def test_rows_read_from_the_lake_are_marked_and_not_loaded_again(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = run(home)
    assert first["unchanged_skipped"] == 0
    assert marks(home) == {}  # every row came from the stages before, in memory
    loaded = warehouse_snapshot(home)

    second = run(home)  # nothing new: read back from the lake, loaded and marked
    assert second["unchanged_skipped"] == 0 and second["rows_in"] == first["rows_in"]
    marked = marks(home)
    assert {dataset for dataset, _ in marked} >= set(LOADED)
    assert {symbol for _, symbol in marked} == set(SYMBOLS.split(","))
    counts = {
        r["symbol"]: r["n"]
        for r in sql_json(home, "SELECT symbol, count(*) AS n FROM daily_metrics GROUP BY 1")
    }
    assert {s: marked[("daily_metrics", s)][1] for s in counts} == counts
    assert warehouse_snapshot(home) == loaded

    third = run(home)
    assert third["rows_in"] == 0
    assert third["unchanged_skipped"] == len(marked)
    assert warehouse_snapshot(home) == loaded


def test_rows_removed_from_the_warehouse_are_loaded_again(tmp_path: Path) -> None:
    home = tmp_path / "home"
    run(home)
    run(home)
    loaded = warehouse_snapshot(home)
    con = duckdb.connect(str(home / "warehouse.duckdb"))
    try:
        (metrics,) = con.execute("SELECT count(*) FROM daily_metrics WHERE symbol = 'V'").fetchone()
        con.execute("DELETE FROM daily_metrics WHERE symbol = 'V'")
        con.execute("DROP TABLE indicators_1d")
        (indicators,) = con.execute("SELECT count(*) FROM bars_1d").fetchone()
    finally:
        con.close()

    again = run(home)
    assert again["rows_in"] == metrics + indicators  # V's metrics, and every indicator row
    assert warehouse_snapshot(home) == loaded


def test_new_lake_rows_are_loaded(tmp_path: Path) -> None:
    home = tmp_path / "home"
    run(home)
    run(home)
    later = run(home, end="2024-04-30")
    assert later["rows_in"] > 0
    lake = {"bars_1d": "curated/bars_1d", "corporate_actions": "curated/corporate_actions"}
    for table in LOADED:
        path = home / "lake" / lake.get(table, f"analytics/{table}")
        symbols = DeltaTable(str(path)).to_pyarrow_table(columns=["symbol"]).column("symbol")
        in_lake = {r["values"]: r["counts"] for r in pc.value_counts(symbols).to_pylist()}
        rows = sql_json(home, f"SELECT symbol, count(*) AS n FROM {table} GROUP BY 1")
        assert {r["symbol"]: r["n"] for r in rows} == in_lake, table
    rows = sql_json(home, "SELECT symbol, max(ts) AS last FROM daily_metrics GROUP BY 1")
    assert {r["last"][:10] for r in rows} == {"2024-04-30"}


def test_a_lake_built_again_is_loaded_again(tmp_path: Path) -> None:
    """A lake deleted and built again from other prices has tables of the same versions and
    row counts: their new ids tell them apart."""
    home = tmp_path / "home"
    run(home)
    run(home)
    shutil.rmtree(home / "lake")
    shutil.rmtree(home / "bus")
    run(home, "--seed", "7")
    closes = DeltaTable(str(home / "lake" / "curated" / "bars_1d")).to_pyarrow_table(
        columns=["symbol", "ts", "close"]
    )
    columns = [closes.column(c).to_pylist() for c in ("symbol", "ts", "close")]
    in_lake = sorted(zip(*columns, strict=True))
    rows = sql_json(home, "SELECT symbol, ts, close FROM bars_1d ORDER BY symbol, ts")
    assert [r["close"] for r in rows] == [close for _, _, close in in_lake]
