"""The table specs: every table of the design, keys that exist and are required, UTC times."""

from __future__ import annotations

import pyarrow as pa
import pytest

from marketlake.errors import ConfigError
from marketlake.schemas import (
    BAR_SCHEMA,
    CORPORATE_ACTION_SCHEMA,
    CURATED_ACTION_SCHEMA,
    QUARANTINE_SCHEMA,
    TICK_SCHEMA,
)
from marketlake.warehouse import TABLES, get_table_spec

DESIGN_TABLES = {
    "symbols", "sessions", "bars_1d", "corporate_actions", "bars_1d_adjusted", "daily_metrics",
    "indicators_1d", "ticks", "bars_1m", "stream_windows", "quarantine", "runs",
}  # fmt: skip
DESIGN_INDICATORS = [
    "sma_20", "ema_20", "rsi_14", "macd", "macd_signal", "macd_hist", "bb_upper", "bb_middle",
    "bb_lower", "atr_14", "stddev_20", "obv",
]  # fmt: skip


def test_every_design_table_has_a_spec() -> None:
    assert DESIGN_TABLES | {"missing_sessions"} <= set(TABLES)


@pytest.mark.parametrize("name", sorted(TABLES))
def test_keys_are_required_columns_and_times_are_utc(name: str) -> None:
    spec = TABLES[name]
    assert spec.description
    assert len(set(spec.columns)) == len(spec.columns)
    for key in spec.keys:
        assert not spec.schema.field(key).nullable
    for field in spec.schema:
        if pa.types.is_timestamp(field.type):
            assert field.type == pa.timestamp("us", tz="UTC")


@pytest.mark.parametrize(
    ("name", "schema"),
    [
        ("bars_1d", BAR_SCHEMA),
        ("corporate_actions", CURATED_ACTION_SCHEMA),
        ("ticks", TICK_SCHEMA),
        ("quarantine", QUARANTINE_SCHEMA),
    ],
)
def test_canonical_tables_use_the_canonical_columns(name: str, schema: pa.Schema) -> None:
    spec = TABLES[name]
    assert spec.columns == schema.names
    assert [f.type for f in spec.schema] == [f.type for f in schema]


def test_curated_actions_are_the_canonical_actions_marked_inferred() -> None:
    assert TABLES["corporate_actions"].columns[:-1] == CORPORATE_ACTION_SCHEMA.names
    assert TABLES["corporate_actions"].schema.field("inferred").type == pa.bool_()


def test_time_series_tables_are_keyed_by_symbol_and_ts() -> None:
    for name in ("bars_1d", "bars_1d_adjusted", "daily_metrics", "indicators_1d", "bars_1m"):
        assert TABLES[name].keys == ("symbol", "ts")
    assert TABLES["ticks"].keys == ("symbol", "ts", "seq")


def test_indicator_columns_follow_the_design() -> None:
    assert TABLES["indicators_1d"].columns == ["symbol", "ts", *DESIGN_INDICATORS]


def test_an_unknown_table_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"bars_1d.*stream_windows"):
        get_table_spec("bars_5m")
