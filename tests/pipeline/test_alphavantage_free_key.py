"""``marketlake run --source alphavantage`` with a free key: history loads from the free series.

The replay server answers ``TIME_SERIES_DAILY_ADJUSTED`` with Alpha Vantage's recorded premium
notice and ``TIME_SERIES_DAILY`` with a recorded series, as the provider does for free keys.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.pipeline.cli import marketlake, sql_json
from tests.pipeline.test_providers_e2e import API_KEY, run, stage_detail
from tests.providers.replay import ProviderServer, Reply, Seen

DAILY_BODY = "alpha_vantage/asmarques_TIME_SERIES_DAILY_MSFT_compact_2018-06-08.json"
NOTICES = "alpha_vantage/av_nondata_responses_quoted_in_public_threads.json"
RANGE = ("--symbols", "MSFT", "--start", "2018-01-17", "--end", "2018-06-08")


def serve_free_key(server: ProviderServer, real_data: Path) -> bytes:
    body = (real_data / DAILY_BODY).read_bytes()
    messages = json.loads((real_data / NOTICES).read_text())["messages"]
    [premium] = [m for m in messages if m["id"].startswith("premium")]

    def route(seen: Seen) -> Reply | None:
        if seen.path != "/query" or seen.query.get("apikey") != API_KEY:
            return None
        if seen.query.get("function") == "TIME_SERIES_DAILY_ADJUSTED":
            return Reply.json({"Information": premium["message"]})
        if seen.query.get("function") == "TIME_SERIES_DAILY":
            return Reply(200, body, {"Content-Type": "application/json"})
        return None

    server.route = route
    return body


def test_a_free_key_loads_history_with_default_settings(
    real_data: Path, server: ProviderServer, home: Path
) -> None:
    body = serve_free_key(server, real_data)
    code, output = run(home, server, "--source", "alphavantage", *RANGE)
    assert code == 0, output
    series = json.loads(body)["Time Series (Daily)"]
    rows = sql_json(home, "SELECT CAST(ts AS DATE) AS day, close, volume FROM bars_1d")
    assert {r["day"]: (r["close"], r["volume"]) for r in rows} == {
        day: (float(v["4. close"]), float(v["5. volume"])) for day, v in series.items()
    }
    functions = [seen.query["function"] for seen in server.hits("/query")]
    assert functions == ["TIME_SERIES_DAILY_ADJUSTED", "TIME_SERIES_DAILY"]
    [note] = stage_detail(home, "fetch_history")["notes"]
    assert "TIME_SERIES_DAILY used instead" in note and API_KEY not in note
    assert "TIME_SERIES_DAILY used instead" in " ".join(output.split())
    assert API_KEY not in output


def test_the_setting_asks_the_free_series_only(
    real_data: Path, server: ProviderServer, home: Path
) -> None:
    serve_free_key(server, real_data)
    env = {
        "MARKETLAKE_SOURCES__ALPHAVANTAGE__BASE_URL": server.url,
        "MARKETLAKE_SOURCES__ALPHAVANTAGE__API_KEY": API_KEY,
        "MARKETLAKE_SOURCES__ALPHAVANTAGE__DAILY_FUNCTION": "TIME_SERIES_DAILY",
    }
    proc = marketlake("run", "--home", str(home), "--source", "alphavantage", *RANGE, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [seen.query["function"] for seen in server.hits("/query")] == ["TIME_SERIES_DAILY"]
    assert "notes" not in stage_detail(home, "fetch_history")
