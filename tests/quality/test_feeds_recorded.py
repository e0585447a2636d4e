"""Feed-error detectors on yfinance's recorded Yahoo errors and their repaired counterparts."""

from __future__ import annotations

import csv
import math
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from marketlake.quality.feeds import (
    detect_bad_dividends,
    detect_price_100x,
    detect_unadjusted_splits,
    detect_zero_rows,
)
from marketlake.quality.splits import infer_splits
from marketlake.schemas import BAR_SCHEMA, CORPORATE_ACTION_SCHEMA, QUARANTINE_SCHEMA

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def day(text: str) -> datetime:
    return datetime.fromisoformat(text[:10]).replace(tzinfo=UTC)


def read_csv(path: Path, symbol: str) -> tuple[pa.Table, pa.Table, list[dict[str, str]]]:
    """Bars and dividends/splits of a yfinance CSV, plus its raw rows keyed by date."""
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    key = "Date" if "Date" in rows[0] else "Datetime"
    bars, actions = [], []
    for row in rows:
        ts = day(row[key])
        bars.append(
            {
                "symbol": symbol,
                "ts": ts,
                "source": "yahoo",
                "ingested_at": NOW,
                **{c.lower(): float(row[c]) for c in ("Open", "High", "Low", "Close", "Volume")},
            }
        )
        if float(row["Dividends"] or 0):
            actions.append(
                {
                    "symbol": symbol,
                    "ex_date": ts,
                    "kind": "dividend",
                    "ratio": None,
                    "amount": float(row["Dividends"]),
                    "source": "yahoo",
                    "ingested_at": NOW,
                }
            )
        if float(row["Stock Splits"] or 0):
            actions.append(
                {
                    "symbol": symbol,
                    "ex_date": ts,
                    "kind": "split",
                    "ratio": float(row["Stock Splits"]),
                    "amount": None,
                    "source": "yahoo",
                    "ingested_at": NOW,
                }
            )
    return (
        pa.Table.from_pylist(bars, schema=BAR_SCHEMA),
        pa.Table.from_pylist(actions, schema=CORPORATE_ACTION_SCHEMA),
        rows,
    )


def differing_dates(
    bad: list[dict[str, str]], fixed: list[dict[str, str]], columns: list[str]
) -> set[str]:
    key = "Date" if "Date" in bad[0] else "Datetime"
    good = {r[key][:10]: r for r in fixed}
    return {
        r[key][:10]
        for r in bad
        if any(
            not math.isclose(float(r[c]), float(good[r[key][:10]][c]), rel_tol=1e-6)
            for c in columns
        )
    }


def test_price_100x_on_aet(real_data: Path) -> None:
    folder = real_data / "yfinance_testdata"
    bars, _, raw = read_csv(folder / "AET-L-1d-100x-error.csv", "AET.L")
    fixed_bars, _, fixed_raw = read_csv(folder / "AET-L-1d-100x-error-fixed.csv", "AET.L")
    good, rejects = detect_price_100x(bars)
    assert rejects.schema.equals(QUARANTINE_SCHEMA)
    rejected = {ts.date().isoformat() for ts in rejects.column("ts").to_pylist()}
    assert rejected == differing_dates(raw, fixed_raw, ["Open", "High", "Low", "Close"])
    assert set(rejects.column("rule").to_pylist()) == {"price_100x"}
    assert good.num_rows + rejects.num_rows == bars.num_rows
    assert detect_price_100x(fixed_bars)[1].num_rows == 0
    # A reference price decides the level on its own.
    _, by_reference = detect_price_100x(bars, reference=14.5)
    assert by_reference.num_rows == rejects.num_rows


@pytest.mark.parametrize(
    "name", ["CALM-1d-no-bad-divs.csv", "EA-15m-no-bad-divs.csv", "AET-L-1d-100x-error-fixed.csv"]
)
def test_clean_prices_have_no_price_or_zero_rejects(real_data: Path, name: str) -> None:
    bars, _, _ = read_csv(real_data / "yfinance_testdata" / name, "X")
    assert detect_price_100x(bars)[1].num_rows == 0
    assert detect_zero_rows(bars)[1].num_rows == 0


@pytest.mark.parametrize("name", ["NVT-L-1d-bad-div.csv", "NVT-L-1d-bad-div-fixed.csv"])
def test_nvt_pence_rows_of_2024_are_caught(real_data: Path, name: str) -> None:
    # Both NVT files (the '-fixed' one repairs only the dividend) hold untraded rows quoted at
    # ~0.00575 while the share trades at ~0.575: real 100x unit errors.
    bars, _, raw = read_csv(real_data / "yfinance_testdata" / name, "NVT.L")
    key = "Datetime"
    low = {
        r[key][:10]
        for r in raw
        if min(float(r[c]) for c in ("Open", "High", "Low", "Close")) < 0.05
    }
    assert len(low) == 35
    _, rejects = detect_price_100x(bars)
    assert {t.date().isoformat() for t in rejects.column("ts").to_pylist()} == low
    assert detect_zero_rows(bars)[1].num_rows == 0


def test_bad_dividend_on_nvt(real_data: Path) -> None:
    folder = real_data / "yfinance_testdata"
    bars, actions, raw = read_csv(folder / "NVT-L-1d-bad-div.csv", "NVT.L")
    _, fixed_actions, fixed_raw = read_csv(folder / "NVT-L-1d-bad-div-fixed.csv", "NVT.L")
    good, rejects = detect_bad_dividends(actions, bars)
    rejected = {ts.date().isoformat() for ts in rejects.column("ts").to_pylist()}
    assert rejected == differing_dates(raw, fixed_raw, ["Dividends"]) == {"2023-07-20"}
    assert rejects.column("rule").to_pylist() == ["bad_dividend"]
    assert good.num_rows == actions.num_rows - 1
    assert detect_bad_dividends(fixed_actions, bars)[1].num_rows == 0


def test_calm_variable_dividends_are_not_rejected(real_data: Path) -> None:
    bars, actions, _ = read_csv(real_data / "yfinance_testdata" / "CALM-1d-no-bad-divs.csv", "CALM")
    assert actions.num_rows == 10
    good, rejects = detect_bad_dividends(actions, bars)
    assert rejects.num_rows == 0 and good.num_rows == 10


def synthetic_bars(closes: list[float], volume: float = 100.0) -> pa.Table:
    rows = [
        {
            "symbol": "T",
            "ts": datetime(2024, 1, 1 + i, tzinfo=UTC),
            "open": c,
            "high": c,
            "low": c,
            "close": c,
            "volume": volume,
            "source": "t",
            "ingested_at": NOW,
        }
        for i, c in enumerate(closes)
    ]
    return pa.Table.from_pylist(rows, schema=BAR_SCHEMA)


def action(kind: str, dom: int, value: float) -> dict[str, object]:
    return {
        "symbol": "T",
        "ex_date": datetime(2024, 1, dom, tzinfo=UTC),
        "kind": kind,
        "ratio": value if kind == "split" else None,
        "amount": value if kind == "dividend" else None,
        "source": "t",
        "ingested_at": NOW,
    }


def test_dividend_rules_on_small_data() -> None:
    bars = synthetic_bars([10.0] * 20)
    actions = pa.Table.from_pylist(
        [action("dividend", 3, 5.0), action("dividend", 8, 0.2), action("dividend", 12, 0.2)],
        schema=CORPORATE_ACTION_SCHEMA,
    )
    _, rejects = detect_bad_dividends(actions, bars)
    details = dict(
        zip(
            [t.day for t in rejects.column("ts").to_pylist()],
            rejects.column("detail").to_pylist(),
            strict=True,
        )
    )
    assert sorted(details) == [3, 12]
    assert "50%" in details[3] and "repeats" in details[12]


def test_zero_rows() -> None:
    bars = synthetic_bars([10.0, 0.0, 11.0, float("nan")])
    good, rejects = detect_zero_rows(bars)
    assert [t.day for t in rejects.column("ts").to_pylist()] == [2, 4]
    assert good.column("close").to_pylist() == [10.0, 11.0]


def nvda_raw(real_data: Path) -> pa.Table:
    """NVDA as traded around its 2021 4:1 split, from Alpha Vantage's raw daily file."""
    path = real_data / "daily" / "alphavantage_raw" / "NVDA_daily_raw_av_1999-2024.csv"
    with path.open() as handle:
        rows = [r for r in csv.DictReader(handle) if "2021-06-01" <= r["timestamp"] <= "2021-09-01"]
    return pa.Table.from_pylist(
        [
            {
                "symbol": "NVDA",
                "ts": day(r["timestamp"]),
                "open": float(r["open"]),
                "high": float(r["high"]),
                "low": float(r["low"]),
                "close": float(r["close"]),
                "volume": float(r["volume"]),
                "source": "alphavantage",
                "ingested_at": NOW,
            }
            for r in rows
        ],
        schema=BAR_SCHEMA,
    )


def test_split_checks_on_nvda(real_data: Path) -> None:
    bars = nvda_raw(real_data)
    split = {
        "symbol": "NVDA",
        "ex_date": day("2021-07-20"),
        "kind": "split",
        "ratio": 4.0,
        "amount": None,
        "source": "alphavantage",
        "ingested_at": NOW,
    }
    with_event = pa.Table.from_pylist([split], schema=CORPORATE_ACTION_SCHEMA)
    assert infer_splits(bars, with_event).num_rows == 0
    assert detect_unadjusted_splits(with_event, bars)[1].num_rows == 0

    # Without the event the 4:1 drop (volume up ~2x) is an inferred split; no bar is lost.
    inferred = infer_splits(bars, CORPORATE_ACTION_SCHEMA.empty_table())
    assert inferred.to_pylist() == [{**split, "ingested_at": NOW}]

    wrong_day = pa.Table.from_pylist(
        [{**split, "ex_date": day("2021-08-10")}], schema=CORPORATE_ACTION_SCHEMA
    )
    _, rejects = detect_unadjusted_splits(wrong_day, bars)
    assert rejects.column("rule").to_pylist() == ["unadjusted_split"]
