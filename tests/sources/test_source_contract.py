"""The history source contract, run on the simulator, CSV and Parquet files, and on Yahoo and
Alpha Vantage against recorded responses served by a local server."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow.csv as pv
import pyarrow.parquet as pq
import pytest
from pydantic import SecretStr

from marketlake.settings import AlphaVantageSettings, YahooSettings
from marketlake.sources.alphavantage import AlphaVantageSource
from marketlake.sources.files import FileSource
from marketlake.sources.sim import SimSource
from marketlake.sources.yahoo import YahooSource
from tests.providers.replay import ProviderServer, Reply, Seen
from tests.sources.source_contract import (
    ContractCase,
    HistorySourceContract,
    UnknownSymbolContract,
)

SPY_CSV = ("daily", "yahoo_csv", "yahoofinance-SPY-20200901-20210113.csv")
MSFT_CHART = (
    "yahoo_chart",
    "recordings",
    "historical-via-chart-MSFT-dividends-2021-02-01-to-2022-01-31.csv.json",
)
MSFT_AV = ("alpha_vantage", "kirlut_TIME_SERIES_DAILY_ADJUSTED_MSFT_2018-05.json")
AV_ERRORS = ("alpha_vantage", "av_nondata_responses_quoted_in_public_threads.json")


class TestSim(HistorySourceContract):
    @pytest.fixture
    def case(self) -> ContractCase:
        return ContractCase(lambda: SimSource(seed=7), "AAPL", date(2024, 1, 2), date(2024, 6, 28))


class TestCsv(HistorySourceContract, UnknownSymbolContract):
    @pytest.fixture
    def case(self, real_data: Path) -> ContractCase:
        path = real_data.joinpath(*SPY_CSV)
        return ContractCase(
            lambda: FileSource(path, fmt="csv"),
            "SPY",
            date(2020, 9, 1),
            date(2020, 12, 31),
            "QQQ",
            origin=f"file:{path.name}",
        )


class TestParquet(HistorySourceContract, UnknownSymbolContract):
    @pytest.fixture
    def case(self, real_data: Path, tmp_path: Path) -> ContractCase:
        table = pv.read_csv(real_data.joinpath(*SPY_CSV))
        pq.write_table(table, tmp_path / "SPY.parquet")
        return ContractCase(
            lambda: FileSource(tmp_path, fmt="parquet"),
            "SPY",
            date(2020, 9, 1),
            date(2020, 12, 31),
            "QQQ",
            origin="file:SPY.parquet",
        )


def _yahoo_route(body: bytes, symbol: str) -> Any:
    """Daily requests for ``symbol`` get ``body``; other symbols get Yahoo's 404 answer."""
    not_found = {
        "chart": {"result": None, "error": {"code": "Not Found", "description": "No data found"}}
    }
    no_events = {
        "chart": {
            "result": [{"meta": {"symbol": symbol}, "events": {}, "indicators": {"quote": [{}]}}],
            "error": None,
        }
    }

    def route(seen: Seen) -> Reply | None:
        if not seen.path.startswith("/v8/finance/chart/"):
            return None
        if seen.path.rsplit("/", 1)[-1] != symbol:
            return Reply.json(not_found, 404)
        if seen.query.get("interval") == "1mo":
            return Reply.json(no_events)
        return Reply(200, body, {"Content-Type": "application/json"})

    return route


class TestYahoo(HistorySourceContract, UnknownSymbolContract):
    @pytest.fixture
    def case(self, server: ProviderServer, real_data: Path) -> ContractCase:
        recording = json.loads(real_data.joinpath(*MSFT_CHART).read_text())
        server.route = _yahoo_route(json.dumps(recording["response"]["bodyJson"]).encode(), "MSFT")
        settings = YahooSettings(base_url=server.url, timeout_s=5.0)
        return ContractCase(
            lambda: YahooSource(settings, sleep=lambda s: None, today=lambda: date(2025, 2, 25)),
            "MSFT",
            date(2021, 2, 1),
            date(2022, 1, 31),
            "ZZZZ9",
            io_count=lambda: len(server.requests),
        )


class TestAlphaVantage(HistorySourceContract, UnknownSymbolContract):
    @pytest.fixture
    def case(self, server: ProviderServer, real_data: Path) -> ContractCase:
        body = real_data.joinpath(*MSFT_AV).read_bytes()
        messages = json.loads(real_data.joinpath(*AV_ERRORS).read_text())["messages"]
        invalid = next(m for m in messages if m.get("key") == "Error Message")
        error = invalid.get("body") or {"Error Message": invalid["message"]}

        def route(seen: Seen) -> Reply | None:
            if seen.path != "/query":
                return None
            return Reply(200, body) if seen.query.get("symbol") == "MSFT" else Reply.json(error)

        server.route = route
        settings = AlphaVantageSettings(
            base_url=server.url, api_key=SecretStr("K3YSECRET42XQ"), timeout_s=5.0
        )
        return ContractCase(
            lambda: AlphaVantageSource(
                settings, sleep=lambda s: None, backoff_s=0.01, today=lambda: date(2025, 2, 25)
            ),
            "MSFT",
            date(2018, 5, 1),
            date(2018, 5, 31),
            "ZZZ",
            io_count=lambda: len(server.requests),
        )
