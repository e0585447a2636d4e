"""Calls to the real Alpha Vantage API; collected only with MARKETLAKE_LIVE=1 and a key.

See tests/sources/conftest.py for the gate.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from marketlake.settings import AlphaVantageSettings
from marketlake.sources.alphavantage import AlphaVantageSource

pytestmark = pytest.mark.live

# Read at import: the shared autouse fixture clears MARKETLAKE_* variables before each test.
AV_KEY = os.environ.get("MARKETLAKE_SOURCES__ALPHAVANTAGE__API_KEY", "")


def test_alphavantage_live_daily() -> None:
    settings = AlphaVantageSettings(api_key=SecretStr(AV_KEY), daily_function="TIME_SERIES_DAILY")
    av = AlphaVantageSource(settings)
    with av:
        today = datetime.now(UTC).date()
        batch = av.fetch_symbol("IBM", today - timedelta(days=30), today)
        assert batch.bars.num_rows > 10
        assert AV_KEY.encode() not in batch.raw
