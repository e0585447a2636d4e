"""Reading Yahoo's v8 chart payload: rows, events, session dates and as-traded prices.

Yahoo's daily OHLC (and volume, and dividend amounts) are adjusted for every split up to the
day of the request. :func:`as_traded_factors` gives, per session, the product of the ratios of
the splits after it, which turns them back into prices as traded.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from marketlake.errors import SourceError

if TYPE_CHECKING:
    from marketlake.calendar import SessionTable

PRICE_COLUMNS = ("open", "high", "low", "close")
# Exchange calendars by the time zone Yahoo reports for the listing exchange.
CALENDAR_TIMEZONES = {"XNYS": "America/New_York"}
CALENDAR_INSTRUMENTS = frozenset({"EQUITY", "ETF", "MUTUALFUND", "INDEX"})


@dataclass
class Chart:
    """The parts of one ``chart.result[0]`` that marketlake uses."""

    meta: dict[str, Any]
    timestamps: list[int]
    quote: dict[str, list[float | None]]
    adjclose: list[float | None] | None
    splits: list[tuple[int, float]] = field(default_factory=list)  # (epoch s, new per old)
    dividends: list[tuple[int, float]] = field(default_factory=list)  # (epoch s, amount)

    @property
    def timezone(self) -> str:
        """The listing exchange's time zone (UTC when Yahoo does not say)."""
        return str(self.meta.get("exchangeTimezoneName") or "UTC")


def read_chart(payload: Any, symbol: str, url: str) -> Chart:
    """Parse a decoded chart body; SourceError for ``chart.error`` or an unexpected shape."""
    chart = payload.get("chart") if isinstance(payload, dict) else None
    if not isinstance(chart, dict):
        raise SourceError(f"yahoo: {url} returned JSON without a 'chart' object for {symbol}")
    error = chart.get("error")
    if error:
        code = error.get("code") if isinstance(error, dict) else error
        text = error.get("description") if isinstance(error, dict) else ""
        raise SourceError(f"yahoo: chart request for symbol {symbol} failed: {code}: {text}")
    results = chart.get("result")
    if not results:
        raise SourceError(f"yahoo: {url} returned no chart result for symbol {symbol}")
    result = results[0]
    try:
        timestamps = [int(t) for t in result.get("timestamp") or []]
        indicators = result.get("indicators") or {}
        quote_list = indicators.get("quote") or [{}]
        quote = {
            name: _numbers(quote_list[0].get(name), len(timestamps))
            for name in (*PRICE_COLUMNS, "volume")
        }
        adj_list = indicators.get("adjclose")
        adjclose = _numbers(adj_list[0].get("adjclose"), len(timestamps)) if adj_list else None
        events = result.get("events") or {}
        splits = sorted(
            (int(s["date"]), float(s["numerator"]) / float(s["denominator"]))
            for s in (events.get("splits") or {}).values()
        )
        dividends = sorted(
            (int(d["date"]), float(d["amount"])) for d in (events.get("dividends") or {}).values()
        )
    except (AttributeError, KeyError, TypeError, ValueError, ZeroDivisionError, IndexError) as exc:
        raise SourceError(
            f"yahoo: {url} returned a chart for {symbol} that cannot be read: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    return Chart(
        meta=dict(result.get("meta") or {}),
        timestamps=timestamps,
        quote=quote,
        adjclose=adjclose,
        splits=splits,
        dividends=dividends,
    )


def _numbers(values: Any, length: int) -> list[float | None]:
    if values is None:
        return [None] * length
    if len(values) != length:
        raise ValueError(f"indicator has {len(values)} values for {length} timestamps")
    return [None if v is None else float(v) for v in values]


def calendar_bound(chart: Chart, calendar: str) -> bool:
    """True when the instrument trades on ``calendar`` (a US equity for XNYS)."""
    return (
        chart.meta.get("instrumentType") in CALENDAR_INSTRUMENTS
        and CALENDAR_TIMEZONES.get(calendar) == chart.timezone
    )


def session_dates(
    timestamps: Sequence[int], timezone: str, sessions: SessionTable | None
) -> list[date | None]:
    """The session date of each timestamp.

    With ``sessions`` (a calendar-bound instrument) a timestamp that is a session open maps to
    that session, any other to its exchange-local date if that is a session, else None. Without
    ``sessions`` (currencies, crypto) the exchange-local date is the session date.
    """
    from zoneinfo import ZoneInfo

    import numpy as np

    zone = ZoneInfo(timezone)
    out: list[date | None] = []
    opens = sessions.opens if sessions is not None else None
    for t in timestamps:
        if sessions is not None and opens is not None:
            stamp = np.datetime64(t, "s").astype("datetime64[us]")
            i = int(np.searchsorted(opens, stamp))
            if i < len(opens) and opens[i] == stamp:
                out.append(sessions.days[i].astype(object))
                continue
        local = datetime.fromtimestamp(t, UTC).astimezone(zone).date()
        out.append(local if sessions is None or sessions.is_session(local) else None)
    return out


def event_dates(events: Sequence[tuple[int, float]], timezone: str) -> list[tuple[date, float]]:
    """Events with their exchange-local date (the ex-date)."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(timezone)
    return [(datetime.fromtimestamp(t, UTC).astimezone(zone).date(), v) for t, v in events]


def as_traded_factor(day: date, splits: Sequence[tuple[date, float]]) -> float:
    """The product of the ratios of the splits whose ex-date is after ``day``."""
    return math.prod(ratio for ex_date, ratio in splits if ex_date > day)


def midnight(day: date) -> datetime:
    """``day`` at 00:00 UTC."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def epoch(day: date) -> int:
    """Seconds since the epoch of ``day`` at 00:00 UTC."""
    return int(midnight(day).timestamp())


def adjclose_deviation(
    days: Sequence[date],
    closes: Sequence[float],
    splits: Sequence[tuple[date, float]],
    dividends: Sequence[tuple[date, float]],
    adjclose: Sequence[float | None],
) -> float:
    """Largest relative gap between our back-adjusted close and Yahoo's ``adjclose``.

    ``closes`` are as traded, ``dividends`` as traded. Both series are normalised to the last
    row, so adjustments for events after the range (which Yahoo includes) cancel out. Yahoo
    multiplies prices before an ex-date by ``1 - amount / previous close``.
    """
    if not days:
        return 0.0
    last = days[-1]
    close_before = {days[i]: closes[i - 1] for i in range(1, len(days))}
    factors: list[float] = []
    for day in days:
        factor = 1.0
        for ex_date, ratio in splits:
            if day < ex_date <= last:
                factor /= ratio
        for ex_date, amount in dividends:
            if day < ex_date <= last and ex_date in close_before:
                factor *= 1.0 - amount / close_before[ex_date]
        factors.append(factor)
    ref_ours = closes[-1]
    ref_theirs = adjclose[-1]
    if ref_theirs is None or not ref_ours:
        return math.nan
    worst = 0.0
    for close, factor, adj in zip(closes, factors, adjclose, strict=True):
        if adj is None:
            continue
        ours = close * factor / ref_ours
        theirs = adj / ref_theirs
        worst = max(worst, abs(ours / theirs - 1.0))
    return worst


def next_day(day: date) -> date:
    """The calendar day after ``day``."""
    return day + timedelta(days=1)
