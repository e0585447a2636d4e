"""The warehouse contract, run on every backend in conftest.BACKENDS."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from marketlake.errors import ConfigError, TerminalError
from marketlake.schemas import BAR_SCHEMA, UTC_US
from marketlake.warehouse import TABLES, QueryError, Warehouse

MakeBars = Callable[..., pa.Table]


def rows_of(warehouse: Warehouse, table: str) -> list[dict]:
    """Every row of ``table`` in key order."""
    keys = ", ".join(TABLES[table].keys)
    return warehouse.query(f"SELECT * FROM {table} ORDER BY {keys}").to_pylist()


def symbol_closes(warehouse: Warehouse) -> list[tuple[str, float]]:
    """(symbol, close) of every row of ``bars_1d``, in key order."""
    return [(r["symbol"], r["close"]) for r in rows_of(warehouse, "bars_1d")]


def test_ensure_tables_creates_every_table_with_its_columns(warehouse: Warehouse) -> None:
    warehouse.ensure_tables()
    warehouse.ensure_tables()  # a second call changes nothing
    assert set(TABLES) <= set(warehouse.table_names())
    for name, spec in TABLES.items():
        schema = warehouse.query(f"SELECT * FROM {name} LIMIT 0").schema
        assert schema.names == spec.columns, name
        for field in spec.schema:
            if pa.types.is_timestamp(field.type):
                assert schema.field(field.name).type.tz == "UTC", (name, field.name)


def test_ensure_tables_adds_columns_a_table_lacks(warehouse: Warehouse) -> None:
    types = warehouse.column_types
    warehouse.execute(
        f"CREATE TABLE daily_metrics (symbol {types['string']} NOT NULL, "
        f"ts {types['timestamp']} NOT NULL, close {types['float64']})"
    )
    warehouse.ensure_tables()
    columns = warehouse.query("SELECT * FROM daily_metrics LIMIT 0").column_names
    assert sorted(columns) == sorted(TABLES["daily_metrics"].columns)


def test_upsert_twice_leaves_the_same_rows(warehouse: Warehouse, make_bars: MakeBars) -> None:
    data = make_bars(["AAPL", "MSFT"], days=5)
    assert warehouse.upsert("bars_1d", data) == 10
    first = rows_of(warehouse, "bars_1d")
    assert warehouse.upsert("bars_1d", data) == 10
    assert rows_of(warehouse, "bars_1d") == first
    assert len(first) == 10
    assert first == sorted(data.to_pylist(), key=lambda row: (row["symbol"], row["ts"]))


def test_upsert_updates_changed_rows_and_adds_new_ones(
    warehouse: Warehouse, make_bars: MakeBars
) -> None:
    warehouse.upsert("bars_1d", make_bars(["AAPL", "MSFT"], days=3))
    changed = make_bars(["AAPL"], days=4, close=200.0)  # 3 updated rows and 1 new one
    warehouse.upsert("bars_1d", changed)
    rows = rows_of(warehouse, "bars_1d")
    assert [r["close"] for r in rows if r["symbol"] == "AAPL"] == [200.0, 201.0, 202.0, 203.0]
    assert [r["close"] for r in rows if r["symbol"] == "MSFT"] == [100.0, 101.0, 102.0]


def test_duplicate_keys_in_data_keep_the_last_row(
    warehouse: Warehouse, make_bars: MakeBars
) -> None:
    early, late = make_bars(["AAPL"], days=2), make_bars(["AAPL"], days=2, close=50.0)
    data = pa.concat_tables([early, late, early.slice(0, 1)])
    assert warehouse.upsert("bars_1d", data) == 2
    assert [r["close"] for r in rows_of(warehouse, "bars_1d")] == [100.0, 51.0]


def test_replace_where_touches_only_the_given_symbols(
    warehouse: Warehouse, make_bars: MakeBars
) -> None:
    warehouse.upsert("bars_1d", make_bars(["AAPL", "MSFT", "NVDA"], days=4))
    rebuilt = make_bars(["AAPL"], days=2, close=10.0)
    assert warehouse.replace_where("bars_1d", rebuilt, ["AAPL", "NVDA"]) == 2
    assert symbol_closes(warehouse) == [
        ("AAPL", 10.0),
        ("AAPL", 11.0),
        ("MSFT", 100.0),
        ("MSFT", 101.0),
        ("MSFT", 102.0),
        ("MSFT", 103.0),
    ]


def test_symbol_counts_count_the_rows_of_the_symbols_asked_for(
    warehouse: Warehouse, make_bars: MakeBars, monkeypatch: pytest.MonkeyPatch
) -> None:
    from marketlake.warehouse import base

    warehouse.upsert("bars_1d", make_bars(["AAPL", "MSFT"], days=4))
    warehouse.upsert("bars_1d", make_bars(["NVDA"], days=2))
    monkeypatch.setattr(base, "SYMBOLS_PER_QUERY", 2)  # three symbols: asked in two parts
    assert warehouse.symbol_counts("bars_1d", ["NVDA", "AAPL", "V"]) == {"AAPL": 4, "NVDA": 2}
    assert warehouse.symbol_counts("bars_1d", []) == {}


def test_load_marks_round_trip_and_notice_rows_gone(
    warehouse: Warehouse, make_bars: MakeBars
) -> None:
    """The marks ``load_warehouse`` keeps, written and read back through this backend."""
    from marketlake.catalogue import BARS_1D
    from marketlake.lake.tables import TableState
    from marketlake.pipeline.load_marks import LoadMarks

    data = make_bars(["AAPL", "MSFT"], days=3)
    warehouse.upsert("bars_1d", data)
    state = TableState("a-table-id", 4)
    assert LoadMarks.read(warehouse).loaded_as(warehouse, BARS_1D, state, ["AAPL"]) == {}
    LoadMarks.read(warehouse).record(
        warehouse, BARS_1D, state, ["AAPL", "MSFT", "V"], data, LAST_SESSION
    )
    again = LoadMarks.read(warehouse)
    assert again.loaded_as(warehouse, BARS_1D, state, ["AAPL", "MSFT", "V", "NVDA"]) == {
        "AAPL": (state, 3), "MSFT": (state, 3),
        "V": (state, 0),  # V was loaded with no rows, and has none
    }  # fmt: skip
    later = TableState("a-table-id", 5)  # the lake moved on: loaded as the older version
    assert again.loaded_as(warehouse, BARS_1D, later, ["AAPL"]) == {"AAPL": (state, 3)}
    assert again.loaded_as(warehouse, BARS_1D, TableState("a-table-id", 3), ["AAPL"]) == {}
    assert again.loaded_as(warehouse, BARS_1D, TableState("another-id", 4), ["AAPL"]) == {}
    warehouse.replace_where("bars_1d", make_bars(["AAPL"], days=2), ["AAPL"])
    assert set(again.loaded_as(warehouse, BARS_1D, state, ["AAPL", "MSFT"])) == {"MSFT"}
    grown = make_bars(["MSFT"], days=5).slice(3)  # two bars after the three loaded
    warehouse.upsert("bars_1d", grown)
    again.record(warehouse, BARS_1D, later, ["MSFT"], grown, LAST_SESSION, {"MSFT": 3})
    assert LoadMarks.read(warehouse).loaded_as(warehouse, BARS_1D, later, ["MSFT"]) == {
        "MSFT": (later, 5)
    }


def test_writes_of_a_bulk_load_are_the_same_writes(
    warehouse: Warehouse, make_bars: MakeBars
) -> None:
    warehouse.upsert("bars_1d", make_bars(["AAPL", "MSFT"], days=3))
    with warehouse.bulk_load():
        rebuilt = make_bars(["AAPL"], days=2, close=10.0)
        assert warehouse.replace_where("bars_1d", rebuilt, ["AAPL"]) == 2
        warehouse.upsert("bars_1d", make_bars(["NVDA"], days=1))
    assert symbol_closes(warehouse) == [
        ("AAPL", 10.0),
        ("AAPL", 11.0),
        ("MSFT", 100.0),
        ("MSFT", 101.0),
        ("MSFT", 102.0),
        ("NVDA", 100.0),
    ]


def test_replace_where_rejects_rows_of_other_symbols(
    warehouse: Warehouse, make_bars: MakeBars
) -> None:
    warehouse.upsert("bars_1d", make_bars(["AAPL", "MSFT"], days=2))
    before = rows_of(warehouse, "bars_1d")
    with pytest.raises(TerminalError, match="MSFT"):
        warehouse.replace_where("bars_1d", make_bars(["AAPL", "MSFT"], days=1), ["AAPL"])
    with pytest.raises(TerminalError, match="no symbol column"):
        warehouse.replace_where("runs", pa.table({}), ["AAPL"])
    assert rows_of(warehouse, "bars_1d") == before


def test_replace_swaps_the_whole_table(warehouse: Warehouse, make_bars: MakeBars) -> None:
    warehouse.upsert("bars_1d", make_bars(["AAPL", "MSFT"], days=3))
    assert warehouse.replace("bars_1d", make_bars(["TSLA"], days=2)) == 2
    assert {r["symbol"] for r in rows_of(warehouse, "bars_1d")} == {"TSLA"}
    assert warehouse.replace("bars_1d", BAR_SCHEMA.empty_table()) == 0
    assert rows_of(warehouse, "bars_1d") == []


def test_timestamps_round_trip_as_utc(warehouse: Warehouse, make_bars: MakeBars) -> None:
    new_york = ZoneInfo("America/New_York")
    instant = datetime(2024, 3, 8, 9, 30, tzinfo=new_york)  # 14:30 UTC
    data = pa.table(
        {
            "symbol": ["AAPL"],
            "ts": pa.array([instant], pa.timestamp("us", tz="America/New_York")),
            "price": [190.5],
            "size": [10.0],
            "source": ["test"],
            "seq": [7],
        }
    )
    warehouse.upsert("ticks", data)
    result = warehouse.query("SELECT ts FROM ticks")
    assert result.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    (value,) = result.column("ts").to_pylist()
    assert value == instant
    assert value.utcoffset() == timedelta(0)
    assert (value.hour, value.minute) == (14, 30)


def test_query_binds_positional_parameters(warehouse: Warehouse, make_bars: MakeBars) -> None:
    warehouse.upsert("bars_1d", make_bars(["AAPL", "MSFT"], days=10))
    mark = warehouse.capabilities.placeholder
    since = datetime(2024, 1, 8, tzinfo=UTC)
    result = warehouse.query(
        "SELECT count(*) AS n, min(close) AS low FROM bars_1d "
        f"WHERE symbol = {mark} AND ts >= {mark}",
        ["MSFT", since],
    )
    assert result.to_pylist() == [{"n": 4, "low": 106.0}]


def test_bad_sql_raises_a_query_error(warehouse: Warehouse) -> None:
    with pytest.raises(QueryError, match="query failed"):
        warehouse.query("SELEC 1")
    with pytest.raises(QueryError):
        warehouse.query("SELECT * FROM no_such_table")


def test_writes_reject_bad_data(warehouse: Warehouse, make_bars: MakeBars) -> None:
    data = make_bars(["AAPL"], days=2)
    with pytest.raises(TerminalError, match="lacks column"):
        warehouse.upsert("bars_1d", data.drop_columns(["close"]))
    null_key = data.set_column(1, "ts", pa.array([None, None], pa.timestamp("us", tz="UTC")))
    with pytest.raises(TerminalError, match="ts is required"):
        warehouse.upsert("bars_1d", null_key)
    wrong_type = data.set_column(5, "close", pa.array(["a", "b"]))
    with pytest.raises(TerminalError, match="bars_1d"):
        warehouse.upsert("bars_1d", wrong_type)
    with pytest.raises(ConfigError, match="bars_1d"):
        warehouse.upsert("bars_2d", data)
    assert warehouse.query("SELECT count(*) AS n FROM bars_1d").to_pylist() == [{"n": 0}]


def test_upsert_selects_and_casts_to_the_table_schema(warehouse: Warehouse) -> None:
    data = pa.table(
        {
            "extra": ["ignored"],
            "ts": pa.array([datetime(2024, 1, 2)], pa.timestamp("ms")),  # naive: taken as UTC
            "symbol": ["AAPL"],
            "obv": pa.array([5], pa.int32()),
            **{
                name: pa.array([None], pa.float64())
                for name in TABLES["indicators_1d"].columns[2:-1]
            },
        }
    )
    assert warehouse.upsert("indicators_1d", data) == 1
    (row,) = rows_of(warehouse, "indicators_1d")
    assert row["ts"] == datetime(2024, 1, 2, tzinfo=UTC)
    assert row["obv"] == 5.0 and row["sma_20"] is None


def test_every_table_accepts_its_own_schema(warehouse: Warehouse) -> None:
    for name, spec in TABLES.items():
        if spec.view is not None:  # written through its tables (test_warehouse_views.py)
            continue
        row: dict[str, object] = {}
        for field in spec.schema:
            if pa.types.is_timestamp(field.type):
                row[field.name] = datetime(2024, 1, 2, 15, 30, tzinfo=UTC)
            elif pa.types.is_string(field.type):
                row[field.name] = "AAPL" if field.name == "symbol" else f"{field.name}-1"
            elif pa.types.is_boolean(field.type):
                row[field.name] = True
            else:
                row[field.name] = 3
        assert warehouse.upsert(name, pa.Table.from_pylist([row], schema=spec.schema)) == 1
        assert warehouse.upsert(name, pa.Table.from_pylist([row], schema=spec.schema)) == 1
        (stored,) = warehouse.query(f"SELECT * FROM {name}").to_pylist()
        assert stored == row, name


def test_read_only_warehouse_serves_queries_and_refuses_writes(
    open_backend: Callable[..., Warehouse], make_bars: MakeBars
) -> None:
    with open_backend() as writer:
        writer.upsert("bars_1d", make_bars(["AAPL"], days=3))
    with open_backend(read_only=True) as reader:
        assert reader.query("SELECT count(*) AS n FROM bars_1d").to_pylist() == [{"n": 3}]
        with pytest.raises(TerminalError, match="read-only"):
            reader.upsert("bars_1d", make_bars(["AAPL"], days=1))
        assert pc.sum(reader.query("SELECT volume FROM bars_1d").column(0)).as_py() == 6000.0


WRITER = """
import sys
from pathlib import Path

backend, folder, url = sys.argv[1:4]
if backend == "snowflake":  # the test's fakesnow databases, patched into this process too
    import fakesnow

    patched = fakesnow.patch(db_path=Path(folder) / "snowflake")  # kept: patched while alive
    patched.__enter__()
from tests.warehouse.conftest import BACKENDS, bars

warehouse = BACKENDS[backend](Path(folder), url, False)
data = bars([f"S{number:03d}" for number in range(100)], days=250)
while True:
    warehouse.upsert("bars_1d", data)
    print("wrote", flush=True)
"""


def test_a_writer_killed_mid_load_leaves_rows_a_reload_completes(
    open_backend: Callable[..., Warehouse], make_bars: MakeBars
) -> None:
    backend, folder, url = open_backend.recipe  # type: ignore[attr-defined]
    with subprocess.Popen(
        [sys.executable, "-c", WRITER, backend, str(folder), url],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    ) as writer:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "wrote"  # one load committed
        writer.send_signal(signal.SIGKILL)  # the next one is under way
        writer.wait()
    data = make_bars([f"S{number:03d}" for number in range(100)], days=250)
    with open_backend() as warehouse:
        assert warehouse.count_rows("bars_1d") == data.num_rows
        assert warehouse.upsert("bars_1d", data) == data.num_rows
        (row,) = warehouse.query(
            "SELECT count(*) AS n, count(DISTINCT symbol) AS s, sum(volume) AS v FROM bars_1d"
        ).to_pylist()
    volume = pc.sum(data.column("volume")).as_py()
    assert row == {"n": data.num_rows, "s": 100, "v": volume}


LAST_SESSION = datetime(2024, 12, 31, 14, 30, tzinfo=UTC)


def test_64_bit_integers_doubles_nan_and_null_survive_the_trip(warehouse: Warehouse) -> None:
    data = pa.table(
        {
            "symbol": ["AAPL", "AAPL", "AAPL"],
            "ts": pa.array([LAST_SESSION] * 2 + [LAST_SESSION + timedelta(seconds=1)], UTC_US),
            "price": [0.1 + 0.2, 1e-300, 1.7976931348623157e308],
            "size": [2.0**53 + 2, None, float("nan")],
            "source": ["test", "test", "test"],
            "seq": pa.array([2**62 + 1, -(2**63), 2**63 - 1], pa.int64()),
        }
    )
    assert warehouse.upsert("ticks", data) == 3
    rows = warehouse.query("SELECT * FROM ticks ORDER BY seq").to_pylist()
    assert [row["seq"] for row in rows] == [-(2**63), 2**62 + 1, 2**63 - 1]
    assert [row["price"] for row in rows] == [1e-300, 0.1 + 0.2, 1.7976931348623157e308]
    assert rows[0]["size"] is None and rows[1]["size"] == 2.0**53 + 2
    assert rows[2]["size"] != rows[2]["size"]  # NaN stays NaN; only NULL is NULL
