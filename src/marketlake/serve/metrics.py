"""Prometheus metrics (names prefixed ``marketlake_``), gathered when scraped.

Pipeline figures come from the warehouse (``runs``, ``quarantine`` and row counts), stream
figures from the status each running stream processor keeps under the home folder, and the
server counts its own HTTP requests.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from marketlake.errors import MarketlakeError
from marketlake.schemas import RUN_STATUSES
from marketlake.serve.reader import WarehouseReader
from marketlake.streaming.runtime.status import read_statuses

COUNTED_TABLES = ("bars_1d", "indicators_1d", "ticks", "bars_1m", "stream_windows", "stream_alerts")


class HttpMetrics:
    """Counts and times the server's requests by method, route and status."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "marketlake_http_requests",
            "HTTP requests answered, by method, route and status",
            ["method", "route", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "marketlake_http_request_duration_seconds",
            "Time to answer an HTTP request (to its first byte for streams), by route",
            ["route"],
            registry=registry,
        )


class RequestCounter:
    """ASGI middleware that records every HTTP request in :class:`HttpMetrics`."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def send_and_record(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                route = getattr(scope.get("route"), "path", None) or "unmatched"
                self.metrics.duration.labels(route).observe(time.perf_counter() - started)
                self.metrics.requests.labels(scope["method"], route, str(status["code"])).inc()
            await send(message)

        await self.app(scope, receive, send_and_record)


class PipelineCollector(Collector):
    """Run, quarantine, row-count and stream figures, read at each scrape."""

    def __init__(self, reader: WarehouseReader, home: Path) -> None:
        self.reader = reader
        self.home = home

    def collect(self) -> Iterator[Metric]:
        """The metric families of one scrape."""
        up = GaugeMetricFamily(
            "marketlake_warehouse_up", "1 when the warehouse could be read at this scrape"
        )
        try:
            families = list(self._warehouse_families())
            up.add_metric([], 1.0)
        except MarketlakeError:
            families = []
            up.add_metric([], 0.0)
        yield up
        yield from families
        yield from self._stream_families()

    def _warehouse_families(self) -> Iterator[Metric]:
        with self.reader.open() as warehouse:
            stages = warehouse.query(
                "SELECT run_id, stage, status, started_at, duration_s, rows_in, rows_out, "
                "quarantined FROM runs ORDER BY started_at"
            ).to_pylist()
            quarantine = warehouse.query(
                "SELECT dataset, count(*) AS n FROM quarantine WHERE resolved_at IS NULL "
                "GROUP BY dataset"
            ).to_pylist()
            counts = {
                table: int(warehouse.query(f"SELECT count(*) AS n FROM {table}")["n"][0].as_py())
                for table in COUNTED_TABLES
            }
        yield from _run_families(stages)
        held = GaugeMetricFamily(
            "marketlake_quarantined_records",
            "Quarantined records not resolved since, by dataset",
            labels=["dataset"],
        )
        for row in quarantine:
            held.add_metric([row["dataset"]], float(row["n"]))
        yield held
        rows = GaugeMetricFamily(
            "marketlake_table_rows", "Rows in a warehouse table", labels=["table"]
        )
        for table, count in counts.items():
            rows.add_metric([table], float(count))
        yield rows

    def _stream_families(self) -> Iterator[Metric]:
        rate = GaugeMetricFamily(
            "marketlake_stream_ticks_per_second",
            "Ticks a stream processor handles per second (since it started)",
            labels=["group"],
        )
        ticks = CounterMetricFamily(
            "marketlake_stream_ticks", "Ticks processed by the running processor", labels=["group"]
        )
        lag = GaugeMetricFamily(
            "marketlake_stream_lag_messages",
            "Messages on the bus the processor has not consumed yet",
            labels=["group"],
        )
        age = GaugeMetricFamily(
            "marketlake_stream_status_age_seconds",
            "Seconds since the processor last reported (large: it has stopped)",
            labels=["group"],
        )
        latency = HistogramMetricFamily(
            "marketlake_stream_tick_to_window_latency_seconds",
            "Time from a tick being sent to the bus to its windows being computed",
            labels=["group"],
        )
        now = time.time()
        for status in read_statuses(self.home):
            group = [status["group"]]
            rate.add_metric(group, _number(status.get("ticks_per_s")))
            ticks.add_metric(group, _number(status.get("ticks")))
            if status.get("lag") is not None:
                lag.add_metric(group, _number(status.get("lag")))
            age.add_metric(group, max(now - _number(status.get("updated_at")), 0.0))
            bounds = status.get("latency_buckets_s") or []
            counts = status.get("latency_counts") or []
            total = _number(status.get("latency_count"))
            buckets = [(_bound(b), _number(c)) for b, c in zip(bounds, counts, strict=False)]
            latency.add_metric(
                group, [*buckets, ("+Inf", total)], sum_value=_number(status.get("latency_sum_s"))
            )
        yield from (rate, ticks, lag, age, latency)


def _run_families(stages: list[dict[str, Any]]) -> Iterator[Metric]:
    """Runs by status, stage records by status, and each stage's latest figures."""
    by_run: dict[str, list[str]] = {}
    latest: dict[str, dict[str, Any]] = {}
    stage_status: dict[tuple[str, str], int] = {}
    for row in stages:
        by_run.setdefault(row["run_id"], []).append(row["status"])
        latest[row["stage"]] = row
        key = (row["stage"], row["status"])
        stage_status[key] = stage_status.get(key, 0) + 1
    runs = GaugeMetricFamily(
        "marketlake_runs",
        "Pipeline runs by status (running or retrying while a stage is; else failed, "
        "abandoned or succeeded by its stages)",
        labels=["status"],
    )
    tally = dict.fromkeys(RUN_STATUSES, 0)
    for statuses in by_run.values():
        tally[_run_status(statuses)] += 1
    for status, count in tally.items():
        runs.add_metric([status], float(count))
    yield runs
    records = GaugeMetricFamily(
        "marketlake_run_stages",
        "Stage records in the run log by stage and status",
        labels=["stage", "status"],
    )
    for (stage, status), count in sorted(stage_status.items()):
        records.add_metric([stage, status], float(count))
    yield records
    figures = {
        "duration_s": (
            "marketlake_stage_duration_seconds",
            "Duration of the latest run of a stage",
        ),
        "rows_in": ("marketlake_stage_rows_in", "Rows read by the latest run of a stage"),
        "rows_out": ("marketlake_stage_rows_out", "Rows written by the latest run of a stage"),
        "quarantined": (
            "marketlake_stage_quarantined",
            "Records quarantined by the latest run of a stage",
        ),
    }
    for column, (name, documentation) in figures.items():
        family = GaugeMetricFamily(name, documentation, labels=["stage"])
        for stage, row in latest.items():
            if row[column] is not None:
                family.add_metric([stage], float(row[column]))
        yield family


def _run_status(statuses: list[str]) -> str:
    for wanted in ("running", "retrying", "failed", "abandoned"):
        if wanted in statuses:
            return wanted
    return "succeeded"


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


def _bound(value: Any) -> str:
    return repr(float(value)) if isinstance(value, int | float) else "+Inf"
