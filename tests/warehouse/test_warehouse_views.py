"""The warehouse's views, run on every backend in conftest.BACKENDS: ``bars_1d_adjusted`` is
``bars_1d`` times its symbol's adjustment factors, equal to the engine's adjusted bars."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pyarrow as pa
import pytest
from tests.warehouse.conftest import OpenWarehouse

from marketlake.analytics.adjust import adjust_table, factor_spans
from marketlake.errors import TerminalError
from marketlake.schemas import CORPORATE_ACTION_SCHEMA
from marketlake.warehouse import Warehouse

MakeBars = Callable[..., pa.Table]


def _actions() -> pa.Table:
    """A 4-for-1 split of AAPL, then a dividend; a dividend of MSFT."""
    at = datetime(2024, 1, 1, tzinfo=UTC)
    rows = [
        ("AAPL", datetime(2024, 1, 5, tzinfo=UTC), "split", 4.0, None),
        ("AAPL", datetime(2024, 1, 9, tzinfo=UTC), "dividend", None, 1.5),
        ("MSFT", datetime(2024, 1, 4, tzinfo=UTC), "dividend", None, 0.7),
    ]
    return pa.Table.from_pylist(
        [
            dict(zip(("symbol", "ex_date", "kind", "ratio", "amount"), row, strict=True))
            | {"source": "test", "ingested_at": at}
            for row in rows
        ],
        schema=CORPORATE_ACTION_SCHEMA,
    )


def _adjusted_rows(warehouse: Warehouse) -> list[dict]:
    return warehouse.query("SELECT * FROM bars_1d_adjusted ORDER BY symbol, ts").to_pylist()


def _load(warehouse: Warehouse, bars: pa.Table) -> pa.Table:
    """Load ``bars`` and the factors of the engine's adjustment; return its adjusted bars."""
    adjusted = adjust_table(bars, _actions())
    warehouse.upsert("bars_1d", bars)
    warehouse.upsert("adjustment_factors", factor_spans(adjusted))
    return adjusted


def test_the_adjusted_view_gives_the_engines_values_to_the_bit(
    warehouse: Warehouse, make_bars: MakeBars
) -> None:
    bars = make_bars(["AAPL", "MSFT", "NVDA"], days=12)
    adjusted = _load(warehouse, bars)
    assert _adjusted_rows(warehouse) == adjusted.to_pylist()
    assert warehouse.count_rows("bars_1d_adjusted") == bars.num_rows
    assert warehouse.symbol_counts("bars_1d_adjusted", ["AAPL", "IBM"]) == {"AAPL": 12}


def test_bars_after_the_last_span_take_its_factors(
    warehouse: Warehouse, make_bars: MakeBars
) -> None:
    _load(warehouse, make_bars(["AAPL", "MSFT"], days=12))
    longer = make_bars(["AAPL", "MSFT"], days=15)  # three later sessions, no new action
    warehouse.upsert("bars_1d", longer)
    assert _adjusted_rows(warehouse) == adjust_table(longer, _actions()).to_pylist()


def test_bars_without_factors_are_not_adjusted_bars(
    warehouse: Warehouse, make_bars: MakeBars
) -> None:
    _load(warehouse, make_bars(["AAPL"], days=12))
    warehouse.upsert("bars_1d", make_bars(["MSFT"], days=3))  # no factors loaded yet
    assert {row["symbol"] for row in _adjusted_rows(warehouse)} == {"AAPL"}


def test_a_view_cannot_be_written(warehouse: Warehouse, make_bars: MakeBars) -> None:
    adjusted = adjust_table(make_bars(["AAPL"], days=3), _actions())
    with pytest.raises(TerminalError, match="bars_1d_adjusted: it is a view"):
        warehouse.upsert("bars_1d_adjusted", adjusted)
    with pytest.raises(TerminalError, match="it is a view"):
        warehouse.replace_where("bars_1d_adjusted", adjusted, ["AAPL"])


def test_an_adjusted_table_of_an_older_version_becomes_the_view(
    open_backend: OpenWarehouse, make_bars: MakeBars
) -> None:
    bars = make_bars(["AAPL", "MSFT", "NVDA"], days=12)
    with open_backend() as warehouse:
        adjusted = _load(warehouse, bars)
        # the warehouse as an older version left it: a table of adjusted bars, no factors
        warehouse.execute("CREATE TABLE old_adjusted AS SELECT * FROM bars_1d_adjusted")
        warehouse.execute("DROP VIEW bars_1d_adjusted")
        warehouse.execute("CREATE TABLE bars_1d_adjusted AS SELECT * FROM old_adjusted")
        warehouse.execute("DELETE FROM adjustment_factors")
        kinds = warehouse.query(
            "SELECT lower(table_type) AS kind FROM information_schema.tables "
            "WHERE lower(table_name) = 'bars_1d_adjusted'"
        )
        assert kinds.column("kind").to_pylist() == ["base table"]
    for _ in range(2):  # the second opening finds the view and changes nothing
        with open_backend() as warehouse:
            warehouse.ensure_tables()
            assert _adjusted_rows(warehouse) == adjusted.to_pylist()
            assert warehouse.count_rows("adjustment_factors") == factor_spans(adjusted).num_rows
