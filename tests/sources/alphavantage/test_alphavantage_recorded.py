"""AlphaVantageSource against recorded responses served over real HTTP by a local server."""

from __future__ import annotations

import json
import logging
import traceback
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import SecretStr

from marketlake.errors import (
    ConfigError,
    SourceError,
    TerminalError,
    TransientError,
)
from marketlake.settings import AlphaVantageSettings
from marketlake.sources.alphavantage import AlphaVantageSource
from marketlake.sources.budget import BudgetExhaustedError
from tests.conftest import REAL_DATA
from tests.providers.replay import ProviderServer, Reply, Seen

KEY = "K3YSECRET42XQ"
AV_DIR = REAL_DATA / "alpha_vantage"


def serve_file(server: ProviderServer, path: Path) -> bytes:
    body = path.read_bytes()
    server.route = lambda seen: Reply(200, body) if seen.path == "/query" else None
    return body


def source(server: ProviderServer, *, key: str | None = KEY, **kwargs: Any) -> AlphaVantageSource:
    settings = AlphaVantageSettings(
        base_url=server.url,
        api_key=SecretStr(key) if key else None,
        requests_per_minute=kwargs.pop("per_minute", 1000),
        requests_per_day=kwargs.pop("per_day", 1000),
        timeout_s=kwargs.pop("timeout_s", 5.0),
        daily_function=kwargs.pop(
            "daily_function",
            "TIME_SERIES_DAILY_ADJUSTED" if kwargs.pop("adjusted", True) else "TIME_SERIES_DAILY",
        ),
    )
    return AlphaVantageSource(
        settings,
        sleep=lambda s: None,
        retries=kwargs.pop("retries", 3),
        backoff_s=0.01,
        today=lambda: date(2025, 2, 25),
        **kwargs,
    )


def numbers(entry: dict[str, str]) -> dict[str, float]:
    return {k.split(". ", 1)[1]: float(v) for k, v in entry.items()}


DAILY = sorted(p for p in AV_DIR.glob("*TIME_SERIES_DAILY*.json"))


@pytest.mark.parametrize("path", DAILY, ids=lambda p: p.name)
def test_daily_recordings(server: ProviderServer, path: Path) -> None:
    body = serve_file(server, path)
    payload = json.loads(body)
    adjusted = "Dividend" in payload["Meta Data"]["1. Information"]
    symbol = payload["Meta Data"]["2. Symbol"]
    entries = payload["Time Series (Daily)"]
    start, end = date.fromisoformat(min(entries)), date.fromisoformat(max(entries))
    batch = source(server, adjusted=adjusted).fetch_symbol(symbol, start, end)

    bars = {b["ts"].date().isoformat(): b for b in batch.bars.to_pylist()}
    assert sorted(bars) == sorted(entries)
    for day, entry in entries.items():
        want = numbers(entry)
        for name in ("open", "high", "low", "close", "volume"):
            assert bars[day][name] == want[name]
    dividends = {
        d: numbers(e)["dividend amount"]
        for d, e in entries.items()
        if adjusted and numbers(e)["dividend amount"]
    }
    got = {a["ex_date"].date().isoformat(): a["amount"] for a in batch.actions.to_pylist()}
    assert got == dividends
    assert batch.raw == body and batch.rejects.num_rows == 0
    [request] = server.hits("/query")
    function = "TIME_SERIES_DAILY_ADJUSTED" if adjusted else "TIME_SERIES_DAILY"
    assert request.query["function"] == function and request.query["apikey"] == KEY
    assert request.query["outputsize"] == ("compact" if start > date(2024, 10, 1) else "full")


def test_ibm_dividend_of_2024_11_12(server: ProviderServer) -> None:
    serve_file(server, AV_DIR / "asmarques_TIME_SERIES_DAILY_ADJUSTED_IBM_compact_2025-01-13.json")
    batch = source(server).fetch_symbol("IBM", date(2024, 11, 1), date(2024, 11, 30))
    assert [(a["ex_date"].date(), a["kind"], a["amount"]) for a in batch.actions.to_pylist()] == [
        (date(2024, 11, 12), "dividend", 1.67)
    ]


def test_split_coefficient_becomes_a_split(server: ProviderServer) -> None:
    entry = {
        "1. open": "500.0",
        "2. high": "510.0",
        "3. low": "120.0",
        "4. close": "125.0",
        "5. adjusted close": "125.0",
        "6. volume": "1000",
        "7. dividend amount": "0.0000",
        "8. split coefficient": "4.0",
    }
    server.route = lambda s: Reply.json({"Time Series (Daily)": {"2020-08-31": entry}})
    batch = source(server).fetch_symbol("AAPL", date(2020, 8, 31), date(2020, 8, 31))
    assert [(a["kind"], a["ratio"]) for a in batch.actions.to_pylist()] == [("split", 4.0)]


INTRADAY = sorted(AV_DIR.glob("*TIME_SERIES_INTRADAY*.json"))


@pytest.mark.parametrize("path", INTRADAY, ids=lambda p: p.name)
def test_intraday_recordings(server: ProviderServer, path: Path) -> None:
    body = serve_file(server, path)
    payload = json.loads(body)
    meta = payload["Meta Data"]
    interval = next(v for k, v in meta.items() if k.endswith("Interval"))
    zone = ZoneInfo(next(v for k, v in meta.items() if k.endswith("Time Zone")))
    entries = next(v for k, v in payload.items() if k.startswith("Time Series"))
    table = source(server).fetch_intraday(meta["2. Symbol"], interval=interval)
    got = {row["ts"]: row for row in table.to_pylist()}
    assert len(got) == len(entries)
    for key, entry in entries.items():
        ts = datetime.fromisoformat(key).replace(tzinfo=zone).astimezone(UTC)
        assert got[ts]["close"] == numbers(entry)["close"]
        assert got[ts]["volume"] == numbers(entry)["volume"]


@pytest.mark.parametrize(
    "name",
    [
        "crazzyghost_GLOBAL_QUOTE_IBM_2020-05-08.json",
        "romeltorres_GLOBAL_QUOTE_MSFT_2018-10-05.json",
    ],
)
def test_global_quote_recordings(server: ProviderServer, name: str) -> None:
    serve_file(server, AV_DIR / name)
    quote = {
        k.split(". ")[1]: v
        for k, v in json.loads((AV_DIR / name).read_text())["Global Quote"].items()
    }
    [tick] = source(server).fetch_quote(quote["symbol"]).to_pylist()
    assert tick["price"] == float(quote["price"]) and tick["seq"] == int(quote["volume"])
    day = date.fromisoformat(quote["latest trading day"])
    close = datetime(day.year, day.month, day.day, 16, tzinfo=ZoneInfo("America/New_York"))
    assert tick["ts"] == close.astimezone(UTC)


@pytest.mark.parametrize(
    "name",
    [
        "kirlut_BATCH_STOCK_QUOTES_MSFT_2018-05.json",
        "romeltorres_BATCH_STOCK_QUOTES_MSFT_FB_AAPL_2017-12-29.json",
        "romeltorres_SMA_MSFT_15min_period10_2017-12-20.json",
    ],
)
def test_other_endpoints_bodies_are_clean_source_errors(server: ProviderServer, name: str) -> None:
    serve_file(server, AV_DIR / name)
    with pytest.raises(SourceError, match="MSFT"):
        source(server).fetch_symbol("MSFT", date(2017, 1, 1), date(2018, 12, 31))


def test_malformed_row_is_quarantined(server: ProviderServer) -> None:
    serve_file(server, AV_DIR / "kirlut_MALFORMED_daily_adjusted_MSFT_2018-05.json")
    batch = source(server).fetch_symbol("MSFT", date(2018, 5, 1), date(2018, 5, 31))
    assert batch.bars.num_rows == 0
    [reject] = batch.rejects.to_pylist()
    assert reject["rule"] == "malformed_row" and "'open'" in reject["detail"]
    assert reject["ts"].date() == date(2018, 5, 10)


def nondata() -> list[dict[str, Any]]:
    return json.loads((AV_DIR / "av_nondata_responses_quoted_in_public_threads.json").read_text())[
        "messages"
    ]


THROTTLES = [m for m in nondata() if m["id"].startswith(("note_", "information_", "old_info"))]


@pytest.mark.parametrize("message", THROTTLES, ids=lambda m: m["id"])
def test_throttling_is_retried_and_loses_nothing(
    server: ProviderServer, message: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    body = message.get("body") or {message["key"]: message["message"]}
    data = serve_file(server, AV_DIR / "kirlut_TIME_SERIES_DAILY_MSFT_2018-05.json")
    server.script = [("/query", Reply.json(body)), ("/query", Reply.json(body))]
    batch = source(server, adjusted=False).fetch_symbol("MSFT", date(2018, 5, 8), date(2018, 5, 10))
    assert batch.bars.num_rows == 3 and batch.raw == data
    assert len(server.hits("/query")) == 3

    server.route = lambda seen: Reply.json(body)
    with pytest.raises(TransientError, match="throttled") as info:
        source(server, adjusted=False, retries=2).fetch_symbol(
            "MSFT", date(2018, 5, 8), date(2018, 5, 10)
        )
    assert len(server.hits("/query")) == 3 + 3
    assert_no_key(info.value, caplog)


ERRORS = [m for m in nondata() if m.get("key") == "Error Message" or m["id"].startswith("error")]


@pytest.mark.parametrize("message", ERRORS, ids=lambda m: m["id"])
def test_error_message_is_terminal(
    server: ProviderServer, message: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    body = message.get("body") or {"Error Message": message.get("message", "Invalid API call.")}
    server.route = lambda seen: Reply.json(body)
    with pytest.raises(SourceError, match=r"TIME_SERIES_DAILY_ADJUSTED for symbol ZZZ") as info:
        source(server).fetch_symbol("ZZZ", date(2020, 1, 1), date(2020, 1, 31))
    assert len(server.hits("/query")) == 1
    assert_no_key(info.value, caplog)


def test_premium_endpoint_notice_is_terminal(server: ProviderServer) -> None:
    [premium] = [m for m in nondata() if m["id"].startswith("premium")]
    server.route = lambda seen: Reply.json({"Information": premium["message"]})
    with pytest.raises(SourceError, match="premium endpoint"):
        source(server).fetch_symbol("IBM", date(2020, 1, 1), date(2020, 1, 31))
    assert len(server.hits("/query")) == 1


def assert_no_key(error: BaseException, caplog: pytest.LogCaptureFixture) -> None:
    text = "".join(traceback.format_exception(error))
    assert KEY not in text
    assert all(KEY not in record.getMessage() for record in caplog.records)


def test_http_failures_retry_and_never_show_the_key(
    server: ProviderServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    serve_file(server, AV_DIR / "kirlut_TIME_SERIES_DAILY_MSFT_2018-05.json")
    server.script = [("/query", Reply(503)), ("/query", Reply(200, b"{}", delay_s=1.0))]
    av = source(server, adjusted=False, timeout_s=0.25)
    assert av.fetch_symbol("MSFT", date(2018, 5, 8), date(2018, 5, 10)).bars.num_rows == 3
    assert len(server.hits("/query")) == 3
    assert any("apikey=***" in r.getMessage() for r in caplog.records)

    server.route = lambda seen: Reply(500)
    with pytest.raises(TransientError) as info:
        av.fetch_symbol("MSFT", date(2018, 5, 8), date(2018, 5, 10))
    assert "apikey=***" in str(info.value)
    assert_no_key(info.value, caplog)
    server.route = lambda seen: Reply(200, b'{"Meta Data": {"1. Information": ')
    with pytest.raises(SourceError, match="not valid JSON") as malformed:
        av.fetch_symbol("MSFT", date(2018, 5, 8), date(2018, 5, 10))
    assert_no_key(malformed.value, caplog)
    assert KEY not in repr(av) and KEY not in repr(av.settings) and KEY not in repr(av.http)


def test_missing_key_fails_before_any_request(server: ProviderServer) -> None:
    av = source(server, key=None)
    with pytest.raises(ConfigError, match="MARKETLAKE_SOURCES__ALPHAVANTAGE__API_KEY"):
        list(av.fetch_history(["IBM"], date(2020, 1, 1), date(2020, 1, 31)))
    with pytest.raises(ConfigError):
        av.fetch_quote("IBM")
    assert server.requests == []


def test_backfill_over_the_daily_budget_fails_up_front(server: ProviderServer) -> None:
    av = source(server, per_day=25)
    symbols = [f"S{i}" for i in range(30)]
    assert av.plan(symbols, date(2020, 1, 1), date(2020, 12, 31)) == 30
    with pytest.raises(TerminalError, match="30 requests but only 25"):
        list(av.fetch_history(symbols, date(2020, 1, 1), date(2020, 12, 31)))
    assert server.requests == []


def test_budget_counts_every_attempt(server: ProviderServer) -> None:
    serve_file(server, AV_DIR / "kirlut_TIME_SERIES_DAILY_MSFT_2018-05.json")
    server.script = [("/query", Reply.json(THROTTLES[0]["body"]))]
    av = source(server, adjusted=False, per_day=2)
    av.fetch_symbol("MSFT", date(2018, 5, 8), date(2018, 5, 10))
    assert av.budget.used_today == 2
    with pytest.raises(BudgetExhaustedError):
        av.fetch_symbol("MSFT", date(2018, 5, 8), date(2018, 5, 10))
    assert len(server.hits("/query")) == 2


def seen_query(seen: Seen) -> dict[str, str]:
    return seen.query


# -- free keys: the adjusted series refused, the free one used for the rest of the run -------

DAILY_BODY = AV_DIR / "kirlut_TIME_SERIES_DAILY_MSFT_2018-05.json"
MAY_2018 = (date(2018, 5, 1), date(2018, 5, 31))


def refused_answer(kind: str) -> dict[str, str]:
    """A recorded refusal of TIME_SERIES_DAILY_ADJUSTED: its premium notice or invalid call."""
    if kind == "premium":
        [premium] = [m for m in nondata() if m["id"].startswith("premium")]
        return {"Information": premium["message"]}
    [invalid] = [m for m in nondata() if m["id"] == "error_invalid_call_TIME_SERIES_DAILY_ADJUSTED"]
    return {"Error Message": invalid["message"]}


def serve_free_key(server: ProviderServer, refusal: dict[str, str]) -> bytes:
    """A free key: the adjusted series refused, the free series answered from a recording."""
    body = DAILY_BODY.read_bytes()

    def route(seen: Seen) -> Reply | None:
        if seen.query.get("function") == "TIME_SERIES_DAILY_ADJUSTED":
            return Reply.json(refusal)
        return Reply(200, body) if seen.query.get("function") == "TIME_SERIES_DAILY" else None

    server.route = route
    return body


@pytest.mark.parametrize("kind", ["premium", "invalid_call"])
def test_a_free_key_loads_history_from_the_free_series(
    server: ProviderServer, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    body = serve_free_key(server, refused_answer(kind))
    av = source(server, daily_function="auto", per_day=2)
    assert av.plan(["MSFT", "AAPL"], *MAY_2018) == 3  # one probe of the adjusted series
    with pytest.raises(TerminalError, match=r"2 symbols .* \(and 1 request to learn whether"):
        av.check_budget(["MSFT", "AAPL"], *MAY_2018)
    av = source(server, daily_function="auto")
    batches = list(av.fetch_history(["MSFT", "AAPL"], *MAY_2018))
    functions = [seen.query["function"] for seen in server.hits("/query")]
    assert functions == ["TIME_SERIES_DAILY_ADJUSTED", "TIME_SERIES_DAILY", "TIME_SERIES_DAILY"]
    series = json.loads(body)["Time Series (Daily)"]
    for batch in batches:
        bars = {b["ts"].date().isoformat(): b for b in batch.bars.to_pylist()}
        assert {day: bar["close"] for day, bar in bars.items()} == {
            day: numbers(entry)["close"] for day, entry in series.items()
        }
        assert batch.actions.num_rows == 0 and batch.raw == body
    [note] = av.notes()
    assert "TIME_SERIES_DAILY_ADJUSTED refused for this key, TIME_SERIES_DAILY used" in note
    warnings = [r for r in caplog.records if r.levelname == "WARNING" and "refused" in r.message]
    assert len(warnings) == 1
    assert av.plan(["MSFT", "AAPL"], *MAY_2018) == 2  # remembered: no probe any more


def test_after_the_adjusted_series_answered_an_invalid_call_is_about_the_symbol(
    server: ProviderServer,
) -> None:
    adjusted = (AV_DIR / "kirlut_TIME_SERIES_DAILY_ADJUSTED_MSFT_2018-05.json").read_bytes()
    invalid = refused_answer("invalid_call")
    server.route = lambda s: (
        Reply(200, adjusted) if s.query["symbol"] == "MSFT" else Reply.json(invalid)
    )
    av = source(server, daily_function="auto")
    assert av.fetch_symbol("MSFT", *MAY_2018).bars.num_rows > 0
    assert av.plan(["MSFT"], *MAY_2018) == 1
    with pytest.raises(SourceError, match="TIME_SERIES_DAILY_ADJUSTED for symbol ZZZ"):
        av.fetch_symbol("ZZZ", *MAY_2018)
    assert [s.query["function"] for s in server.hits("/query")] == [
        "TIME_SERIES_DAILY_ADJUSTED",
        "TIME_SERIES_DAILY_ADJUSTED",
    ]
    assert av.notes() == []


def test_an_unknown_symbol_refused_by_both_series_is_an_error(server: ProviderServer) -> None:
    server.route = lambda seen: Reply.json(
        {"Error Message": f"Invalid API call. Please retry for {seen.query['function']}."}
    )
    av = source(server, daily_function="auto")
    with pytest.raises(SourceError, match="TIME_SERIES_DAILY for symbol ZZZ was refused"):
        av.fetch_symbol("ZZZ", *MAY_2018)
    assert av.notes() == [] and av.daily_function == "TIME_SERIES_DAILY_ADJUSTED"


def test_the_setting_forces_either_series(server: ProviderServer) -> None:
    serve_free_key(server, refused_answer("premium"))
    free = source(server, daily_function="TIME_SERIES_DAILY")
    assert free.plan(["MSFT"], *MAY_2018) == 1
    assert free.fetch_symbol("MSFT", *MAY_2018).bars.num_rows > 0
    assert [s.query["function"] for s in server.hits("/query")] == ["TIME_SERIES_DAILY"]
    adjusted = source(server, daily_function="TIME_SERIES_DAILY_ADJUSTED")
    with pytest.raises(SourceError, match="premium endpoint") as info:
        adjusted.fetch_symbol("MSFT", *MAY_2018)
    assert "sources.alphavantage.daily_function" in str(info.value)
    assert [s.query["function"] for s in server.hits("/query")][1:] == [
        "TIME_SERIES_DAILY_ADJUSTED"
    ]
