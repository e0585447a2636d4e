"""Calls to the real providers; collected only with MARKETLAKE_LIVE=1 (see conftest.py)."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta

import pytest
from pydantic import SecretStr

from marketlake.settings import AlphaVantageSettings, YahooSettings
from marketlake.sources.alphavantage import AlphaVantageSource
from marketlake.sources.yahoo import YahooSource

pytestmark = pytest.mark.live

# Read at import: the shared autouse fixture clears MARKETLAKE_* variables before each test.
AV_KEY = os.environ.get("MARKETLAKE_SOURCES__ALPHAVANTAGE__API_KEY", "")


def test_yahoo_live_daily_and_split() -> None:
    yahoo = YahooSource(YahooSettings())
    with yahoo:
        batch = yahoo.fetch_symbol("AAPL", date(2020, 8, 24), date(2020, 9, 4))
        closes = {b["ts"].date(): b["close"] for b in batch.bars.to_pylist()}
        assert closes[date(2020, 8, 28)] / closes[date(2020, 8, 31)] == pytest.approx(4, rel=0.1)
        assert ("split", 4.0) in {(a["kind"], a["ratio"]) for a in batch.actions.to_pylist()}
        assert yahoo.adjclose_deviation(batch) < 2e-3
        end = datetime.now(UTC)
        intraday = yahoo.fetch_intraday("AAPL", end - timedelta(days=5), end)
        assert intraday.num_rows > 0


def test_alphavantage_live_daily() -> None:
    settings = AlphaVantageSettings(api_key=SecretStr(AV_KEY))
    av = AlphaVantageSource(settings, adjusted=False)
    with av:
        today = datetime.now(UTC).date()
        batch = av.fetch_symbol("IBM", today - timedelta(days=30), today)
        assert batch.bars.num_rows > 10
        assert AV_KEY.encode() not in batch.raw
