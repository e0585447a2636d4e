"""``marketlake run --source yahoo`` end to end against recorded responses.

A local HTTP server replays the recordings in tests/data; the sources reach it
through their base-URL settings, over real HTTP. The Alpha Vantage runs are in
``test_providers_e2e_alphavantage.py``.
"""

from __future__ import annotations

import copy
import gzip
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.pipeline.cli import marketlake, sql_json
from tests.providers.replay import ProviderServer, Reply, Seen

NEW_YORK = ZoneInfo("America/New_York")
YAHOO_BODY = "yahoo_chart/bodies/chart-AAPL-2020-08-31-to-2020-11-07.body.json"
YAHOO_RANGE = ("--start", "2020-08-31", "--end", "2020-11-06")
API_KEY = "av-secret-key-5H7Q"
PERIOD = ("period1", "period2")


def run(home: Path, server: ProviderServer, *args: str) -> tuple[int, str]:
    env = {
        "MARKETLAKE_SOURCES__YAHOO__BASE_URL": server.url,
        "MARKETLAKE_SOURCES__ALPHAVANTAGE__BASE_URL": server.url,
        "MARKETLAKE_SOURCES__ALPHAVANTAGE__API_KEY": API_KEY,
    }
    proc = marketlake("run", "--home", str(home), *args, env=env)
    return proc.returncode, proc.stdout + proc.stderr


def stage_detail(home: Path, stage: str) -> dict[str, Any]:
    rows = sql_json(home, f"SELECT detail FROM runs WHERE stage = '{stage}' ORDER BY started_at")
    detail: dict[str, Any] = json.loads(rows[-1]["detail"])
    return detail


# -- yahoo ---------------------------------------------------------------------------------


def chart(real_data: Path) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((real_data / YAHOO_BODY).read_text())
    return payload


def without_day(payload: dict[str, Any], index: int) -> dict[str, Any]:
    """``payload`` with the ``index``-th session taken out of every array."""
    changed = copy.deepcopy(payload)
    result = changed["chart"]["result"][0]
    del result["timestamp"][index]
    for block in (*result["indicators"]["quote"], *result["indicators"]["adjclose"]):
        for values in block.values():
            del values[index]
    return changed


def with_zero_day(payload: dict[str, Any], index: int) -> dict[str, Any]:
    """``payload`` with every price of the ``index``-th session set to 0."""
    changed = copy.deepcopy(payload)
    quote = changed["chart"]["result"][0]["indicators"]["quote"][0]
    for name in ("open", "high", "low", "close"):
        quote[name][index] = 0.0
    return changed


def no_later_splits(symbol: str) -> bytes:
    """Yahoo's answer to the events request for splits after the range: none."""
    result = {
        "meta": {"symbol": symbol, "exchangeTimezoneName": "America/New_York"},
        "events": {},
        "indicators": {"quote": [{}]},
    }
    return json.dumps({"chart": {"result": [result], "error": None}}).encode()


def serve_yahoo(server: ProviderServer, *bodies: bytes) -> None:
    """Answer daily chart requests with ``bodies`` in turn (the last one from then on)."""
    answers = list(bodies)

    def route(seen: Seen) -> Reply | None:
        if not seen.path.startswith("/v8/finance/chart/"):
            return None
        if seen.query.get("interval") == "1mo":
            return Reply(200, no_later_splits(seen.path.rsplit("/", 1)[-1]))
        body = answers.pop(0) if len(answers) > 1 else answers[0]
        return Reply(200, body, {"Content-Type": "application/json"})

    server.route = route


def daily_requests(server: ProviderServer) -> list[Seen]:
    return [s for s in server.hits("/v8/finance/chart/") if s.query.get("interval") == "1d"]


def session_day(stamp: int) -> str:
    return datetime.fromtimestamp(stamp, UTC).astimezone(NEW_YORK).date().isoformat()


def test_yahoo_run_loads_the_recording(real_data: Path, server: ProviderServer, home: Path) -> None:
    body = (real_data / YAHOO_BODY).read_bytes()
    serve_yahoo(server, body)
    code, output = run(home, server, "--source", "yahoo", "--symbols", "AAPL", *YAHOO_RANGE)
    assert code == 0, output

    result = chart(real_data)["chart"]["result"][0]
    quote = result["indicators"]["quote"][0]
    expected = {
        session_day(stamp): tuple(quote[k][i] for k in ("open", "high", "low", "close", "volume"))
        for i, stamp in enumerate(result["timestamp"])
    }
    rows = sql_json(
        home,
        "SELECT CAST(ts AS DATE) AS day, open, high, low, close, volume, source FROM bars_1d "
        "WHERE symbol = 'AAPL' ORDER BY ts",
    )
    # the recording starts on the split's ex-date: no later split, so prices are as served
    loaded = {r["day"]: (r["open"], r["high"], r["low"], r["close"], r["volume"]) for r in rows}
    assert loaded.keys() == expected.keys()
    for day, values in expected.items():
        assert loaded[day] == pytest.approx(values), day
    assert {r["source"] for r in rows} == {"yahoo"}
    actions = sql_json(
        home,
        "SELECT CAST(ex_date AS DATE) AS day, kind, ratio, amount FROM corporate_actions "
        "ORDER BY ex_date",
    )
    (split,) = result["events"]["splits"].values()
    (dividend,) = result["events"]["dividends"].values()
    assert actions == [
        {
            "day": session_day(split["date"]),
            "kind": "split",
            "ratio": split["numerator"] / split["denominator"],
            "amount": None,
        },
        {"day": session_day(dividend["date"]), "kind": "dividend", "ratio": None, "amount": 0.205},
    ]
    raw = list((home / "lake" / "raw" / "yahoo" / "bars_1d").rglob("*.json.gz"))
    assert [p.name for p in raw] == ["AAPL-2020-08-31-2020-11-06.json.gz"]
    assert gzip.decompress(raw[0].read_bytes()) == body
    assert sql_json(home, "SELECT * FROM missing_sessions") == []

    seen = len(server.requests)
    code, output = run(home, server, "--source", "yahoo", "--symbols", "AAPL", *YAHOO_RANGE)
    assert code == 0, output
    assert len(server.requests) == seen, "sessions already present were asked for again"
    assert stage_detail(home, "fetch_history")["symbols_up_to_date"] == 1


def test_missing_session_is_refetched_once_and_filled(
    real_data: Path, server: ProviderServer, home: Path
) -> None:
    payload = chart(real_data)
    gap = session_day(payload["chart"]["result"][0]["timestamp"][20])
    serve_yahoo(server, json.dumps(without_day(payload, 20)).encode(), json.dumps(payload).encode())
    code, output = run(home, server, "--source", "yahoo", "--symbols", "AAPL", *YAHOO_RANGE)
    assert code == 0, output

    requests = daily_requests(server)
    assert len(requests) == 2
    asked = [
        datetime.fromtimestamp(int(requests[1].query[k]), UTC).date()
        for k in ("period1", "period2")
    ]
    assert asked[0].isoformat() == gap  # the re-fetch asks for the gap only
    assert (asked[1] - asked[0]).days == 1
    detail = stage_detail(home, "consume_history")
    assert (detail["refetched_sessions"], detail["refetch_filled"]) == (1, 1)
    assert "1 missing sessions re-fetched (1 filled)" in detail["summary"]
    rows = sql_json(home, f"SELECT count(*) AS n FROM bars_1d WHERE CAST(ts AS DATE) = '{gap}'")
    assert rows == [{"n": 1}]
    assert sql_json(home, "SELECT * FROM missing_sessions") == []
    raw = sorted(p.name for p in (home / "lake" / "raw" / "yahoo").rglob("*.json.gz"))
    assert raw == ["AAPL-2020-08-31-2020-11-06.json.gz", f"AAPL-{gap}-{gap}-refetch.json.gz"]


def test_session_never_delivered_is_reported_and_not_asked_again(
    real_data: Path, server: ProviderServer, home: Path
) -> None:
    payload = chart(real_data)
    gap = session_day(payload["chart"]["result"][0]["timestamp"][20])
    serve_yahoo(server, json.dumps(without_day(payload, 20)).encode())
    code, output = run(home, server, "--source", "yahoo", "--symbols", "AAPL", *YAHOO_RANGE)
    assert code == 0, output
    assert len(daily_requests(server)) == 2  # the range, then the gap once
    detail = stage_detail(home, "consume_history")
    assert (detail["refetched_sessions"], detail["refetch_filled"]) == (1, 0)
    missing = sql_json(home, "SELECT symbol, CAST(ts AS DATE) AS day FROM missing_sessions")
    assert missing == [{"symbol": "AAPL", "day": gap}]
    assert stage_detail(home, "process")["missing_sessions"] == 1

    code, output = run(home, server, "--source", "yahoo", "--symbols", "AAPL", *YAHOO_RANGE)
    assert code == 0, output
    assert len(daily_requests(server)) == 2
    assert sql_json(home, "SELECT symbol, CAST(ts AS DATE) AS day FROM missing_sessions") == missing


def test_feed_rules_quarantine_provider_rows(
    real_data: Path, server: ProviderServer, home: Path
) -> None:
    payload = chart(real_data)
    bad_day = session_day(payload["chart"]["result"][0]["timestamp"][10])
    serve_yahoo(server, json.dumps(with_zero_day(payload, 10)).encode())
    code, output = run(home, server, "--source", "yahoo", "--symbols", "AAPL", *YAHOO_RANGE)
    assert code == 0, output
    rows = sql_json(
        home,
        "SELECT rule, CAST(ts AS DATE) AS day, source FROM quarantine WHERE dataset = 'bars_1d'",
    )
    # the zero row arrives twice: with the range, then with the re-fetch of its session; it is
    # the same record (only ingested_at differs), so it is quarantined once
    assert rows == [{"rule": "zero_row", "day": bad_day, "source": "yahoo"}]
    detail = stage_detail(home, "consume_history")
    assert detail["zero_row"] == 2
    assert "feed rules: zero_row 2" in detail["summary"]
    assert sql_json(home, "SELECT CAST(ts AS DATE) AS day FROM missing_sessions") == [
        {"day": bad_day}
    ]
