"""YahooSource against recorded chart responses served over real HTTP by a local server."""

from __future__ import annotations

import csv
import json
import math
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

import pytest

from marketlake.errors import SourceError, TransientError
from marketlake.schemas import BAR_SCHEMA, QUARANTINE_SCHEMA
from marketlake.settings import YahooSettings
from marketlake.sources.intraday import INTRADAY_SCHEMA
from marketlake.sources.yahoo import YahooSource
from tests.conftest import REAL_DATA
from tests.providers.replay import ProviderServer, Reply, Seen

TODAY = date(2025, 2, 25)  # after every recording was made
# Splits after the recorded ranges, from the companies' public announcements.
NVDA_2024_SPLIT = {"date": 1718026200, "numerator": 10, "denominator": 1, "splitRatio": "10:1"}


def load(path: Path) -> tuple[bytes, dict[str, str]]:
    """A recording's body bytes and the query of the request that produced it."""
    data = json.loads(path.read_text())
    if "response" in data:
        query = dict(parse_qsl(urlsplit(data["request"]["url"]).query))
        return json.dumps(data["response"]["bodyJson"]).encode(), query
    twin = path.parent.parent / "recordings" / path.name.replace(".body.json", ".json")
    return path.read_bytes(), load(twin)[1]


def events_body(symbol: str, splits: list[dict[str, Any]], tz: str = "America/New_York") -> bytes:
    """A chart body carrying only split events, as Yahoo answers an events request."""
    result = {
        "meta": {"symbol": symbol, "exchangeTimezoneName": tz, "instrumentType": "EQUITY"},
        "events": {"splits": {str(s["date"]): s for s in splits}} if splits else {},
        "indicators": {"quote": [{}]},
    }
    return json.dumps({"chart": {"result": [result], "error": None}}).encode()


def serve(server: ProviderServer, body: bytes, later: list[dict[str, Any]] | None = None) -> None:
    """Answer daily chart requests with ``body`` and events requests with ``later`` splits."""

    def route(seen: Seen) -> Reply | None:
        if not seen.path.startswith("/v8/finance/chart/"):
            return None
        if seen.query.get("interval") == "1mo":
            return Reply(200, events_body(seen.path.rsplit("/", 1)[-1], later or []))
        return Reply(200, body, {"Content-Type": "application/json"})

    server.route = route


def source(server: ProviderServer, **kwargs: Any) -> YahooSource:
    settings = YahooSettings(base_url=server.url, timeout_s=kwargs.pop("timeout_s", 5.0))
    return YahooSource(settings, sleep=lambda s: None, today=lambda: TODAY, **kwargs)


def period(query: dict[str, str]) -> tuple[date, date]:
    start = datetime.fromtimestamp(int(query["period1"]), UTC).date()
    end = datetime.fromtimestamp(int(query["period2"]), UTC).date() - timedelta(days=1)
    return start, end


RECORDINGS = sorted(
    p
    for d in ("recordings", "bodies")
    for p in (REAL_DATA / "yahoo_chart" / d).glob("*.json")
    if "interval-1m" not in p.name
)


@pytest.mark.parametrize("path", RECORDINGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_daily_recording_parses_to_recorded_values(
    server: ProviderServer, path: Path
) -> None:
    body, query = load(path)
    serve(server, body)
    result = json.loads(body)["chart"]["result"][0]
    symbol = result["meta"]["symbol"]
    start, end = period(query)
    batch = source(server).fetch_symbol(symbol, start, end)

    zone = ZoneInfo(result["meta"]["exchangeTimezoneName"])
    quote = result["indicators"]["quote"][0]
    splits = list((result.get("events") or {}).get("splits", {}).values())
    expected = {}
    for i, stamp in enumerate(result.get("timestamp", [])):
        if quote["close"][i] is None:
            continue
        factor = math.prod(s["numerator"] / s["denominator"] for s in splits if s["date"] > stamp)
        day = datetime.fromtimestamp(stamp, UTC).astimezone(zone).date()
        if not start <= day <= end:
            continue  # a 24/7 market also answers the session that starts at period2
        expected[day] = (quote["close"][i] * factor, quote["volume"][i] / factor)
    bars = batch.bars.to_pylist()
    assert batch.bars.schema.equals(BAR_SCHEMA)
    assert [b["ts"].date() for b in bars] == sorted(expected)
    for bar in bars:
        close, volume = expected[bar["ts"].date()]
        assert bar["close"] == pytest.approx(close, rel=1e-12)
        assert bar["volume"] == pytest.approx(volume, rel=1e-12)
        assert bar["ts"].time() == datetime.min.time() and bar["source"] == "yahoo"
    assert batch.raw == body and batch.raw_format == "json"
    assert batch.batch_id == f"{symbol}-{start}-{end}"
    dividends = (result.get("events") or {}).get("dividends", {}).values()
    amounts = sorted(a["amount"] for a in batch.actions.to_pylist() if a["kind"] == "dividend")
    assert amounts == sorted(d["amount"] for d in dividends)
    assert source(server).adjclose_deviation(batch) < 2e-3


def av_closes(real_data: Path, symbol: str) -> dict[date, float]:
    """As-traded closes from Alpha Vantage's raw daily files (an independent source)."""
    folder = real_data / "daily" / "alphavantage_raw"
    path = next(folder.glob(f"{symbol}_daily_raw_av_*.csv"))
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    date_key = next(k for k in rows[0] if k.lower() in ("timestamp", "date", ""))
    close_key = next(k for k in rows[0] if k.split(". ")[-1].lower() == "close")
    return {date.fromisoformat(r[date_key][:10]): float(r[close_key]) for r in rows}


def test_aapl_before_its_2020_split_is_as_traded(
    server: ProviderServer, yahoo_dir: Path, real_data: Path
) -> None:
    body, _ = load(yahoo_dir / "recordings" / "chart-AAPL-2020-01-01-to-2020-01-03.json")
    split_rec = json.loads(
        load(yahoo_dir / "recordings" / "chart-AAPL-2020-08-31-to-2020-11-07.json")[0]
    )
    later = list(split_rec["chart"]["result"][0]["events"]["splits"].values())
    serve(server, body, later)
    batch = source(server).fetch_symbol("AAPL", date(2020, 1, 1), date(2020, 1, 2))
    adjusted = json.loads(body)["chart"]["result"][0]["indicators"]["quote"][0]["close"][0]
    [bar] = batch.bars.to_pylist()
    assert bar["close"] == pytest.approx(4 * adjusted)
    assert bar["close"] == pytest.approx(av_closes(real_data, "AAPL")[date(2020, 1, 2)], rel=5e-3)
    splits = [(a["ex_date"].date(), a["ratio"]) for a in batch.actions.to_pylist()]
    assert splits == [(date(2020, 8, 31), 4.0)]
    later_requests = [r for r in server.hits("/v8/") if r.query.get("interval") == "1mo"]
    assert len(later_requests) == 1 and later_requests[0].query["events"] == "splits"


def test_nvda_2021_split_matches_alpha_vantage_as_traded(
    server: ProviderServer, yahoo_dir: Path, real_data: Path
) -> None:
    path = (
        yahoo_dir
        / "recordings"
        / "historical-via-chart-NVDA-split-2021-02-01-to-2022-01-31.csv.json"
    )
    body, query = load(path)
    serve(server, body, [NVDA_2024_SPLIT])
    batch = source(server).fetch_symbol("NVDA", *period(query))
    reference = av_closes(real_data, "NVDA")
    bars = batch.bars.to_pylist()
    assert len(bars) == 252
    for bar in bars:
        assert bar["close"] == pytest.approx(reference[bar["ts"].date()], rel=1e-2)
    by_day = {b["ts"].date(): b["close"] for b in bars}
    assert by_day[date(2021, 7, 19)] / by_day[date(2021, 7, 20)] == pytest.approx(4, rel=0.1)
    kinds = {(a["ex_date"].date(), a["ratio"]) for a in batch.actions.to_pylist()}
    assert kinds == {(date(2021, 7, 20), 4.0), (date(2024, 6, 10), 10.0)}


def test_msft_dividends(server: ProviderServer, yahoo_dir: Path) -> None:
    path = (
        yahoo_dir
        / "recordings"
        / "historical-via-chart-MSFT-dividends-2021-02-01-to-2022-01-31.csv.json"
    )
    body, query = load(path)
    serve(server, body)
    yahoo = source(server)
    batch = yahoo.fetch_symbol("MSFT", *period(query))
    dividends = [(a["ex_date"].date(), a["amount"]) for a in batch.actions.to_pylist()]
    assert dividends == [
        (date(2021, 2, 17), 0.56),
        (date(2021, 5, 19), 0.56),
        (date(2021, 8, 18), 0.56),
        (date(2021, 11, 17), 0.62),
    ]
    assert yahoo.adjclose_deviation(batch) < 1e-3


def aapl_body(yahoo_dir: Path) -> dict[str, Any]:
    return json.loads(
        load(yahoo_dir / "recordings" / "chart-AAPL-2020-08-31-to-2020-11-07.json")[0]
    )


def test_null_rows_are_quarantined(server: ProviderServer, yahoo_dir: Path) -> None:
    payload = aapl_body(yahoo_dir)
    quote = payload["chart"]["result"][0]["indicators"]["quote"][0]
    for name in quote:
        quote[name][3] = None
    quote["close"][5] = None
    serve(server, json.dumps(payload).encode())
    batch = source(server).fetch_symbol("AAPL", date(2020, 8, 31), date(2020, 11, 6))
    assert batch.bars.num_rows == 47
    assert batch.rejects.schema.equals(QUARANTINE_SCHEMA)
    assert batch.rejects.column("rule").to_pylist() == ["null_value", "null_value"]
    stamps = payload["chart"]["result"][0]["timestamp"]
    expected = sorted(datetime.fromtimestamp(stamps[i], UTC).date() for i in (3, 5))
    assert sorted(t.date() for t in batch.rejects.column("ts").to_pylist()) == expected


def test_empty_range_and_weekend_intraday(server: ProviderServer, yahoo_dir: Path) -> None:
    payload = aapl_body(yahoo_dir)
    result = payload["chart"]["result"][0]
    del result["timestamp"], result["events"]
    result["indicators"] = {"quote": [{}], "adjclose": [{}]}
    serve(server, json.dumps(payload).encode())
    batch = source(server).fetch_symbol("AAPL", date(2020, 9, 5), date(2020, 9, 6))
    assert batch.bars.num_rows == 0 and batch.actions.num_rows == 0

    body, _ = load(
        yahoo_dir
        / "recordings"
        / "chart-AAPL-2025-02-01-to-2025-02-02-includePrePost-false-interval-1m.json"
    )
    serve(server, body)
    table = source(server).fetch_intraday(
        "AAPL", datetime(2025, 2, 1, tzinfo=UTC), datetime(2025, 2, 2, tzinfo=UTC)
    )
    assert table.num_rows == 0 and table.schema.equals(INTRADAY_SCHEMA)
    assert server.hits("/v8/")[-1].query["interval"] == "1m"


def test_intraday_rows_skip_null_bars(server: ProviderServer) -> None:
    result = {
        "meta": {"symbol": "AAPL", "exchangeTimezoneName": "America/New_York"},
        "timestamp": [1738593000, 1738593060, 1738593120],
        "indicators": {
            "quote": [
                {
                    "open": [1.0, None, 3.0],
                    "high": [1.5, None, 3.5],
                    "low": [0.5, None, 2.5],
                    "close": [1.2, None, 3.2],
                    "volume": [10, None, 30],
                }
            ]
        },
    }
    serve(server, json.dumps({"chart": {"result": [result], "error": None}}).encode())
    table = source(server).fetch_intraday(
        "AAPL", datetime(2025, 2, 3, 14, 30, tzinfo=UTC), datetime(2025, 2, 3, 15, tzinfo=UTC)
    )
    assert table.column("close").to_pylist() == [1.2, 3.2]
    assert table.column("ts").to_pylist()[1] == datetime(2025, 2, 3, 14, 32, tzinfo=UTC)


def test_unknown_symbol_is_a_source_error(server: ProviderServer) -> None:
    error = {
        "chart": {"result": None, "error": {"code": "Not Found", "description": "No data found"}}
    }
    server.route = lambda seen: Reply.json(error, 404)
    with pytest.raises(SourceError, match="ZZZZ9"):
        source(server).fetch_symbol("ZZZZ9", date(2020, 1, 1), date(2020, 1, 3))


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_retryable_statuses_are_retried(
    server: ProviderServer, yahoo_dir: Path, status: int
) -> None:
    body, _ = load(yahoo_dir / "recordings" / "chart-AAPL-2020-01-01-to-2020-01-03.json")
    serve(server, body)
    server.script = [("/v8/", Reply(status)), ("/v8/", Reply(status))]
    batch = source(server, retries=3).fetch_symbol("AAPL", date(2020, 1, 1), date(2020, 1, 2))
    assert batch.bars.num_rows == 1
    assert len([r for r in server.hits("/v8/") if r.query["interval"] == "1d"]) == 3


def test_retries_are_bounded(server: ProviderServer) -> None:
    server.route = lambda seen: Reply(503) if seen.path.startswith("/v8/") else None
    with pytest.raises(TransientError, match="503"):
        source(server, retries=2).fetch_symbol("AAPL", date(2020, 1, 1), date(2020, 1, 2))
    assert len(server.hits("/v8/")) == 3


def test_timeouts_are_retried_then_reported(server: ProviderServer, yahoo_dir: Path) -> None:
    body, _ = load(yahoo_dir / "recordings" / "chart-AAPL-2020-01-01-to-2020-01-03.json")
    serve(server, body)
    server.script = [("/v8/", Reply(200, body, delay_s=1.0))]
    yahoo = source(server, retries=1, timeout_s=0.25)
    assert yahoo.fetch_symbol("AAPL", date(2020, 1, 1), date(2020, 1, 2)).bars.num_rows == 1
    server.script = [
        ("/v8/", Reply(200, body, delay_s=1.0)),
        ("/v8/", Reply(200, body, delay_s=1.0)),
    ]
    with pytest.raises(TransientError, match="timed out"):
        yahoo.fetch_symbol("AAPL", date(2020, 1, 1), date(2020, 1, 2))


def test_malformed_json_names_the_url(server: ProviderServer, yahoo_dir: Path) -> None:
    body, _ = load(yahoo_dir / "recordings" / "chart-AAPL-2020-01-01-to-2020-01-03.json")
    serve(server, body[: len(body) // 2])
    with pytest.raises(SourceError, match=r"/v8/finance/chart/AAPL\?.*not valid JSON"):
        source(server).fetch_symbol("AAPL", date(2020, 1, 1), date(2020, 1, 2))


def test_cookie_and_crumb_handshake(server: ProviderServer, yahoo_dir: Path) -> None:
    body, _ = load(yahoo_dir / "recordings" / "chart-AAPL-2020-01-01-to-2020-01-03.json")
    serve(server, body)
    chart_route = server.route
    crumbs = iter(["crumbOne", "crumbTwo"])

    def route(seen: Seen) -> Reply | None:
        if seen.path == "/":
            return Reply(404, b"", {"Set-Cookie": "A3=session-cookie; Path=/"})
        if seen.path == "/v1/test/getcrumb":
            return Reply(200, next(crumbs).encode())
        return chart_route(seen)

    server.route = route
    server.script = [("/v8/", Reply(401, b'{"finance": {"error": {"code": "Unauthorized"}}}'))]
    batch = source(server).fetch_symbol("AAPL", date(2020, 1, 1), date(2020, 1, 2))
    assert batch.bars.num_rows == 1
    charts = server.hits("/v8/")
    assert [c.query.get("crumb") for c in charts] == ["crumbOne", "crumbTwo", "crumbTwo"]
    assert "A3=session-cookie" in charts[-1].headers.get("Cookie", "")
    assert "Mozilla/5.0" in charts[-1].headers["User-Agent"]


def test_missing_crumb_endpoint_is_tolerated(server: ProviderServer, yahoo_dir: Path) -> None:
    body, _ = load(yahoo_dir / "recordings" / "chart-AAPL-2020-01-01-to-2020-01-03.json")
    serve(server, body)
    source(server).fetch_symbol("AAPL", date(2020, 1, 1), date(2020, 1, 2))
    assert len(server.hits("/v1/test/getcrumb")) == 1
    assert all("crumb" not in r.query for r in server.hits("/v8/"))
