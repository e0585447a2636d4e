"""``marketlake run --source alphavantage`` end to end against a recorded response.

The local replay server checks the API key; the key must never reach the lake, the warehouse
or the command's output.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from tests.pipeline.cli import marketlake, sql_json
from tests.pipeline.test_providers_e2e import API_KEY, run
from tests.providers.replay import ProviderServer, Reply, Seen

AV_BODY = "alpha_vantage/asmarques_TIME_SERIES_DAILY_ADJUSTED_IBM_compact_2025-01-13.json"
AV_RANGE = ("--start", "2024-08-20", "--end", "2025-01-13")


def serve_av(server: ProviderServer, body: bytes) -> None:
    def route(seen: Seen) -> Reply | None:
        if seen.path != "/query" or seen.query.get("apikey") != API_KEY:
            return None
        if seen.query.get("function") != "TIME_SERIES_DAILY_ADJUSTED":
            return None
        if seen.query.get("symbol") != "IBM":
            return Reply.json({"Error Message": "Invalid API call."})
        return Reply(200, body, {"Content-Type": "application/json"})

    server.route = route


def lake_text(home: Path) -> bytes:
    """Every file of the lake and the warehouse, gzip members decompressed, concatenated."""
    parts = []
    for path in sorted(home.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            parts.append(gzip.decompress(data) if path.suffix == ".gz" else data)
    return b"\n".join(parts)


def test_alphavantage_run_loads_the_recording(
    real_data: Path, server: ProviderServer, home: Path
) -> None:
    body = (real_data / AV_BODY).read_bytes()
    serve_av(server, body)
    code, output = run(home, server, "--source", "alphavantage", "--symbols", "IBM", *AV_RANGE)
    assert code == 0, output
    assert len(server.requests) == 1

    series = json.loads(body)["Time Series (Daily)"]
    rows = sql_json(
        home, "SELECT CAST(ts AS DATE) AS day, open, close, volume FROM bars_1d ORDER BY ts"
    )
    assert {r["day"]: (r["open"], r["close"], r["volume"]) for r in rows} == {
        day: (float(v["1. open"]), float(v["4. close"]), float(v["6. volume"]))
        for day, v in series.items()
    }
    dividends = sql_json(
        home,
        "SELECT CAST(ex_date AS DATE) AS day, amount FROM corporate_actions "
        "WHERE kind = 'dividend' ORDER BY ex_date",
    )
    assert dividends == [
        {"day": day, "amount": float(v["7. dividend amount"])}
        for day, v in sorted(series.items())
        if float(v["7. dividend amount"])
    ]
    raw = list((home / "lake" / "raw" / "alphavantage").rglob("*.json.gz"))
    assert [p.name for p in raw] == ["IBM-2024-08-20-2025-01-13.json.gz"]
    assert gzip.decompress(raw[0].read_bytes()) == body

    code, second = run(home, server, "--source", "alphavantage", "--symbols", "IBM", *AV_RANGE)
    assert code == 0, second
    assert len(server.requests) == 1, "sessions already present were asked for again"

    runs = json.dumps(sql_json(home, "SELECT * FROM runs"))
    assert API_KEY not in runs
    assert API_KEY not in output + second
    assert API_KEY.encode() not in lake_text(home)


def test_alphavantage_budget_is_checked_before_any_request(
    real_data: Path, server: ProviderServer, home: Path
) -> None:
    serve_av(server, (real_data / AV_BODY).read_bytes())
    proc = marketlake(
        "run", "--home", str(home), "--source", "alphavantage", "--symbols", "IBM,MSFT,AAPL",
        *AV_RANGE,
        env={
            "MARKETLAKE_SOURCES__ALPHAVANTAGE__BASE_URL": server.url,
            "MARKETLAKE_SOURCES__ALPHAVANTAGE__API_KEY": API_KEY,
            "MARKETLAKE_SOURCES__ALPHAVANTAGE__REQUESTS_PER_DAY": "2",
            # a forced series: no request is spent learning which one the key may use
            "MARKETLAKE_SOURCES__ALPHAVANTAGE__DAILY_FUNCTION": "TIME_SERIES_DAILY_ADJUSTED",
        },
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert server.requests == []
    (row,) = sql_json(home, "SELECT status, detail FROM runs WHERE stage = 'fetch_history'")
    assert row["status"] == "failed"
    error = json.loads(row["detail"])["error"]
    assert "needs 3 requests but only 2" in error
    assert API_KEY not in proc.stdout + proc.stderr + row["detail"]
