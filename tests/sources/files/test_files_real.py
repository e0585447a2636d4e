"""Acceptance: real exported files read by FileSource, checked against the csv module."""

from __future__ import annotations

import csv
from datetime import date, datetime
from pathlib import Path

import pytest

from marketlake.sources.base import HistoryBatch
from marketlake.sources.files import FileSource

WIDE = (date(1900, 1, 1), date(2100, 12, 31))


def _one(path: Path) -> HistoryBatch:
    source = FileSource(path)
    [batch] = source.fetch_history(source.available_symbols(), *WIDE)
    return batch


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _by_day(batch: HistoryBatch) -> dict[date, dict[str, object]]:
    return {row["ts"].date(): row for row in batch.bars.to_pylist()}


def _single(folder: Path, pattern: str) -> Path:
    [path] = sorted(folder.glob(pattern))
    return path


def test_yahoo_csv_export(real_data: Path) -> None:
    path = real_data / "daily/yahoo_csv/yahoofinance-SPY-20200901-20210113.csv"
    batch = _one(path)
    rows = _csv_rows(path)
    bars = _by_day(batch)
    assert batch.bars.num_rows == len(rows)
    assert set(batch.bars.column("symbol").to_pylist()) == {"SPY"}
    for row in (rows[0], rows[len(rows) // 2], rows[-1]):
        bar = bars[date.fromisoformat(row["Date"])]
        assert bar["open"] == float(row["Open"])
        assert bar["close"] == float(row["Close"])  # not Adj Close
        assert bar["volume"] == float(row["Volume"])
    assert batch.rejects.num_rows == 0


def test_nasdaq_export(real_data: Path) -> None:
    path = _single(real_data / "daily/nasdaq_format", "MSFT_*.csv")
    batch = _one(path)
    rows = _csv_rows(path)
    bars = _by_day(batch)
    assert batch.bars.num_rows == len(rows)
    assert batch.bars.column("symbol")[0].as_py() == "MSFT"
    for row in (rows[0], rows[1000], rows[-1]):
        bar = bars[datetime.strptime(row["date"], "%m/%d/%Y").date()]
        assert (bar["open"], bar["high"], bar["low"], bar["close"]) == tuple(
            float(row[k].lstrip("$")) for k in ("open", "high", "low", "close")
        )
    days = batch.bars.column("ts").to_pylist()
    assert days == sorted(days)


def test_yahoo_web_table(real_data: Path) -> None:
    path = _single(real_data / "daily/yahoo_webtable", "TSLA_*.csv")
    batch = _one(path)
    rows = _csv_rows(path)
    priced = [r for r in rows if r["Open"].replace(".", "", 1).isdigit()]
    events = [r for r in rows if r["Open"].endswith(("Stock Split", "Dividend"))]
    assert batch.bars.num_rows == len(priced)
    assert batch.rejects.num_rows == len(rows) - len(priced) - len(events) == 1  # the footnote
    splits = [a for a in batch.actions.to_pylist() if a["kind"] == "split"]
    assert [(a["ex_date"].date(), a["ratio"]) for a in splits] == [(date(2020, 8, 31), 5.0)]
    bars = _by_day(batch)
    for row in priced[:3] + priced[-3:]:
        day = datetime.strptime(row["Date"], "%b %d, %Y").date()
        factor = 5.0 if day < date(2020, 8, 31) else 1.0  # the table is split-adjusted
        assert bars[day]["close"] == pytest.approx(float(row["Close*"]) * factor)
        volume = float(row["Volume"].replace(",", ""))
        assert bars[day]["volume"] == pytest.approx(volume / factor)


def test_alpha_vantage_adjusted_splits_and_dividends(real_data: Path) -> None:
    path = _single(real_data / "daily/alphavantage_adjusted", "AAPL_*.csv")
    batch = _one(path)
    rows = _csv_rows(path)
    assert batch.bars.num_rows == len(rows)
    actions = batch.actions.to_pylist()
    splits = {a["ex_date"].date(): a["ratio"] for a in actions if a["kind"] == "split"}
    assert splits[date(2020, 8, 31)] == 4.0
    assert splits[date(2014, 6, 9)] == 7.0
    assert len(splits) == sum(float(r["split_coefficient"]) != 1.0 for r in rows)
    dividends = [a for a in actions if a["kind"] == "dividend"]
    assert len(dividends) == sum(float(r["dividend_amount"]) > 0 for r in rows)
    bars = _by_day(batch)
    for row in (rows[0], rows[2000], rows[-1]):
        bar = bars[date.fromisoformat(row["timestamp"])]
        assert bar["close"] == float(row["close"])  # as traded, not adjusted_close
        assert bar["high"] == float(row["high"])
