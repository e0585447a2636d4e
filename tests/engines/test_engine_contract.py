"""The engine contract: every registered engine reads the lake itself and writes the same
derived datasets, for the job's symbols only, once, at the job's snapshot."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from marketlake.analytics.adjust import apply_spans, factor_spans
from marketlake.calendar import get_sessions
from marketlake.catalogue import (
    ADJUSTMENT_FACTORS,
    BARS_1D,
    BARS_1D_ADJUSTED,
    CORPORATE_ACTIONS,
    DAILY_METRICS,
    DERIVED,
    INDICATORS_1D,
    MISSING_SESSIONS,
)
from marketlake.engines.base import EngineJob, ExpectedSessions
from marketlake.engines.registry import ENGINES, create_engine
from marketlake.errors import ConfigError
from marketlake.lake import LakeStorage, LakeTables
from marketlake.schemas import BAR_SCHEMA, CORPORATE_ACTION_SCHEMA
from tests.engines.parity import assert_same, reference

NOW = datetime(2024, 7, 1, tzinfo=UTC)
START, END = date(2023, 1, 3), date(2023, 12, 29)


def bars_for(symbols: dict[str, int], skip: int | None = None) -> pa.Table:
    """Daily bars on real XNYS sessions of 2023 (a random walk per symbol, seeded)."""
    days = get_sessions("XNYS").session_array(START, END).astype("datetime64[us]")
    parts = []
    for seed, (symbol, size) in enumerate(symbols.items()):
        rng = np.random.default_rng(seed)
        close = 50 * np.exp(np.cumsum(rng.normal(0, 0.015, size)))
        index = [i for i in range(size) if i != skip]
        parts.append(
            pa.table(
                {
                    "symbol": [symbol] * len(index),
                    "ts": pa.array(days[index]).cast(BAR_SCHEMA.field("ts").type),
                    "open": close[index] * 1.002,
                    "high": close[index] * 1.01,
                    "low": close[index] * 0.99,
                    "close": close[index],
                    "volume": rng.integers(1_000, 90_000, size)[index].astype(float),
                    "source": ["sim"] * len(index),
                    "ingested_at": pa.array([NOW] * len(index), BAR_SCHEMA.field("ts").type),
                }
            )
        )
    return pa.concat_tables(parts).cast(BAR_SCHEMA)


def split_of(symbol: str, day: date, ratio: float) -> pa.Table:
    """One split corporate action."""
    return pa.Table.from_pylist(
        [
            {
                "symbol": symbol,
                "ex_date": datetime(day.year, day.month, day.day, tzinfo=UTC),
                "kind": "split",
                "ratio": ratio,
                "amount": None,
                "source": "sim",
                "ingested_at": NOW,
            }
        ],
        schema=CORPORATE_ACTION_SCHEMA,
    )


@pytest.fixture(params=sorted(ENGINES))
def engine_name(request: pytest.FixtureRequest) -> str:
    """Each registered engine in turn (Spark joins the test session's Spark session)."""
    if request.param == "spark":
        request.getfixturevalue("spark_session")
    return str(request.param)


@pytest.fixture
def tables(tmp_path: Path) -> LakeTables:
    """Curated bars and a split for AAPL and MSFT; NVDA's bars are in the lake too."""
    lake = LakeTables(LakeStorage.from_url((tmp_path / "lake").as_uri()))
    lake.merge(BARS_1D, bars_for({"AAPL": 120, "MSFT": 150, "NVDA": 90}), BARS_1D.keys)
    lake.merge(CORPORATE_ACTIONS, split_of("AAPL", date(2023, 3, 1), 4.0), CORPORATE_ACTIONS.keys)
    return lake


def run(engine_name: str, job: EngineJob) -> None:
    engine = create_engine(engine_name)
    try:
        engine.process(job)
    finally:
        engine.close()


def test_outputs_equal_the_kernels_on_the_lakes_data(engine_name: str, tables: LakeTables) -> None:
    job = EngineJob(tables=tables, symbols=("AAPL", "MSFT"), now=NOW)
    run(engine_name, job)
    wanted = pc.field("symbol").isin(["AAPL", "MSFT"])
    expected = reference(
        tables.read(BARS_1D, filter=wanted),
        tables.read(CORPORATE_ACTIONS).cast(CORPORATE_ACTION_SCHEMA),
    )
    for dataset in (DAILY_METRICS, INDICATORS_1D):
        stored = tables.read(dataset)
        assert sorted(set(stored.column("symbol").to_pylist())) == ["AAPL", "MSFT"]
        assert_same(stored, expected[dataset.name], dataset.columns)
    assert not tables.exists("analytics/bars_1d_adjusted")  # derived at read time instead
    spans = tables.read(ADJUSTMENT_FACTORS).sort_by([("symbol", "ascending")])
    adjusted = apply_spans(tables.read(BARS_1D, filter=wanted), spans)
    assert_same(adjusted, expected[BARS_1D_ADJUSTED.name], BARS_1D_ADJUSTED.columns)
    aapl = adjusted.filter(pc.field("symbol") == "AAPL")
    assert sorted(set(aapl.column("price_factor").to_pylist())) == [0.25, 1.0]
    assert spans.to_pylist() == factor_spans(expected[BARS_1D_ADJUSTED.name]).to_pylist()
    split = datetime(2023, 3, 1, tzinfo=UTC)
    assert [(r["symbol"], r["valid_to"], r["price_factor"]) for r in spans.to_pylist()] == [
        ("AAPL", split, 0.25),
        ("AAPL", None, 1.0),
        ("MSFT", None, 1.0),
    ]


def test_a_rerun_leaves_every_row_once_and_other_symbols_alone(
    engine_name: str, tables: LakeTables
) -> None:
    run(engine_name, EngineJob(tables=tables, symbols=("NVDA",), now=NOW))
    nvda = tables.read(INDICATORS_1D)
    for _ in range(2):
        run(engine_name, EngineJob(tables=tables, symbols=("AAPL",), now=NOW))
    stored = tables.read(INDICATORS_1D)
    counts = (
        dict(pc.value_counts(stored.column("symbol")).to_pylist_dict_rows())
        if False
        else {
            row["values"]: row["counts"]
            for row in pc.value_counts(stored.column("symbol")).to_pylist()
        }
    )
    assert counts == {"AAPL": 120, "NVDA": 90}
    assert_same(stored.filter(pc.field("symbol") == "NVDA"), nvda, INDICATORS_1D.columns)


def test_a_snapshot_job_reads_the_older_version(engine_name: str, tables: LakeTables) -> None:
    version = tables.version(BARS_1D)
    shifted = bars_for({"MSFT": 150})
    doubled = shifted.set_column(
        shifted.schema.get_field_index("close"), "close", pc.multiply(shifted["close"], 2.0)
    )
    tables.merge(BARS_1D, doubled, BARS_1D.keys)
    job = EngineJob(tables=tables, symbols=("MSFT",), now=NOW, bars_version=version)
    run(engine_name, job)
    old = tables.read(BARS_1D, version=version, filter=pc.field("symbol") == "MSFT")
    expected = reference(old, CORPORATE_ACTION_SCHEMA.empty_table())["daily_metrics"]
    assert_same(tables.read(DAILY_METRICS), expected, DAILY_METRICS.columns)


def test_missing_sessions_follow_the_calendar(engine_name: str, tmp_path: Path) -> None:
    lake = LakeTables(LakeStorage.from_url((tmp_path / "lake").as_uri()))
    lake.merge(BARS_1D, bars_for({"AAPL": 100}, skip=40), BARS_1D.keys)
    sessions = get_sessions("XNYS").session_array(START, END)
    expected_to_end = ExpectedSessions("XNYS", START, END)
    run(engine_name, EngineJob(lake, ("AAPL",), NOW, expected=expected_to_end))
    missing = lake.read(MISSING_SESSIONS).sort_by("ts")
    days = [ts.date() for ts in missing.column("ts").to_pylist()]
    assert days == [sessions[40].astype(date)] + [d.astype(date) for d in sessions[100:]]
    assert set(missing.column("detected_at").to_pylist()) == {NOW}
    to_last_bar = ExpectedSessions("XNYS", START, END, to_last_bar=True)
    run(engine_name, EngineJob(lake, ("AAPL",), NOW, expected=to_last_bar))
    days = [ts.date() for ts in lake.read(MISSING_SESSIONS).column("ts").to_pylist()]
    assert days == [sessions[40].astype(date)]


def test_the_lake_tables_have_the_catalogue_schemas(engine_name: str, tables: LakeTables) -> None:
    expected = ExpectedSessions("XNYS", START, END)
    run(engine_name, EngineJob(tables, ("AAPL", "MSFT"), NOW, expected=expected))
    for dataset in DERIVED:
        stored = tables.dataset(dataset).schema
        assert stored.names == dataset.schema.names, dataset.name
        for field in dataset.schema:
            assert stored.field(field.name).type == field.type, (dataset.name, field.name)


def test_an_unknown_engine_lists_the_registered_ones() -> None:
    with pytest.raises(ConfigError, match=", ".join(ENGINES)):
        create_engine("flink")
