"""Contract of LakeTables (Delta tables), run on local disk and on S3."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from marketlake.errors import SymbolError, TerminalError
from marketlake.lake import LakeNotFoundError, LakeTables
from marketlake.lake.tables import TableState, symbol_predicate
from marketlake.schemas import BAR_KEYS
from marketlake.symbols import parse_symbols

BARS = "curated/bars_1d"


def sorted_rows(table: pa.Table, keys: Sequence[str] = BAR_KEYS) -> list[dict[str, object]]:
    return table.sort_by([(k, "ascending") for k in keys]).to_pylist()


def test_first_merge_creates_the_table(lake_tables: LakeTables, make_bars) -> None:
    bars = make_bars(["AAPL", "MSFT"], days=3)
    assert not lake_tables.exists(BARS)
    stats = lake_tables.merge(BARS, bars, BAR_KEYS)
    assert (stats.inserted, stats.updated, stats.version) == (6, 0, 0)
    assert lake_tables.exists(BARS)
    assert sorted_rows(lake_tables.read(BARS)) == sorted_rows(bars)
    assert lake_tables.read(BARS).schema.field("ts").type == pa.timestamp("us", tz="UTC")


def test_merge_inserts_new_and_updates_changed_rows(lake_tables: LakeTables, make_bars) -> None:
    lake_tables.merge(BARS, make_bars(["AAPL"], days=3, close=10.0), BAR_KEYS)
    update = make_bars(["AAPL"], days=4, close=20.0, start_day=1)  # days 1-2 overlap
    stats = lake_tables.merge(BARS, update, BAR_KEYS)
    assert (stats.inserted, stats.updated, stats.version) == (2, 2, 1)
    rows = sorted_rows(lake_tables.read(BARS))
    assert len(rows) == 5
    assert rows[0]["close"] == 10.0
    assert [r["close"] for r in rows[1:]] == [20.0, 21.0, 22.0, 23.0]


def test_re_merging_the_same_data_changes_nothing(lake_tables: LakeTables, make_bars) -> None:
    bars = make_bars(["AAPL", "V"], days=5)
    lake_tables.merge(BARS, bars, BAR_KEYS)
    again = lake_tables.merge(BARS, bars, BAR_KEYS)
    assert (again.inserted, again.updated, again.version) == (0, 0, 0)
    assert lake_tables.version(BARS) == 0
    assert sorted_rows(lake_tables.read(BARS)) == sorted_rows(bars)


def test_merging_symbols_no_file_holds_appends_them_once(
    lake_tables: LakeTables, make_bars
) -> None:  # type: ignore[no-untyped-def]
    from marketlake.lake.maintenance import history_rows

    lake_tables.merge(BARS, make_bars(["AAPL", "MSFT"], days=3), BAR_KEYS)
    new = make_bars(["V", "NVDA"], days=4)
    stats = lake_tables.merge(BARS, new, BAR_KEYS)
    assert (stats.inserted, stats.updated, stats.version) == (8, 0, 1)
    assert (
        history_rows(lake_tables.storage, BARS, limit=1).column("operation")[0].as_py() == "WRITE"
    )
    again = lake_tables.merge(BARS, new, BAR_KEYS)  # now a file holds them: a MERGE, no change
    assert (again.inserted, again.updated, again.version) == (0, 0, 1)
    # a symbol inside an existing file's range but absent from it still merges correctly
    between = make_bars(["BRK.B"], days=2)
    lake_tables.merge(BARS, between, BAR_KEYS)
    lake_tables.merge(BARS, between, BAR_KEYS)
    assert lake_tables.read(BARS).num_rows == 6 + 8 + 2


def test_rows_of_symbols_known_to_be_absent_are_appended_in_key_order(
    lake_tables: LakeTables, make_bars
) -> None:  # type: ignore[no-untyped-def]
    from marketlake.lake.maintenance import history_rows

    lake_tables.merge(BARS, make_bars(["AAPL", "V"], days=3), BAR_KEYS)
    new = make_bars(["MSFT", "NVDA"], days=4)  # inside the file's range: no file statistic rules
    backwards = new.take(pa.array(range(new.num_rows - 1, -1, -1)))  # them out
    stats = lake_tables.merge(BARS, backwards, BAR_KEYS, none_stored=True)
    assert (stats.inserted, stats.version) == (8, 1)
    operation = history_rows(lake_tables.storage, BARS, limit=1).column("operation")[0]
    assert operation.as_py() == "WRITE"
    appended = lake_tables.read_symbols(BARS, ["MSFT", "NVDA"])
    assert appended.select(["symbol", "ts"]).to_pylist() == new.select(["symbol", "ts"]).to_pylist()
    assert lake_tables.read(BARS).num_rows == 6 + 8


def test_a_retried_append_of_absent_symbols_merges_and_keeps_each_row_once(
    lake_tables: LakeTables, make_bars, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    from marketlake.errors import TransientError
    from marketlake.lake import commits

    lake_tables.merge(BARS, make_bars(["AAPL", "V"], days=3), BAR_KEYS)
    append = commits._append
    failures = [TransientError("connection reset after the commit")]

    def committed_then_lost(*args, **kwargs):  # type: ignore[no-untyped-def]
        stats = append(*args, **kwargs)
        if failures:
            raise failures.pop()
        return stats

    monkeypatch.setattr(commits, "_append", committed_then_lost)
    lake_tables.merge(BARS, make_bars(["MSFT"], days=4), BAR_KEYS, none_stored=True)
    assert not failures  # the first attempt committed and failed; the retry ran
    assert sorted_rows(lake_tables.read(BARS)) == sorted_rows(
        pa.concat_tables([make_bars(["AAPL", "V"], days=3), make_bars(["MSFT"], days=4)])
    )


def test_files_written_hold_row_groups_of_a_bounded_size(lake_tables: LakeTables) -> None:
    import pyarrow.parquet as pq
    from deltalake import DeltaTable

    from marketlake.lake.commits import ROW_GROUP_ROWS

    name, storage = "analytics/row_groups", lake_tables.storage
    rows = 2 * ROW_GROUP_ROWS + 10
    table = pa.table({"symbol": ["AAPL"] * rows, "ts": pa.array(range(rows), pa.int64())})
    lake_tables.merge(name, table, ["symbol", "ts"])
    delta = DeltaTable(storage.uri(name), storage_options=storage.storage_options())
    (path,) = pa.table(delta.get_add_actions(flatten=True)).column("path").to_pylist()
    with storage.subtree(name).open_input_file(path) as handle:
        metadata = pq.ParquetFile(handle).metadata
    sizes = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
    assert sum(sizes) == rows and max(sizes) <= ROW_GROUP_ROWS and len(sizes) == 3


def _batches_of_symbols(symbols: Sequence[str], days: int, start_day: int = 0) -> pa.Table:
    """Bars of ``symbols``, one record batch per symbol (as the lake writer's chunks are)."""
    from datetime import timedelta

    from marketlake.schemas import BAR_SCHEMA

    base = datetime(2000, 1, 3, tzinfo=UTC) + timedelta(days=start_day)
    ts = pa.array([base + timedelta(days=d) for d in range(days)], BAR_SCHEMA.field("ts").type)
    prices = pa.array([float(d) for d in range(days)])
    parts = []
    for symbol in symbols:
        columns = {"symbol": pa.array([symbol] * days), "ts": ts}
        columns.update({name: prices for name in ("open", "high", "low", "close", "volume")})
        columns["source"] = pa.array(["sim"] * days)
        columns["ingested_at"] = pa.array([base] * days, BAR_SCHEMA.field("ingested_at").type)
        parts.append(pa.table(columns, schema=BAR_SCHEMA))
    return pa.concat_tables(parts)


def test_a_table_of_many_batches_is_written_in_its_row_order(lake_tables: LakeTables) -> None:
    """Each file keeps the row order it was given: reads of a bucket of symbols then come
    back in key order (delta-rs writes the batches of a table on several threads)."""
    import pyarrow.parquet as pq
    from deltalake import DeltaTable

    from marketlake.rows import compare_neighbours

    symbols = [f"S{i:03d}" for i in range(200)]
    first = _batches_of_symbols(symbols, days=500)
    assert first.column("symbol").num_chunks == 200
    lake_tables.merge(BARS, first, BAR_KEYS)  # creates the table
    later = _batches_of_symbols(symbols[::2], days=500, start_day=500)
    lake_tables.merge(BARS, later, BAR_KEYS, none_stored=True)  # appends
    storage = lake_tables.storage
    delta = DeltaTable(storage.uri(BARS), storage_options=storage.storage_options())
    paths = pa.table(delta.get_add_actions(flatten=True)).column("path").to_pylist()
    for path in paths:
        with storage.subtree(BARS).open_input_file(path) as handle:
            rows = pq.read_table(handle, columns=["symbol", "ts"])
        ordered, _ = compare_neighbours(rows, ["symbol", "ts"])
        assert pc.all(ordered).as_py(), f"{path}: rows out of key order"
    assert len(paths) == 2
    assert lake_tables.read(BARS).num_rows == 200 * 500 + 100 * 500


def test_floats_are_byte_stream_split_and_repeating_columns_use_a_dictionary(
    lake_tables: LakeTables, make_bars
) -> None:
    """The files of a first write, a MERGE and a replacement encode prices byte-stream-split
    and symbols with a dictionary, every page LZ4-compressed; the values read back are the
    values written."""
    import pyarrow.parquet as pq
    from deltalake import DeltaTable

    storage = lake_tables.storage

    def check_files() -> None:
        delta = DeltaTable(storage.uri(BARS), storage_options=storage.storage_options())
        for path in pa.table(delta.get_add_actions(flatten=True)).column("path").to_pylist():
            with storage.subtree(BARS).open_input_file(path) as handle:
                group = pq.ParquetFile(handle).metadata.row_group(0)
            columns = {
                group.column(i).path_in_schema: group.column(i) for i in range(group.num_columns)
            }
            for name in ("open", "high", "low", "close"):
                assert "BYTE_STREAM_SPLIT" in columns[name].encodings, (path, name)
                assert not columns[name].has_dictionary_page
            assert columns["symbol"].has_dictionary_page
            # pyarrow names Parquet's LZ4_RAW codec "LZ4" (the older framed LZ4 "LZ4_HADOOP")
            assert {column.compression for column in columns.values()} == {"LZ4"}

    first, changed = make_bars(["AAPL", "V"], days=5), make_bars(["V"], days=5)
    close = changed.schema.get_field_index("close")
    changed = changed.set_column(close, "close", pc.multiply(changed.column("close"), 1.5))
    lake_tables.merge(BARS, first, BAR_KEYS)
    check_files()
    lake_tables.merge(BARS, changed, BAR_KEYS)
    check_files()
    lake_tables.replace_symbols(BARS, changed, ["V"], BAR_KEYS)
    check_files()
    expected = pa.concat_tables([first.filter(pc.equal(first["symbol"], "AAPL")), changed])
    assert sorted_rows(lake_tables.read(BARS)) == sorted_rows(expected)


def test_a_table_keeps_its_id_until_it_is_created_again(lake_tables: LakeTables, make_bars) -> None:
    lake_tables.merge(BARS, make_bars(["AAPL"], days=2), BAR_KEYS)
    first = lake_tables.state(BARS)
    lake_tables.merge(BARS, make_bars(["V"], days=2), BAR_KEYS)
    second = lake_tables.state(BARS)
    assert (second.table_id, second.version) == (first.table_id, first.version + 1)
    lake_tables.storage.delete(BARS)
    lake_tables.merge(BARS, make_bars(["AAPL"], days=2), BAR_KEYS)
    again = lake_tables.state(BARS)
    assert again.version == first.version and again.table_id != first.table_id


def test_duplicate_keys_in_input_keep_the_last_row(lake_tables: LakeTables, make_bars) -> None:
    first = make_bars(["JPM"], days=2, close=1.0)
    last = make_bars(["JPM"], days=2, close=5.0)
    data = pa.concat_tables([first, last])
    lake_tables.merge(BARS, data, BAR_KEYS)
    assert sorted_rows(lake_tables.read(BARS)) == sorted_rows(last)
    lake_tables.merge(BARS, pa.concat_tables([last, first]), BAR_KEYS)
    assert sorted_rows(lake_tables.read(BARS)) == sorted_rows(first)


def test_empty_data_is_a_no_op(lake_tables: LakeTables, make_bars) -> None:
    empty = make_bars(["AAPL"], days=0)
    assert lake_tables.merge(BARS, empty, BAR_KEYS).version is None
    assert not lake_tables.exists(BARS)
    lake_tables.merge(BARS, make_bars(["AAPL"], days=1), BAR_KEYS)
    assert lake_tables.merge(BARS, empty, BAR_KEYS).version == 0


def test_null_or_missing_keys_are_refused(lake_tables: LakeTables, make_bars) -> None:
    bars = make_bars(["AAPL"], days=2)
    with pytest.raises(TerminalError, match="key columns"):
        lake_tables.merge(BARS, bars, ["symbol", "date"])
    nulls = bars.set_column(0, "symbol", pa.array(["AAPL", None]))
    with pytest.raises(TerminalError, match="null"):
        lake_tables.merge(BARS, nulls, BAR_KEYS)


def test_partitioned_table_merges_and_filters(lake_tables: LakeTables, make_bars) -> None:
    lake_tables.merge(BARS, make_bars(["^GSPC", "BRK.B", "ES=F"], days=2), BAR_KEYS, ["symbol"])
    lake_tables.merge(BARS, make_bars(["ES=F"], days=3, close=9.0), BAR_KEYS, ["symbol"])
    es = lake_tables.read(BARS, filter=pc.field("symbol") == "ES=F")
    assert [r["close"] for r in sorted_rows(es)] == [9.0, 10.0, 11.0]
    gspc = lake_tables.read(BARS, columns=["symbol", "close"], filter=[("symbol", "=", "^GSPC")])
    assert gspc.column_names == ["symbol", "close"]
    assert gspc.num_rows == 2


def test_time_travel_by_version_and_timestamp(lake_tables: LakeTables, make_bars) -> None:
    v0 = make_bars(["AAPL"], days=2, close=1.0)
    lake_tables.merge(BARS, v0, BAR_KEYS)
    time.sleep(0.02)  # commits in distinct milliseconds
    v1 = make_bars(["AAPL"], days=2, close=2.0)
    lake_tables.merge(BARS, v1, BAR_KEYS)
    assert sorted_rows(lake_tables.read(BARS, version=0)) == sorted_rows(v0)
    assert sorted_rows(lake_tables.read(BARS)) == sorted_rows(v1)
    history = lake_tables.history(BARS)
    assert [h["version"] for h in history] == [1, 0]
    first_commit = datetime.fromtimestamp(history[1]["timestamp"] / 1000, tz=UTC)
    assert sorted_rows(lake_tables.read(BARS, as_of=first_commit)) == sorted_rows(v0)
    with pytest.raises(TerminalError, match="timezone"):
        lake_tables.read(BARS, as_of=datetime(2030, 1, 1))


def test_replace_symbols_swaps_only_those_symbols(lake_tables: LakeTables, make_bars) -> None:
    lake_tables.merge(BARS, make_bars(["AAPL", "MSFT"], days=4), BAR_KEYS)
    fresh = make_bars(["AAPL"], days=2, close=50.0)
    lake_tables.replace_symbols(BARS, fresh, ["AAPL"])
    lake_tables.replace_symbols(BARS, fresh, ["AAPL"])
    table = lake_tables.read(BARS)
    assert sorted_rows(table.filter(pc.field("symbol") == "AAPL")) == sorted_rows(fresh)
    assert table.filter(pc.field("symbol") == "MSFT").num_rows == 4
    with pytest.raises(TerminalError, match="MSFT"):
        lake_tables.replace_symbols(BARS, make_bars(["MSFT"], days=1), ["AAPL"])


def test_symbol_predicates_are_built_only_from_parsed_symbols() -> None:
    assert symbol_predicate(parse_symbols(["aapl", "brk.b"])) == "symbol IN ('AAPL', 'BRK.B')"
    with pytest.raises(TerminalError, match="not a parsed Symbol"):
        symbol_predicate(["AAPL') OR (1=1"])  # type: ignore[list-item]
    with pytest.raises(TerminalError, match="at least one"):
        symbol_predicate([])


def test_replace_symbols_parses_what_it_is_given(lake_tables: LakeTables, make_bars) -> None:
    with pytest.raises(SymbolError):
        lake_tables.replace_symbols(BARS, make_bars(["AAPL"], days=1), ["AAPL') OR (1=1"])


def test_delete_compact_and_vacuum(lake_tables: LakeTables, make_bars) -> None:
    for day in range(4):
        lake_tables.merge(BARS, make_bars(["AAPL", "V"], days=1, start_day=day), BAR_KEYS)
    expected = sorted_rows(lake_tables.read(BARS))
    files_before = len(lake_tables.dataset(BARS).files)
    assert files_before == 4
    metrics = lake_tables.compact(BARS)
    assert metrics["numFilesRemoved"] == 4
    assert len(lake_tables.dataset(BARS).files) == 1
    assert sorted_rows(lake_tables.read(BARS)) == expected
    assert lake_tables.delete(BARS, "symbol = 'V'") == 4
    expected = [row for row in expected if row["symbol"] != "V"]
    assert sorted_rows(lake_tables.read(BARS)) == expected
    planned = lake_tables.vacuum(BARS, retention_hours=0, dry_run=True)
    assert planned
    storage = lake_tables.storage
    assert all(storage.exists(f"{BARS}/{path}") for path in planned)
    removed = lake_tables.vacuum(BARS, retention_hours=0)
    assert removed == planned
    assert not any(storage.exists(f"{BARS}/{path}") for path in removed)
    assert sorted_rows(lake_tables.read(BARS)) == expected


def test_new_columns_extend_the_schema(lake_tables: LakeTables) -> None:
    name = "analytics/indicators_1d"
    base = pa.table({"symbol": ["A"], "ts": pa.array([1], pa.timestamp("us", tz="UTC"))})
    lake_tables.merge(name, base.append_column("sma_20", pa.array([1.0])), BAR_KEYS)
    wider = base.append_column("sma_20", pa.array([2.0])).append_column("obv", pa.array([3.0]))
    lake_tables.merge(name, wider, BAR_KEYS)
    assert lake_tables.read(name).to_pylist()[0] | {"ts": None} == {
        "symbol": "A",
        "ts": None,
        "sma_20": 2.0,
        "obv": 3.0,
    }


def test_list_tables_and_missing_tables(lake_tables: LakeTables, make_bars) -> None:
    assert lake_tables.list_tables() == []
    lake_tables.merge(BARS, make_bars(["A"], days=1), BAR_KEYS)
    lake_tables.merge("analytics/daily_metrics", make_bars(["A"], days=1), BAR_KEYS)
    lake_tables.storage.write_bytes("curated/not_a_table/file.txt", b"x")
    assert lake_tables.list_tables() == ["analytics/daily_metrics", BARS]
    with pytest.raises(LakeNotFoundError):
        lake_tables.read("curated/ticks")
    with pytest.raises(TerminalError, match="invalid table name"):
        lake_tables.read("../curated")


def test_dataset_scans_without_reading_everything(lake_tables: LakeTables, make_bars) -> None:
    lake_tables.merge(BARS, make_bars(["AAPL", "MSFT"], days=3), BAR_KEYS, ["symbol"])
    dataset = lake_tables.dataset(BARS)
    assert dataset.count_rows(filter=pc.field("symbol") == "MSFT") == 3
    import duckdb

    arrow_scan = dataset  # noqa: F841 - referenced by name in the query
    total = duckdb.execute("SELECT count(*) AS n FROM arrow_scan").fetchall()
    assert total == [(6,)]


def test_a_table_object_knows_its_own_commits_until_another_writer_commits(
    lake_tables: LakeTables, make_bars
) -> None:
    lake_tables.merge(BARS, make_bars(["AAPL"], days=2), BAR_KEYS)
    first = lake_tables.state(BARS)
    lake_tables.merge(BARS, make_bars(["V"], days=2), BAR_KEYS)
    second = lake_tables.state(BARS)
    assert lake_tables.last_commit(BARS) == second
    lake_tables.merge(BARS, make_bars(["V"], days=2), BAR_KEYS)  # nothing new: no commit
    assert lake_tables.last_commit(BARS) == second == lake_tables.state(BARS)
    assert lake_tables.only_own_since(BARS, first, second)

    other = LakeTables(lake_tables.storage)  # another writer of the same lake
    other.merge(BARS, make_bars(["MSFT"], days=2), BAR_KEYS)
    third = lake_tables.state(BARS)
    assert other.last_commit(BARS) == third and lake_tables.last_commit(BARS) == second
    assert not lake_tables.only_own_since(BARS, first, third)
    assert lake_tables.only_own_since(BARS, second, second)
    assert not lake_tables.only_own_since(BARS, TableState("another-id", 0), second)


def test_rows_added_since_a_version_are_read_for_symbols_whose_files_stayed(
    lake_tables: LakeTables, make_bars
) -> None:
    lake_tables.replace_symbols(BARS, make_bars(["AAPL", "MSFT"], days=2), ["AAPL", "MSFT"])
    start = lake_tables.state(BARS)
    lake_tables.merge(BARS, make_bars(["AAPL"], days=2, start_day=2), BAR_KEYS, none_stored=True)
    lake_tables.merge(BARS, make_bars(["V"], days=3), BAR_KEYS)
    grown = lake_tables.state(BARS)
    added, kept = lake_tables.read_symbols_added(BARS, ["AAPL", "MSFT", "V"], start, grown)
    assert kept == ["AAPL", "MSFT", "V"]
    days = sorted((r["symbol"], r["ts"].day) for r in added.to_pylist())
    assert days == [("AAPL", 4), ("AAPL", 5), ("V", 2), ("V", 3), ("V", 4)]
    assert added.schema.names == lake_tables.read(BARS).schema.names

    # MSFT's rows are rewritten: the file it shared with AAPL's first rows is removed
    lake_tables.replace_symbols(BARS, make_bars(["MSFT"], days=1, close=9.0), ["MSFT"])
    later = lake_tables.state(BARS)
    added, kept = lake_tables.read_symbols_added(BARS, ["AAPL", "MSFT", "V"], start, later)
    assert kept == ["V"] and added.num_rows == 3
    added, kept = lake_tables.read_symbols_added(BARS, ["AAPL", "V"], grown, later)
    assert kept == ["V"] and added.num_rows == 0  # nothing of V's was added since
    assert lake_tables.read_symbols_added(BARS, ["V"], later, start)[1] == []
    assert lake_tables.read_symbols_added(BARS, ["V"], TableState("other", 0), later)[1] == []
