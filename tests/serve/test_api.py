"""The JSON API against a warehouse made by the real ``marketlake run`` and ``stream``."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from marketlake.warehouse.duckdb import DuckDBWarehouse
from tests.serve.conftest import CSV_SYMBOL, SYMBOLS, Served


def warehouse_rows(served: Served, sql: str) -> list[dict[str, Any]]:
    """Rows straight from the DuckDB file, with timestamps in ISO 8601 UTC like the API.

    Read through a read-only DuckDBWarehouse: DuckDB refuses a second connection of this
    process to the file with another configuration while the API's reader holds it.
    """
    with DuckDBWarehouse(served.home / "warehouse.duckdb", read_only=True) as reader:
        table = reader.query(sql)
    return [
        {
            k: (
                v.astimezone(UTC).isoformat().replace("+00:00", "Z")
                if isinstance(v, datetime)
                else v
            )
            for k, v in row.items()
        }
        for row in table.to_pylist()
    ]


def all_pages(client: TestClient, url: str) -> tuple[list[dict[str, Any]], int]:
    """Every row behind ``url``, following ``next``; and the number of pages."""
    rows: list[dict[str, Any]] = []
    pages = 0
    next_url: str | None = url
    while next_url:
        response = client.get(next_url)
        assert response.status_code == 200, response.text
        body = response.json()
        rows.extend(body["data"])
        next_url = body["next"]
        pages += 1
    return rows, pages


def test_symbols_lists_every_loaded_symbol(client: TestClient) -> None:
    body = client.get("/api/v1/symbols").json()
    assert [row["symbol"] for row in body["data"]] == sorted([*SYMBOLS, CSV_SYMBOL])
    assert body["next"] is None
    aapl = next(row for row in body["data"] if row["symbol"] == "AAPL")
    assert aapl["bars"] == 252 and aapl["first_ts"] == "2024-01-02T00:00:00Z"


def test_daily_bars_are_the_warehouse_rows(client: TestClient, served: Served) -> None:
    expected = warehouse_rows(served, "SELECT * FROM bars_1d WHERE symbol = 'AAPL' ORDER BY ts")
    assert client.get("/api/v1/bars/AAPL").json() == {"data": expected, "next": None}
    adjusted = warehouse_rows(
        served, "SELECT * FROM bars_1d_adjusted WHERE symbol = 'AAPL' ORDER BY ts"
    )
    assert client.get("/api/v1/bars/aapl?adjusted=true").json()["data"] == adjusted
    assert adjusted[0]["close"] != expected[0]["close"]  # dividends adjust earlier prices


def test_start_and_end_are_inclusive(client: TestClient) -> None:
    rows = client.get("/api/v1/bars/MSFT?start=2024-03-01&end=2024-03-08").json()["data"]
    assert [row["ts"][:10] for row in rows] == [
        "2024-03-01",
        "2024-03-04",
        "2024-03-05",
        "2024-03-06",
        "2024-03-07",
        "2024-03-08",
    ]
    one = client.get("/api/v1/bars/MSFT?start=2024-03-04T00:00:00Z&end=2024-03-04T00:00:00Z")
    assert [row["ts"] for row in one.json()["data"]] == ["2024-03-04T00:00:00Z"]


@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("interval", ["1d", "1w"])
def test_pages_follow_next_to_every_row_once(client: TestClient, order: str, interval: str) -> None:
    whole = client.get(f"/api/v1/bars/AAPL?interval={interval}&order={order}").json()["data"]
    paged, pages = all_pages(client, f"/api/v1/bars/AAPL?interval={interval}&order={order}&limit=7")
    assert paged == whole
    assert pages == -(-len(whole) // 7)
    assert [r["ts"] for r in whole] == sorted((r["ts"] for r in whole), reverse=order == "desc")


def test_weekly_and_monthly_bars_resample_the_daily_ones(
    client: TestClient, served: Served
) -> None:
    daily = warehouse_rows(
        served,
        "SELECT ts, open, high, low, close, volume FROM bars_1d WHERE symbol = 'MSFT' "
        "AND ts < '2024-03-01' ORDER BY ts",
    )
    months: dict[str, list[dict[str, Any]]] = {}
    for row in daily:
        months.setdefault(row["ts"][:7], []).append(row)
    monthly = client.get("/api/v1/bars/MSFT?interval=1mo&end=2024-02-29").json()["data"]
    assert [row["ts"] for row in monthly] == ["2024-01-01T00:00:00Z", "2024-02-01T00:00:00Z"]
    for bar, days in zip(monthly, months.values(), strict=True):
        assert bar["open"] == days[0]["open"] and bar["close"] == days[-1]["close"]
        assert bar["high"] == max(d["high"] for d in days)
        assert bar["low"] == min(d["low"] for d in days)
        assert bar["volume"] == pytest.approx(sum(d["volume"] for d in days))
    weekly = client.get("/api/v1/bars/MSFT?interval=1w&start=2024-01-08&end=2024-01-12").json()
    assert len(weekly["data"]) == 1 and weekly["data"][0]["ts"] == "2024-01-08T00:00:00Z"


def test_intraday_bars_come_from_the_stream(client: TestClient, served: Served) -> None:
    minutes = warehouse_rows(served, "SELECT * FROM bars_1m WHERE symbol = 'AAPL' ORDER BY ts")
    assert len(minutes) > 20
    assert client.get("/api/v1/bars/AAPL?interval=1m").json()["data"] == minutes
    five = client.get("/api/v1/bars/AAPL?interval=5m").json()["data"]
    first = [m for m in minutes if m["ts"] < five[1]["ts"]]
    assert len(first) == 5 and five[0]["high"] == max(m["high"] for m in first)
    assert five[0]["close"] == first[-1]["close"]
    hourly = client.get("/api/v1/bars/AAPL?interval=1h").json()["data"]
    assert sum(1 for _ in hourly) >= 1 and hourly[0]["open"] == minutes[0]["open"]


def test_indicator_columns_come_from_the_table(client: TestClient, served: Served) -> None:
    expected = warehouse_rows(
        served, "SELECT * FROM indicators_1d WHERE symbol = 'AAPL' ORDER BY ts"
    )
    rows = client.get("/api/v1/indicators/AAPL").json()["data"]
    assert rows == expected and {"sma_20", "macd_hist", "obv"} <= set(rows[0])
    assert rows[0]["sma_20"] is None and rows[-1]["sma_20"] is not None  # warm-up is null
    metrics = client.get("/api/v1/metrics/AAPL?start=2024-06-03&end=2024-06-03").json()["data"]
    assert [row["ts"] for row in metrics] == ["2024-06-03T00:00:00Z"]
    assert "volatility_20d" in metrics[0]


def test_quality_lists_quarantine_and_missing_sessions(client: TestClient) -> None:
    rows = client.get(f"/api/v1/quality/{CSV_SYMBOL}").json()["data"]
    found = {(row["check"], row["ts"][:10]) for row in rows}
    assert ("missing_session", "2024-03-07") in found
    assert ("quarantine", "2024-03-12") in found
    assert client.get("/api/v1/quality/AAPL").json()["data"] == []
    assert client.get(f"/api/v1/actions/{CSV_SYMBOL}").json() == {"data": [], "next": None}


def test_runs_newest_first_and_by_run(client: TestClient, served: Served) -> None:
    rows = client.get("/api/v1/runs").json()["data"]
    stored = warehouse_rows(served, "SELECT run_id, stage, status FROM runs")
    assert len(rows) == len(stored) == 10
    assert [r["started_at"] for r in rows] == sorted((r["started_at"] for r in rows), reverse=True)
    one = client.get(f"/api/v1/runs?run_id={rows[0]['run_id']}").json()["data"]
    assert {r["stage"] for r in one} == {
        "fetch_history",
        "consume_history",
        "process",
        "load_warehouse",
        "success",
    }


def test_stream_windows_filter_by_symbol_and_kind(client: TestClient) -> None:
    rows = client.get("/api/v1/stream/windows?symbol=MSFT&kind=ma_15m").json()["data"]
    assert rows and {(r["symbol"], r["kind"]) for r in rows} == {("MSFT", "ma_15m")}
    paged, pages = all_pages(client, "/api/v1/stream/windows?symbol=MSFT&kind=ma_15m&limit=10")
    assert paged == rows and pages > 1


def test_csv_and_arrow_hold_the_json_rows(client: TestClient) -> None:
    url = "/api/v1/bars/AAPL?limit=5"
    data = client.get(url).json()["data"]
    as_csv = client.get(url, headers={"Accept": "text/csv"})
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert 'rel="next"' in as_csv.headers["link"]
    records = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [float(r["close"]) for r in records] == [r["close"] for r in data]
    as_arrow = client.get(url, headers={"Accept": "application/vnd.apache.arrow.stream"})
    table = pa.ipc.open_stream(as_arrow.content).read_all()
    assert table.column("close").to_pylist() == [r["close"] for r in data]
    assert pa.types.is_timestamp(table.schema.field("ts").type)


@pytest.mark.parametrize(
    ("url", "status", "words"),
    [
        ("/api/v1/bars/NOPE", 404, "unknown symbol NOPE"),
        ("/api/v1/actions/NOPE", 404, "unknown symbol NOPE"),
        ("/api/v1/bars/no%20pe", 400, "invalid symbol"),
        ("/api/v1/bars/AAPL?start=2024-02-30", 400, "start='2024-02-30' is not a date"),
        ("/api/v1/bars/AAPL?start=2024-03-02&end=2024-03-01", 400, "is after end"),
        ("/api/v1/bars/AAPL?limit=0", 400, "limit"),
        ("/api/v1/bars/AAPL?limit=many", 400, "limit"),
        ("/api/v1/bars/AAPL?interval=2d", 400, "interval"),
        ("/api/v1/bars/AAPL?interval=1m&adjusted=true", 400, "daily intervals"),
        ("/api/v1/runs?offset=-1", 400, "offset"),
        ("/api/v1/nothing", 404, "no such path"),
    ],
)
def test_bad_requests_get_json_errors(
    client: TestClient, url: str, status: int, words: str
) -> None:
    response = client.get(url)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["status"] == status and words in error["message"]


def test_missing_warehouse_is_503(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from marketlake.serve.app import ServeOptions, create_app

    app = create_app(ServeOptions(f"duckdb://{tmp_path / 'none.duckdb'}", tmp_path))
    response = TestClient(app).get("/api/v1/symbols")
    assert response.status_code == 503
    assert "run `marketlake run` first" in response.json()["error"]["message"]
    assert not (tmp_path / "none.duckdb").exists()
