"""Canonical tables from checked Alpha Vantage payloads: daily bars, actions, intraday, quotes.

The HTTP side (key, budget, throttling) lives in :mod:`marketlake.sources.alphavantage`; the
payload checks and field parsing in :mod:`marketlake.sources.alphavantage.payload`.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa

from marketlake.errors import SourceError
from marketlake.records import Reject
from marketlake.schemas import BAR_SCHEMA, CORPORATE_ACTION_SCHEMA, DIVIDEND, SPLIT, TICK_SCHEMA
from marketlake.sources.alphavantage import payload as av
from marketlake.sources.intraday import intraday_table

log = logging.getLogger("marketlake.sources.alphavantage")

SOURCE = "alphavantage"


def _action(symbol: str, ts: datetime, kind: str, value: float, now: datetime) -> dict[str, Any]:
    return {
        "symbol": symbol,
        "ex_date": ts,
        "kind": kind,
        "ratio": value if kind == SPLIT else None,
        "amount": value if kind == DIVIDEND else None,
        "source": SOURCE,
        "ingested_at": now,
    }


def daily_tables(
    payload: Any,
    symbol: str,
    function: str,
    start: date,
    end: date,
    *,
    adjusted: bool,
    calendar: str,
    now: datetime,
) -> tuple[pa.Table, pa.Table, list[Reject]]:
    """Bars (as traded), split and dividend rows of ``symbol`` in [start, end], and rejects
    for entries that are malformed or not sessions of ``calendar``."""
    from marketlake.calendar import get_sessions

    entries = av.series(payload, symbol, function)
    sessions = get_sessions(calendar)
    wanted = (*av.BAR_FIELDS, "dividend amount", "split coefficient") if adjusted else av.BAR_FIELDS
    bars: list[dict[str, Any]] = []
    actions: list[dict[str, Any]] = []
    rejects: list[Reject] = []
    for row in av.rows(entries, wanted):
        day = av.parse_day(row.key)
        ts = datetime(day.year, day.month, day.day, tzinfo=UTC) if day else None
        if day is not None and not start <= day <= end:
            continue
        problem = (
            "malformed_row"
            if row.problems or day is None
            else None
            if sessions.is_session(day)
            else "not_a_session"
        )
        if problem or ts is None:
            detail = "; ".join(row.problems) or (
                f"key {row.key!r} is not a date"
                if day is None
                else f"{day} is not a {calendar} session"
            )
            record = {"symbol": symbol, "key": row.key, **row.raw}
            rejects.append(
                Reject("bars_1d", problem or "malformed_row", detail, symbol, ts, record, SOURCE)
            )
            continue
        bars.append(
            {
                "symbol": symbol,
                "ts": ts,
                **{f: row.fields[f] for f in av.BAR_FIELDS},
                "source": SOURCE,
                "ingested_at": now,
            }
        )
        ratio = row.fields.get("split coefficient", 1.0)
        if ratio not in (0.0, 1.0):
            actions.append(_action(symbol, ts, SPLIT, ratio, now))
        amount = row.fields.get("dividend amount", 0.0)
        if amount:
            actions.append(_action(symbol, ts, DIVIDEND, amount, now))
    return (
        pa.Table.from_pylist(bars, schema=BAR_SCHEMA).sort_by("ts"),
        pa.Table.from_pylist(actions, schema=CORPORATE_ACTION_SCHEMA).sort_by(
            [("ex_date", "ascending"), ("kind", "ascending")]
        ),
        rejects,
    )


def intraday_bars(payload: Any, symbol: str) -> pa.Table:
    """Intraday bars (``INTRADAY_SCHEMA``, UTC); unreadable entries are left out and counted in
    a warning."""
    zone = av.time_zone(payload)
    stamps: list[datetime] = []
    columns: dict[str, list[float | None]] = {f: [] for f in av.BAR_FIELDS}
    bad = 0
    for row in av.rows(av.series(payload, symbol, "TIME_SERIES_INTRADAY"), av.BAR_FIELDS):
        ts = av.parse_local_time(row.key, zone)
        if ts is None or row.problems:
            bad += 1
            continue
        stamps.append(ts)
        for f in av.BAR_FIELDS:
            columns[f].append(row.fields[f])
    if bad:
        log.warning("alphavantage: %d intraday entries of %s could not be read", bad, symbol)
    return intraday_table(symbol, stamps, columns)


def quote_tick(payload: Any, symbol: str, calendar: str) -> pa.Table:
    """The latest quote as one tick (``TICK_SCHEMA``).

    ``ts`` is the close of the latest trading day, or now when that is still to come; ``size``
    is unknown (the quote carries the day's cumulative volume) and ``seq`` is that cumulative
    volume, so polling the same quote twice yields the same key.
    """
    from marketlake.calendar import get_sessions

    fields = av.quote_fields(payload, symbol)
    try:
        price = float(fields["price"])
        day = date.fromisoformat(fields["latest trading day"])
    except (KeyError, ValueError) as exc:
        raise SourceError(
            f"alphavantage: GLOBAL_QUOTE for symbol {symbol} has no usable price/date: {exc}"
        ) from exc
    sessions = get_sessions(calendar)
    now = datetime.now(UTC)
    close = (
        sessions.open_close(day)[1]
        if sessions.is_session(day)
        else datetime(day.year, day.month, day.day, tzinfo=UTC)
    )
    ts = min(close, now)
    try:
        seq = int(float(fields.get("volume", "")))
    except ValueError:
        seq = int(ts.timestamp() * 1_000_000)
    return pa.Table.from_pylist(
        [{"symbol": symbol, "ts": ts, "price": price, "size": None, "source": SOURCE, "seq": seq}],
        schema=TICK_SCHEMA,
    )
