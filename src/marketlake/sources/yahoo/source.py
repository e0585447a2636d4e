"""Yahoo Finance daily and intraday bars from the v8 chart API, stored as traded.

Yahoo answers only browser-like clients: the adapter sends a browser User-Agent, collects the
session cookies and asks ``/v1/test/getcrumb`` for a crumb that goes with every chart request.
A server without those endpoints (a recording replayed locally) is used without a crumb.

Yahoo's daily prices are split-adjusted up to today, so the adapter also asks for the splits
from ``start`` to today and multiplies each bar by the ratios of the splits after it (volume is
divided). Those splits are returned as corporate actions too, even past ``end``: read-time
back-adjustment needs them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote, urlsplit

import pyarrow as pa

from marketlake.errors import SourceError, TransientError
from marketlake.records import reject_table
from marketlake.settings import YahooSettings
from marketlake.sources.base import HistoryBatch, HistorySource
from marketlake.sources.http import BROWSER_USER_AGENT, HttpClient, UnreachableError
from marketlake.sources.yahoo import chart as chart_io
from marketlake.sources.yahoo import rows
from marketlake.symbols import parse_symbol

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

COOKIE_URL = "https://fc.yahoo.com"
CRUMB_PATH = "/v1/test/getcrumb"
CHART_PATH = "/v8/finance/chart/"
DATASET = "bars_1d"


class YahooSource(HistorySource):
    """Daily bars, splits and dividends of one symbol at a time from Yahoo's chart API."""

    name: ClassVar[str] = "yahoo"

    def __init__(
        self,
        settings: YahooSettings | None = None,
        calendar: str = "XNYS",
        *,
        retries: int = 3,
        backoff_s: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        today: Callable[[], date] | None = None,
    ) -> None:
        self.settings = settings or YahooSettings()
        self.calendar = calendar
        self.base_url = self.settings.base_url.rstrip("/")
        self._today = today or (lambda: datetime.now(UTC).date())
        self.http = HttpClient(
            self.name,
            timeout_s=self.settings.timeout_s,
            retries=retries,
            backoff_s=backoff_s,
            headers={"User-Agent": BROWSER_USER_AGENT, "Accept": "application/json,*/*"},
            sleep=sleep,
        )
        self._crumb: str | None = None
        self._handshake_done = False

    def __repr__(self) -> str:
        return f"YahooSource(base_url={self.base_url!r}, calendar={self.calendar!r})"

    def close(self) -> None:
        """Close the HTTP session (cookies and crumb are fetched again on next use)."""
        self.http.close()
        self._crumb = None
        self._handshake_done = False

    # -- handshake ---------------------------------------------------------------------------

    def _cookie_url(self) -> str:
        host = urlsplit(self.base_url).hostname or ""
        return COOKIE_URL if host.endswith("yahoo.com") else self.base_url + "/"

    def handshake(self) -> str | None:
        """Collect cookies and a crumb; None when the server offers no crumb."""
        if self._handshake_done:
            return self._crumb
        self._handshake_done = True
        try:
            self.http.get_once(self._cookie_url())
        except (TransientError, UnreachableError) as exc:  # cookies are optional
            log.debug("yahoo: cookie request failed, going on without: %s", exc)
        try:
            response = self.http.get_once(self.base_url + CRUMB_PATH)
        except TransientError as exc:
            log.debug("yahoo: crumb request failed, going on without: %s", exc)
            return None
        text = response.text.strip()
        plain = not any(mark in text for mark in (" ", "<", "{"))
        if response.status_code == 200 and text and len(text) < 64 and plain:
            self._crumb = text
        return self._crumb

    def _chart(self, symbol: str, params: dict[str, Any]) -> tuple[httpx.Response, Any, str]:
        url = self.base_url + CHART_PATH + quote(symbol, safe="")
        for attempt in (1, 2):
            crumb = self.handshake()
            query = dict(params, crumb=crumb) if crumb else dict(params)
            response = self.http.get(url, query)
            safe = self.http.safe_url(url, query)
            if response.status_code in (401, 403):
                if attempt == 1:
                    self._crumb, self._handshake_done = None, False
                    continue
                raise TransientError(
                    f"yahoo: {safe} answered HTTP {response.status_code} twice (cookie/crumb "
                    f"refused) for symbol {symbol}"
                )
            payload = self.http.decode_json(response, url, query)
            if response.status_code != 200 and not (
                isinstance(payload, dict) and isinstance(payload.get("chart"), dict)
            ):
                raise SourceError(f"yahoo: {safe} answered HTTP {response.status_code}")
            return response, payload, safe
        raise AssertionError("unreachable")

    # -- daily -------------------------------------------------------------------------------

    def fetch_symbol(self, symbol: str, start: date, end: date) -> HistoryBatch:
        """Daily bars (as traded), splits and dividends of ``symbol`` in [start, end]."""
        symbol = parse_symbol(symbol)
        if end < start:
            raise SourceError(f"yahoo: end {end} is before start {start} for {symbol}")
        params = {
            "period1": chart_io.epoch(start),
            "period2": chart_io.epoch(chart_io.next_day(end)),
            "interval": "1d",
            "events": "div,splits",
            "includeAdjustedClose": "true",
        }
        response, payload, url = self._chart(symbol, params)
        chart = chart_io.read_chart(payload, symbol, url)
        splits = chart_io.event_dates(chart.splits, chart.timezone)
        splits += [s for s in self._later_splits(symbol, end) if s not in splits]
        splits.sort()
        now = datetime.now(UTC)
        bars, rejects = rows.daily_bars(symbol, chart, start, end, splits, now, self.calendar)
        dividends = [
            (day, amount * chart_io.as_traded_factor(day, splits))
            for day, amount in chart_io.event_dates(chart.dividends, chart.timezone)
            if start <= day <= end
        ]
        actions = rows.corporate_actions(
            symbol, [s for s in splits if s[0] >= start], dividends, now
        )
        return HistoryBatch(
            source=self.name,
            batch_id=f"{symbol}-{start}-{end}",
            bars=bars,
            actions=actions,
            raw=response.content,
            raw_format="json",
            rejects=reject_table(rejects, now),
        )

    def _later_splits(self, symbol: str, end: date) -> list[tuple[date, float]]:
        today = self._today()
        if end >= today:
            return []
        params = {
            "period1": chart_io.epoch(chart_io.next_day(end)),
            "period2": chart_io.epoch(chart_io.next_day(today)),
            "interval": "1mo",
            "events": "splits",
        }
        _, payload, url = self._chart(symbol, params)
        later = chart_io.read_chart(payload, symbol, url)
        return [s for s in chart_io.event_dates(later.splits, later.timezone) if s[0] > end]

    def adjclose_deviation(self, batch: HistoryBatch) -> float:
        """Largest relative gap between the batch's back-adjusted closes and Yahoo's adjclose.

        Re-reads ``batch.raw``; a few 1e-4 is normal rounding, more means Yahoo's adjustment
        and the batch's corporate actions disagree.
        """
        return rows.adjclose_deviation(batch)

    # -- intraday ----------------------------------------------------------------------------

    def fetch_intraday(
        self, symbol: str, start: datetime, end: datetime, interval: str = "1m"
    ) -> pa.Table:
        """Intraday bars (``INTRADAY_SCHEMA``) of ``symbol`` in [start, end), regular hours.

        Rows whose prices are all null are left out and counted in a warning.
        """
        symbol = parse_symbol(symbol)
        if start.tzinfo is None or end.tzinfo is None:
            raise SourceError("yahoo: intraday start and end must be timezone-aware datetimes")
        params = {
            "period1": int(start.timestamp()),
            "period2": int(end.timestamp()),
            "interval": interval,
            "includePrePost": "false",
        }
        _, payload, url = self._chart(symbol, params)
        return rows.intraday_bars(symbol, chart_io.read_chart(payload, symbol, url), interval)
