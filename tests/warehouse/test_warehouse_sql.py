"""``marketlake sql``: formats, read-only access and error messages."""

from __future__ import annotations

import csv
import io
import json
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pytest

from marketlake.cli.sql import MAX_TABLE_ROWS, run_sql
from marketlake.errors import ConfigError, TerminalError
from marketlake.warehouse.duckdb import DuckDBWarehouse

QUERY = "SELECT symbol, ts, close, volume FROM bars_1d ORDER BY symbol, ts"


@pytest.fixture
def loaded(tmp_path: Path, make_bars: Callable[..., pa.Table]) -> tuple[str, list[dict]]:
    """A warehouse file with two symbols x two days, its URL and the rows QUERY returns."""
    data = make_bars(["AAPL", "MSFT"], days=2)
    path = tmp_path / "warehouse.duckdb"
    with DuckDBWarehouse(path) as warehouse:
        warehouse.upsert("bars_1d", data)
    expected = [
        {key: row[key] for key in ("symbol", "ts", "close", "volume")} for row in data.to_pylist()
    ]
    return f"duckdb://{path}", expected


def test_json_is_a_list_of_row_objects_with_iso_timestamps(loaded: tuple[str, list[dict]]) -> None:
    url, expected = loaded
    rows = json.loads(run_sql(url, QUERY, "json"))
    assert [{**row, "ts": datetime.fromisoformat(row["ts"])} for row in rows] == expected
    assert all(row["ts"].endswith("+00:00") for row in rows)


def test_csv_has_a_header_and_one_line_per_row(loaded: tuple[str, list[dict]]) -> None:
    url, expected = loaded
    rows = list(csv.DictReader(io.StringIO(run_sql(url, QUERY, "csv"))))
    assert [
        {
            "symbol": row["symbol"],
            "ts": datetime.fromisoformat(row["ts"]),
            "close": float(row["close"]),
            "volume": float(row["volume"]),
        }
        for row in rows
    ] == expected


def test_table_shows_columns_rows_and_the_row_count(loaded: tuple[str, list[dict]]) -> None:
    url, expected = loaded
    text = run_sql(url, QUERY)
    lines = text.splitlines()
    header = next(line for line in lines if "symbol" in line)
    assert [name in header for name in ("ts", "close", "volume")] == [True] * 3
    for row in expected:
        line = next(
            line for line in lines if row["ts"].isoformat(sep=" ") in line and row["symbol"] in line
        )
        assert f"{row['close']:g}" in line
    assert "4 rows" in text


def test_nulls_and_nan_are_readable_in_every_format(loaded: tuple[str, list[dict]]) -> None:
    url, _ = loaded
    query = "SELECT NULL::DOUBLE AS missing, 'nan'::DOUBLE AS not_a_number, 2.5 AS value"
    assert json.loads(run_sql(url, query, "json")) == [
        {"missing": None, "not_a_number": None, "value": 2.5}
    ]
    assert run_sql(url, query, "csv").splitlines()[1] == ",nan,2.5"
    assert "NULL" in run_sql(url, query, "table")


def test_the_table_format_shows_a_bounded_number_of_rows(loaded: tuple[str, list[dict]]) -> None:
    url, _ = loaded
    total = MAX_TABLE_ROWS + 5
    text = run_sql(url, f"SELECT range AS n FROM range({total})")
    assert f"first {MAX_TABLE_ROWS:,} of {total:,} rows" in text
    assert len(json.loads(run_sql(url, f"SELECT range AS n FROM range({total})", "json"))) == total


def test_bad_sql_is_one_terminal_error_with_the_database_reason(
    loaded: tuple[str, list[dict]],
) -> None:
    url, _ = loaded
    with pytest.raises(TerminalError, match=r"^query failed: .*syntax error") as caught:
        run_sql(url, "SELEC symbol FROM bars_1d")
    assert caught.value.__cause__ is not None  # the driver error is kept as the cause
    with pytest.raises(TerminalError, match=r"^query failed: .*no_such_table"):
        run_sql(url, "SELECT * FROM no_such_table")


def test_the_connection_is_read_only(loaded: tuple[str, list[dict]]) -> None:
    url, _ = loaded
    with pytest.raises(TerminalError, match=r"^query failed: .*read-only"):
        run_sql(url, "DELETE FROM bars_1d")
    assert json.loads(run_sql(url, "SELECT count(*) AS n FROM bars_1d", "json")) == [{"n": 4}]


def test_a_missing_warehouse_says_to_run_the_pipeline_first(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "warehouse.duckdb"
    with pytest.raises(TerminalError, match="marketlake run") as caught:
        run_sql(f"duckdb://{path}", "SELECT 1")
    assert str(path) in str(caught.value)
    assert not path.exists()


def test_an_unknown_format_lists_the_valid_ones(loaded: tuple[str, list[dict]]) -> None:
    url, _ = loaded
    with pytest.raises(ConfigError, match="table, csv, json"):
        run_sql(url, "SELECT 1", "xml")


def test_table_cells_are_shown_verbatim(loaded: tuple[str, list[dict]]) -> None:
    url, _ = loaded
    text = run_sql(url, "SELECT '[bold]AAPL[/bold]' AS \"[red]name\"")
    assert "[bold]AAPL[/bold]" in text
    assert "[red]name" in text


@pytest.mark.parametrize(
    "statement",
    [
        "COPY bars_1d TO '{out}/bars.csv'",
        "COPY (SELECT 1 AS n) TO '{out}/one.parquet' (FORMAT parquet)",
        "EXPORT DATABASE '{out}/export'",
        "SELECT * FROM read_text('/etc/passwd')",
        "SELECT * FROM read_csv('/etc/shadow')",
        "SELECT * FROM read_parquet('https://example.com/bars.parquet')",
        "SELECT * FROM glob('/etc/*')",
        "ATTACH '{out}/other.duckdb' AS other",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET enable_external_access = true",
        "RESET enable_external_access",
        "SET lock_configuration = false",
        "SET autoload_known_extensions = true",
        "PRAGMA enable_profiling",
    ],
)
def test_sql_touches_no_file_network_extension_or_setting(
    loaded: tuple[str, list[dict]], tmp_path: Path, statement: str
) -> None:
    url, _ = loaded
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(TerminalError, match=r"^query failed: refused: .* read-only ") as caught:
        run_sql(url, statement.format(out=out))
    assert "\n" not in str(caught.value)
    assert list(out.iterdir()) == []  # nothing written
    assert json.loads(run_sql(url, "SELECT count(*) AS n FROM bars_1d", "json")) == [{"n": 4}]


def test_readers_in_one_process_share_the_locked_down_file(
    loaded: tuple[str, list[dict]], tmp_path: Path
) -> None:
    url, _ = loaded
    path = Path(url.removeprefix("duckdb://"))
    with DuckDBWarehouse(path, read_only=True) as first:  # held open, as the API holds it
        assert json.loads(run_sql(url, "SELECT current_setting('TimeZone') AS tz", "json")) == [
            {"tz": "UTC"}
        ]
        with pytest.raises(TerminalError, match="refused"):
            run_sql(url, f"COPY bars_1d TO '{tmp_path}/bars.csv'")
        assert first.count_rows("bars_1d") == 4


def test_readers_opening_at_once_in_threads_all_get_the_locked_down_file(
    loaded: tuple[str, list[dict]],
) -> None:
    # as the API's worker threads do: each opens the file while others are locking it down
    from concurrent.futures import ThreadPoolExecutor

    url, _ = loaded
    path = Path(url.removeprefix("duckdb://"))
    start = threading.Barrier(8)

    def read(_: int) -> tuple[int, str]:
        start.wait()
        with DuckDBWarehouse(path, read_only=True) as reader:
            tz = reader.query("SELECT current_setting('TimeZone') AS tz").to_pylist()[0]["tz"]
            return reader.count_rows("bars_1d"), tz

    for _ in range(5):
        with ThreadPoolExecutor(8) as pool:
            assert list(pool.map(read, range(8))) == [(4, "UTC")] * 8
