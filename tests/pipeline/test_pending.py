"""Marks of symbols whose derived datasets are out of date, and which of them only gained
later bars (so ``process`` may append their derived rows)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa

from marketlake.catalogue import DAILY_METRICS
from marketlake.engines.lake_io import write_rows
from marketlake.lake.storage import LakeStorage
from marketlake.lake.tables import LakeTables
from marketlake.pipeline.pending import appended_only, clear, fresh_rows, mark, read_pending
from marketlake.schemas import BAR_KEYS, CORPORATE_ACTION_SCHEMA
from tests.pipeline.test_store_bars import DAY0, bars


def actions(symbol: str, day: int) -> pa.Table:
    return pa.Table.from_pylist(
        [
            {
                "symbol": symbol,
                "ex_date": DAY0 + timedelta(days=day),
                "kind": "dividend",
                "value": 0.5,
                "source": "sim",
            }
        ],
        schema=CORPORATE_ACTION_SCHEMA,
    )


def test_only_bars_after_the_last_stored_one_are_appended() -> None:
    stored = pa.concat_tables([bars("A", range(5)), bars("B", range(5)), bars("C", range(5))])
    incoming = pa.concat_tables(
        [
            bars("A", range(3, 7)),  # two stored bars again, then two later ones
            bars("B", range(4, 6), close=12.0),  # the last stored bar changed
            bars("C", range(2, 3), close=12.0),  # an earlier bar changed
            bars("D", range(0, 2)),  # nothing stored
        ]
    )
    fresh = fresh_rows(incoming, stored, BAR_KEYS)
    assert appended_only(fresh, stored, None, {"A", "B", "C", "D"}) == {"A"}
    assert appended_only(fresh, stored, None, {"B", "C"}) == set()
    assert appended_only(fresh_rows(incoming, None, BAR_KEYS), None, None, {"A"}) == set()


def test_an_action_after_the_last_stored_bar_makes_a_symbol_whole() -> None:
    stored = pa.concat_tables([bars("A", range(5)), bars("B", range(5))])
    incoming = pa.concat_tables([bars("A", range(5, 7)), bars("B", range(5, 7))])
    dated = pa.concat_tables([actions("A", 2), actions("B", 6)])  # B's prior close changes
    fresh = fresh_rows(incoming, stored, BAR_KEYS)
    assert appended_only(fresh, stored, dated, {"A", "B"}) == {"A"}


def test_a_symbol_is_appended_only_when_every_mark_says_so(tmp_path: Path) -> None:
    storage = LakeStorage.from_url(str(tmp_path))
    mark(storage, "run-1", ["A", "B", "C"], appended=["A", "B"])
    mark(storage, "run-2", ["B"])  # an older list-only mark, as earlier versions wrote
    pending = read_pending(storage)
    assert pending.symbols == {"A", "B", "C"}
    assert pending.appended == {"A"}

    clear(storage, pending, ["B", "C"])
    left = read_pending(storage)
    assert left.symbols == {"A"} and left.appended == {"A"}


def test_grown_symbols_get_only_their_later_rows_once(tmp_path: Path) -> None:
    """``write_rows`` appends a grown symbol's rows after its last stored one, so a write
    done again (a retry, a re-run after a kill) adds nothing; other symbols are replaced."""
    tables = LakeTables(LakeStorage.from_url(str(tmp_path)))
    day = datetime(2024, 3, 4, tzinfo=UTC)

    def metrics(symbol: str, days: range, value: float) -> pa.Table:
        rows = [{"symbol": symbol, "ts": day + timedelta(days=d), "close": value} for d in days]
        schema = DAILY_METRICS.schema
        return pa.Table.from_pylist(rows, schema=pa.schema([schema.field(n) for n in rows[0]]))

    stored = pa.concat_tables([metrics("A", range(3), 1.0), metrics("B", range(3), 1.0)])
    tables.replace_symbols(DAILY_METRICS, stored, ["A", "B"])
    # recomputed whole: A's first rows differ here only to show they are not rewritten
    out = pa.concat_tables([metrics("A", range(5), 2.0), metrics("B", range(4), 2.0)])
    assert write_rows(tables, DAILY_METRICS, out, ["A", "B"], ["A"]) == 2 + 4
    assert write_rows(tables, DAILY_METRICS, out, ["A", "B"], ["A"]) == 0 + 4
    lake = tables.read(DAILY_METRICS).sort_by([("symbol", "ascending"), ("ts", "ascending")])
    names, values = lake.column("symbol").to_pylist(), lake.column("close").to_pylist()
    closes = list(zip(names, values, strict=True))
    assert closes == [("A", 1.0)] * 3 + [("A", 2.0)] * 2 + [("B", 2.0)] * 4
    history = tables.history(DAILY_METRICS)
    assert len(history) == 4  # the first write, then per call B replaced and A appended
