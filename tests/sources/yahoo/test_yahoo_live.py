"""Calls to the real Yahoo API; collected only with MARKETLAKE_LIVE=1 (see ../conftest.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from marketlake.settings import YahooSettings
from marketlake.sources.yahoo import YahooSource

pytestmark = pytest.mark.live


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
