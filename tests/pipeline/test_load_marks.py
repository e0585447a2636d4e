"""``load_warehouse`` loads a symbol's rows again only when the lake or the warehouse changed.

The warehouse's ``lake_loads`` table records, per dataset and symbol, the lake version the rows
are of and how many there were.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable

from tests.pipeline.cli import marketlake, sql_json, warehouse_snapshot

SYMBOLS = "AAPL,MSFT,V"
LOADED = ("bars_1d", "corporate_actions", "adjustment_factors", "daily_metrics", "indicators_1d")
APPENDED = ("daily_metrics", "indicators_1d")  # lake tables a day grows
DERIVED = ("adjustment_factors", *APPENDED)


def run(
    home: Path, *extra: str, end: str = "2024-03-28", env: dict[str, str] | None = None
) -> dict[str, object]:
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
        env=env,
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


def lake_path(table: str) -> str:
    lake = {"bars_1d": "curated/bars_1d", "corporate_actions": "curated/corporate_actions"}
    return lake.get(table, f"analytics/{table}")


def marks(home: Path) -> dict[tuple[str, str], tuple[int, int]]:
    rows = sql_json(home, "SELECT dataset, symbol, lake_version, row_count FROM lake_loads")
    return {(r["dataset"], r["symbol"]): (r["lake_version"], r["row_count"]) for r in rows}


def test_rows_read_from_the_lake_are_marked_and_not_loaded_again(tmp_path: Path) -> None:
    nothing_held = {"MARKETLAKE_RUNNER__HANDOVER_ROWS": "0"}  # every load reads the lake
    home = tmp_path / "home"
    first = run(home, env=nothing_held)
    assert first["unchanged_skipped"] == 0
    loaded = warehouse_snapshot(home)
    marked = marks(home)
    assert {dataset for dataset, _ in marked} >= set(LOADED)
    assert {symbol for _, symbol in marked} == set(SYMBOLS.split(","))
    counts = {
        r["symbol"]: r["n"]
        for r in sql_json(home, "SELECT symbol, count(*) AS n FROM daily_metrics GROUP BY 1")
    }
    assert {s: marked[("daily_metrics", s)][1] for s in counts} == counts

    second = run(home, env=nothing_held)
    assert second["rows_in"] == 0
    assert second["unchanged_skipped"] == len(marked)
    assert warehouse_snapshot(home) == loaded


def test_rows_handed_over_are_marked_when_only_this_process_committed(tmp_path: Path) -> None:
    """Rows the earlier stages of the same process handed over in memory are the lake's rows
    at the table's current version when every commit since theirs was the process's own."""
    home = tmp_path / "home"
    first = run(home)
    assert first["unchanged_skipped"] == 0
    marked = marks(home)
    assert set(marked) == {(t, s) for t in LOADED for s in SYMBOLS.split(",")}
    for table in LOADED:
        version = DeltaTable(str(home / "lake" / lake_path(table))).version()
        assert {marked[(table, s)][0] for s in SYMBOLS.split(",")} == {version}, table
        in_lake = lake_counts(home, table)  # symbols without rows (actions) are marked with 0
        assert {s: marked[(table, s)][1] for s in in_lake} == in_lake, table
        assert all(marked[(table, s)][1] == 0 for s in set(SYMBOLS.split(",")) - set(in_lake))
    loaded = warehouse_snapshot(home)

    second = run(home)
    assert second["rows_in"] == 0 and second["unchanged_skipped"] == len(marked)
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


def lake_counts(home: Path, table: str) -> dict[str, int]:
    path = home / "lake" / lake_path(table)
    symbols = DeltaTable(str(path)).to_pyarrow_table(columns=["symbol"]).column("symbol")
    return {r["values"]: r["counts"] for r in pc.value_counts(symbols).to_pylist()}


def test_rows_the_lake_appended_are_loaded_by_themselves(tmp_path: Path) -> None:
    """Rows appended to the lake since the marked version (bars, and the derived rows of
    symbols that only gained later bars) are inserted beside the rows the warehouse holds;
    the result is the warehouse a fresh load of the whole lake gives."""
    home = tmp_path / "home"
    run(home)
    run(home)
    before = marks(home)
    bars_before = sql_json(home, "SELECT count(*) AS n FROM bars_1d")[0]["n"]
    later = run(home, end="2024-04-05")  # five sessions more: appended to the lake
    new_bars = sql_json(home, "SELECT count(*) AS n FROM bars_1d")[0]["n"] - bars_before
    assert new_bars == 5 * len(SYMBOLS.split(","))
    # bars, metrics and indicators; the adjustment factors stand (bars_1d_adjusted is a view)
    assert later["added_rows_only"] == 3 * len(SYMBOLS.split(","))
    assert later["rows_in"] == 3 * new_bars
    after = marks(home)
    for symbol in SYMBOLS.split(","):
        version, rows = after[("bars_1d", symbol)]
        assert version > before[("bars_1d", symbol)][0]
        assert rows == before[("bars_1d", symbol)][1] + 5 == lake_counts(home, "bars_1d")[symbol]

    fresh = tmp_path / "fresh"
    run(fresh, end="2024-04-05")
    assert warehouse_snapshot(home) == warehouse_snapshot(fresh)
    assert sql_json(home, "SELECT * FROM symbols ORDER BY symbol") == sql_json(
        fresh, "SELECT * FROM symbols ORDER BY symbol"
    )


def test_a_symbol_added_leaves_the_others_counted_unchanged(tmp_path: Path) -> None:
    """A run that adds a symbol commits to the lake tables the others are marked at: they are
    read by what those tables gained since, find nothing, and count as unchanged, not as
    loaded; the warehouse ends as a fresh run of all four symbols makes it."""
    home = tmp_path / "home"
    run(home)
    run(home)  # every symbol marked at the lake's versions
    four = SYMBOLS + ",JPM"
    args = ["--symbols", four, "--start", "2024-01-02", "--end", "2024-03-28"]
    proc = marketlake("run", "--home", str(home), *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (row,) = sql_json(
        home,
        "SELECT detail FROM runs WHERE stage = 'load_warehouse' ORDER BY started_at DESC LIMIT 1",
    )
    detail = json.loads(row["detail"])
    tables = len(LOADED)
    old = len(SYMBOLS.split(",")) * tables
    assert detail["added_rows_only"] == 0
    assert detail["unchanged_skipped"] + detail["no_rows_added"] == old
    assert detail["no_rows_added"] > 0  # the tables JPM's rows were appended to
    assert f"{tables} loaded, {old} unchanged since their last load" in detail["summary"]

    fresh = tmp_path / "fresh"
    proc = marketlake("run", "--home", str(fresh), *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert warehouse_snapshot(home) == warehouse_snapshot(fresh)


def test_a_lake_table_rewritten_since_its_mark_is_loaded_whole(tmp_path: Path) -> None:
    """Compaction removes the files the marked rows were in: the symbols load whole again."""
    home = tmp_path / "home"
    run(home)
    run(home)
    run(home, end="2024-04-05")  # appends a file to bars_1d
    proc = marketlake("lake", "compact", "curated/bars_1d", "--home", str(home))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    later = run(home, end="2024-04-12")
    assert later["added_rows_only"] == 2 * len(SYMBOLS.split(","))  # metrics and indicators
    rows = sql_json(home, "SELECT symbol, count(*) AS n FROM bars_1d GROUP BY 1")
    assert {r["symbol"]: r["n"] for r in rows} == lake_counts(home, "bars_1d")


def derived_lake(home: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every derived lake table's rows, sorted."""
    out = {}
    for table in DERIVED:
        rows = DeltaTable(str(home / "lake" / "analytics" / table)).to_pyarrow_table()
        columns = [rows.column(name).to_pylist() for name in sorted(rows.column_names)]
        out[table] = sorted(zip(*columns, strict=True), key=repr)
    return out


def test_a_day_more_appends_derived_rows_and_loads_only_the_new_rows(tmp_path: Path) -> None:
    """Symbols that only gained later bars get only their later derived rows appended to the
    lake, and only those rows inserted into the warehouse: the lake and the warehouse end as
    a fresh run to the same day makes them."""
    nothing_held = {"MARKETLAKE_RUNNER__HANDOVER_ROWS": "0"}  # every load reads the lake
    home = tmp_path / "home"
    run(home, env=nothing_held)
    factors_version = DeltaTable(str(home / "lake" / "analytics" / DERIVED[0])).version()
    later = run(home, end="2024-04-05", env=nothing_held)
    symbols = SYMBOLS.split(",")
    # no new corporate action that week: actions and adjustment factors stand as they were
    assert later["unchanged_skipped"] == 2 * len(symbols)
    assert later["added_rows_only"] == 3 * len(symbols)  # bars, metrics and indicators
    assert later["rows_in"] == 3 * 5 * len(symbols)  # 5 sessions of each
    for table in APPENDED:
        path = str(home / "lake" / "analytics" / table)
        last = DeltaTable(path).history(1)[0]
        assert last["operationParameters"]["mode"] == "Append", table
    assert factors_version == DeltaTable(str(home / "lake" / "analytics" / DERIVED[0])).version()

    fresh = tmp_path / "fresh"
    run(fresh, end="2024-04-05", env=nothing_held)
    assert warehouse_snapshot(home) == warehouse_snapshot(fresh)
    assert derived_lake(home) == derived_lake(fresh)


def test_a_day_more_is_appended_when_polls_split_bars_from_their_fetch_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request's fetch-log row follows its bars on the bus, and a poll may end between the
    two (here every poll takes one message): symbols that only gained later bars still get
    only those rows appended and loaded, and end as a fresh run makes them."""
    from marketlake.pipeline import ingest

    monkeypatch.setattr(ingest, "FIRST_POLL_MESSAGES", 1)
    monkeypatch.setattr(ingest, "CHUNK_MESSAGES", 1)
    nothing_held = {"MARKETLAKE_RUNNER__HANDOVER_ROWS": "0"}
    home = tmp_path / "home"
    run(home, env=nothing_held)
    later = run(home, end="2024-04-05", env=nothing_held)
    symbols = SYMBOLS.split(",")
    assert later["added_rows_only"] == 3 * len(symbols)
    assert later["rows_in"] == 3 * 5 * len(symbols)
    for table in APPENDED:
        path = str(home / "lake" / "analytics" / table)
        last = DeltaTable(path).history(1)[0]
        assert last["operationParameters"]["mode"] == "Append", table

    fresh = tmp_path / "fresh"
    run(fresh, end="2024-04-05", env=nothing_held)
    assert warehouse_snapshot(home) == warehouse_snapshot(fresh)
    assert derived_lake(home) == derived_lake(fresh)


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
