"""``/metrics`` read by Prometheus's own text parser."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.serve.conftest import Served


def scrape(client: TestClient) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Every sample of ``/metrics``: name -> sorted labels -> value."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(response.text):
        assert family.name.startswith("marketlake_"), family.name
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def test_pipeline_figures_come_from_the_warehouse(client: TestClient) -> None:
    samples = scrape(client)
    assert samples["marketlake_warehouse_up"][()] == 1.0
    assert samples["marketlake_runs"][(("status", "succeeded"),)] == 2.0
    assert samples["marketlake_runs"][(("status", "failed"),)] == 0.0
    stages = samples["marketlake_run_stages"]
    assert stages[(("stage", "process"), ("status", "succeeded"))] == 2.0
    assert samples["marketlake_stage_duration_seconds"][(("stage", "consume_history"),)] > 0
    assert samples["marketlake_stage_rows_out"][(("stage", "fetch_history"),)] == 9.0  # IBM.csv
    assert samples["marketlake_table_rows"][(("table", "bars_1d"),)] == 2 * 252 + 8
    assert samples["marketlake_quarantined_records"][(("dataset", "bars_1d"),)] == 1.0


def test_stream_figures_come_from_the_processor_status(client: TestClient, served: Served) -> None:
    status = json.loads((served.home / "stream" / "stream-processor.status.json").read_text())
    samples = scrape(client)
    group = (("group", "stream-processor"),)
    assert samples["marketlake_stream_ticks_total"][group] == 6000.0
    assert samples["marketlake_stream_ticks_per_second"][group] > 0
    assert samples["marketlake_stream_lag_messages"][group] == 0.0
    histogram = samples["marketlake_stream_tick_to_window_latency_seconds_bucket"]
    count = samples["marketlake_stream_tick_to_window_latency_seconds_count"][group]
    assert count == status["latency_count"] > 0
    assert histogram[(("group", "stream-processor"), ("le", "+Inf"))] == count
    bounds = sorted((float(dict(labels)["le"]), value) for labels, value in histogram.items())
    assert [value for _, value in bounds] == sorted(value for _, value in bounds)


def test_http_requests_are_counted_by_route_and_status(client: TestClient) -> None:
    def count(route: str, status: str) -> float:
        key = (("method", "GET"), ("route", route), ("status", status))
        return scrape(client).get("marketlake_http_requests_total", {}).get(key, 0.0)

    before_ok = count("/api/v1/bars/{symbol}", "200")
    before_missing = count("/api/v1/bars/{symbol}", "404")
    client.get("/api/v1/bars/AAPL?limit=1")
    client.get("/api/v1/bars/AAPL?limit=2")
    client.get("/api/v1/bars/NOPE")
    assert count("/api/v1/bars/{symbol}", "200") == before_ok + 2
    assert count("/api/v1/bars/{symbol}", "404") == before_missing + 1
