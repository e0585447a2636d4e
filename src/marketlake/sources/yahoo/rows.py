"""Canonical tables from Yahoo chart payloads: daily bars as traded, actions, intraday bars.

The HTTP side (cookies, crumb, chart requests) lives in :mod:`marketlake.sources.yahoo`; the
payload parsing in :mod:`marketlake.sources.yahoo.chart`. This module turns a parsed chart into
the Bar / CorporateAction / intraday schemas.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa

from marketlake.records import Reject
from marketlake.schemas import BAR_SCHEMA, CORPORATE_ACTION_SCHEMA, DIVIDEND, SPLIT
from marketlake.sources.base import HistoryBatch
from marketlake.sources.intraday import intraday_table
from marketlake.sources.yahoo import chart as chart_io

log = logging.getLogger("marketlake.sources.yahoo")

SOURCE = "yahoo"
DATASET = "bars_1d"


def daily_bars(
    symbol: str,
    chart: chart_io.Chart,
    start: date,
    end: date,
    splits: list[tuple[date, float]],
    now: datetime,
    calendar: str,
) -> tuple[pa.Table, list[Reject]]:
    """Bars of ``symbol`` in [start, end] as traded (Yahoo's prices times the ratios of the
    ``splits`` after each bar, volume divided), and rejects for rows that cannot be bars."""
    from marketlake.calendar import get_sessions

    bound = chart_io.calendar_bound(chart, calendar)
    sessions = get_sessions(calendar) if bound else None
    days = chart_io.session_dates(chart.timestamps, chart.timezone, sessions)
    columns: dict[str, list[Any]] = {name: [] for name in BAR_SCHEMA.names}
    rejects: list[Reject] = []
    for i, (stamp, day) in enumerate(zip(chart.timestamps, days, strict=True)):
        row = {name: chart.quote[name][i] for name in (*chart_io.PRICE_COLUMNS, "volume")}
        seen = datetime.fromtimestamp(stamp, UTC)
        if day is None:
            rejects.append(
                _reject(
                    "not_a_session",
                    f"{seen} is not a {calendar} session",
                    symbol,
                    seen,
                    {"timestamp": stamp, **row},
                )
            )
            continue
        if not start <= day <= end:
            continue
        missing = [name for name in chart_io.PRICE_COLUMNS if row[name] is None]
        if missing:
            rejects.append(
                _reject(
                    "null_value",
                    f"null {', '.join(missing)} in Yahoo's quote arrays",
                    symbol,
                    chart_io.midnight(day),
                    {"timestamp": stamp, **row},
                )
            )
            continue
        factor = chart_io.as_traded_factor(day, splits)
        columns["symbol"].append(symbol)
        columns["ts"].append(chart_io.midnight(day))
        for name in chart_io.PRICE_COLUMNS:
            price = row[name]
            columns[name].append(None if price is None else price * factor)
        volume = row["volume"]
        columns["volume"].append(None if volume is None else volume / factor)
        columns["source"].append(SOURCE)
        columns["ingested_at"].append(now)
    table = pa.table(columns, schema=BAR_SCHEMA)
    return table.sort_by("ts"), rejects


def adjclose_deviation(batch: HistoryBatch) -> float:
    """Largest relative gap between the batch's back-adjusted closes and Yahoo's adjclose.

    Re-reads ``batch.raw``; a few 1e-4 is normal rounding, more means Yahoo's adjustment and
    the batch's corporate actions disagree.
    """
    chart = chart_io.read_chart(json.loads(batch.raw), batch.batch_id, "raw payload")
    by_ts = dict(zip(chart.timestamps, chart.adjclose or [], strict=False))
    by_day: dict[date, float | None] = {}
    for stamp, value in by_ts.items():
        by_day[chart_io.event_dates([(stamp, 0.0)], chart.timezone)[0][0]] = value
    days = [ts.date() for ts in batch.bars.column("ts").to_pylist()]
    actions = batch.actions.to_pylist()
    splits = [(a["ex_date"].date(), a["ratio"]) for a in actions if a["kind"] == SPLIT]
    dividends = [(a["ex_date"].date(), a["amount"]) for a in actions if a["kind"] == DIVIDEND]
    return chart_io.adjclose_deviation(
        days,
        batch.bars.column("close").to_pylist(),
        splits,
        dividends,
        [by_day.get(day) for day in days],
    )


def intraday_bars(symbol: str, chart: chart_io.Chart, interval: str) -> pa.Table:
    """Intraday bars (``INTRADAY_SCHEMA``) of a chart; rows whose prices are all null are left
    out and counted in a warning."""
    keep = [
        i
        for i in range(len(chart.timestamps))
        if any(chart.quote[name][i] is not None for name in chart_io.PRICE_COLUMNS)
    ]
    if len(keep) < len(chart.timestamps):
        log.warning(
            "yahoo: %d of %d %s bars of %s had no prices and were left out",
            len(chart.timestamps) - len(keep),
            len(chart.timestamps),
            interval,
            symbol,
        )
    stamps = [datetime.fromtimestamp(chart.timestamps[i], UTC) for i in keep]
    columns = {
        name: [chart.quote[name][i] for i in keep] for name in (*chart_io.PRICE_COLUMNS, "volume")
    }
    return intraday_table(symbol, stamps, columns)


def _reject(rule: str, detail: str, symbol: str, ts: datetime, record: dict[str, Any]) -> Reject:
    return Reject(DATASET, rule, detail, symbol, ts, {"symbol": symbol, **record}, SOURCE)


def corporate_actions(
    symbol: str,
    splits: list[tuple[date, float]],
    dividends: list[tuple[date, float]],
    now: datetime,
) -> pa.Table:
    """Split and dividend rows of ``symbol`` (``CORPORATE_ACTION_SCHEMA``), sorted by ex-date."""
    rows = [
        {
            "symbol": symbol,
            "ex_date": chart_io.midnight(day),
            "kind": SPLIT,
            "ratio": ratio,
            "amount": None,
            "source": SOURCE,
            "ingested_at": now,
        }
        for day, ratio in splits
    ] + [
        {
            "symbol": symbol,
            "ex_date": chart_io.midnight(day),
            "kind": DIVIDEND,
            "ratio": None,
            "amount": amount,
            "source": SOURCE,
            "ingested_at": now,
        }
        for day, amount in dividends
    ]
    if not rows:
        return CORPORATE_ACTION_SCHEMA.empty_table()
    return pa.Table.from_pylist(rows, schema=CORPORATE_ACTION_SCHEMA).sort_by(
        [("ex_date", "ascending"), ("kind", "ascending")]
    )
