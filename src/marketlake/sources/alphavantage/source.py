"""Alpha Vantage daily bars, intraday bars and quotes, within the key's request budget.

The daily series is chosen by :class:`~marketlake.sources.alphavantage.endpoints.DailyEndpoint`:
the adjusted series first, the free one for the rest of the run once the key is refused it.

The API key is sent to the provider as the ``apikey`` parameter and nowhere else: URLs in
errors and logs show ``apikey=***``, and ``raw`` keeps the response body, never the URL.
Every HTTP attempt (retries included) takes one request from the :class:`RequestBudget`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, ClassVar

import pyarrow as pa

from marketlake.errors import ConfigError, SourceError
from marketlake.records import reject_table
from marketlake.retry import RetriesSpentError, RetryPolicy
from marketlake.settings import AlphaVantageSettings
from marketlake.sources.alphavantage import payload as av
from marketlake.sources.alphavantage import rows
from marketlake.sources.alphavantage.endpoints import DAILY_ADJUSTED, DailyEndpoint
from marketlake.sources.base import HistoryBatch, HistorySource
from marketlake.sources.budget import RequestBudget
from marketlake.sources.http import HttpClient, redact
from marketlake.symbols import parse_symbol, parse_symbols

if TYPE_CHECKING:
    import httpx

COMPACT_SESSIONS = 100
INTRADAY_INTERVALS = ("1min", "5min", "15min", "30min", "60min")


class AlphaVantageSource(HistorySource):
    """Daily bars (as traded) and corporate actions from Alpha Vantage's REST API."""

    name: ClassVar[str] = "alphavantage"

    def __init__(
        self,
        settings: AlphaVantageSettings | None = None,
        calendar: str = "XNYS",
        *,
        budget: RequestBudget | None = None,
        retries: int = 3,
        backoff_s: float = 15.0,
        sleep: Callable[[float], None] = time.sleep,
        today: Callable[[], date] | None = None,
    ) -> None:
        self.settings = settings or AlphaVantageSettings()
        self.calendar = calendar
        self.daily = DailyEndpoint(self.settings.daily_function)
        self.base_url = self.settings.base_url.rstrip("/")
        self.budget = budget or RequestBudget(
            self.settings.requests_per_minute,
            self.settings.requests_per_day,
            provider=self.name,
            sleep=sleep,
        )
        key = self.settings.api_key.get_secret_value() if self.settings.api_key else ""
        self._key = key
        # throttling notices wait ``backoff_s`` and more; transport failures the client's short
        # backoff (a server that cannot be reached at all is not retried)
        self.throttle_policy = RetryPolicy(
            max_attempts=retries + 1,
            backoff_s=backoff_s,
            max_backoff_s=60.0,
            transient=(av.ThrottledError,),
        )
        self.http = HttpClient(
            self.name,
            timeout_s=self.settings.timeout_s,
            retries=retries,
            secrets=(key,) if key else (),
            before_attempt=self.budget.acquire,
            sleep=sleep,
        )
        self._today = today or (lambda: datetime.now(UTC).date())

    def __repr__(self) -> str:
        return (
            f"AlphaVantageSource(base_url={self.base_url!r}, daily={self.daily.function}, "
            f"api_key={'***' if self._key else None})"
        )

    @property
    def daily_function(self) -> str:
        """The daily endpoint in use."""
        return self.daily.function

    def notes(self) -> list[str]:
        """The daily endpoint given up for this key in this run, if any."""
        return [self.daily.note] if self.daily.note else []

    def open(self) -> None:
        """Check the configuration before any request."""
        self._require_key()

    def close(self) -> None:
        """Close the HTTP session."""
        self.http.close()

    def _require_key(self) -> None:
        if not self._key:
            raise ConfigError(
                "alphavantage: no API key configured; set "
                "MARKETLAKE_SOURCES__ALPHAVANTAGE__API_KEY or sources.alphavantage.api_key "
                "in the config file"
            )

    # -- budget ------------------------------------------------------------------------------

    def plan(self, symbols: Sequence[str], start: date, end: date) -> int:
        """Requests a backfill of ``symbols`` over [start, end] needs: one per symbol, and one
        more while the key's daily series is still to be learnt."""
        del start, end  # compact and full output both take one request
        count = len(parse_symbols(symbols))
        return count + self.daily.probes if count else 0

    def check_budget(self, symbols: Sequence[str], start: date, end: date) -> None:
        """Raise a TerminalError up front when the backfill would exceed today's budget."""
        need = self.plan(symbols, start, end)
        count = len(parse_symbols(symbols))
        probe = (
            f" (and 1 request to learn whether the key may use {DAILY_ADJUSTED}; set "
            "sources.alphavantage.daily_function to skip it)"
            if need > count
            else ""
        )
        self.budget.check(need, f"a backfill of {count} symbols from {start} to {end}{probe}")

    def fetch_history(
        self, symbols: Sequence[str], start: date, end: date
    ) -> Iterator[HistoryBatch]:
        """Check the key and the budget for the whole backfill, then fetch symbol by symbol."""
        self._require_key()
        valid = parse_symbols(symbols)
        self.check_budget(valid, start, end)
        for symbol in valid:
            yield self.fetch_symbol(symbol, start, end)

    # -- requests ----------------------------------------------------------------------------

    def _call(self, function: str, symbol: str, **params: str) -> tuple[httpx.Response, Any]:
        """One API call, retried with backoff while the provider throttles."""
        self._require_key()
        url = self.base_url + "/query"
        query = {"function": function, "symbol": symbol, **params, "apikey": self._key}

        def attempt() -> tuple[httpx.Response, Any]:
            response = self.http.get(url, query)
            if response.status_code != 200:
                raise SourceError(
                    f"alphavantage: {function} for symbol {symbol} answered HTTP "
                    f"{response.status_code} ({self.http.safe_url(url, query)})"
                )
            payload = self.http.decode_json(response, url, query)
            try:
                return response, av.check_payload(payload, symbol, function)
            except (av.ThrottledError, SourceError) as exc:
                raise type(exc)(redact(str(exc), [self._key])) from None

        def still_throttled(error: BaseException, attempts: int) -> BaseException:
            return RetriesSpentError(
                f"{error} (still throttled after {attempts} attempts; wait for the per-minute "
                "or per-day limit to reset)"
            )

        return self.http.retry(attempt, self.throttle_policy, give_up=still_throttled)

    def _raw(self, response: httpx.Response) -> bytes:
        body = response.content
        key = self._key.encode()
        return body.replace(key, b"***") if key and key in body else body

    def output_size(self, start: date) -> str:
        """``compact`` when ``start`` is within the last 100 sessions, else ``full``."""
        from marketlake.calendar import get_sessions

        sessions = get_sessions(self.calendar)
        today = self._today()
        if start < sessions.first or start > today:
            return "full" if start < sessions.first else "compact"
        return (
            "compact" if len(sessions.session_array(start, today)) <= COMPACT_SESSIONS else "full"
        )

    # -- daily -------------------------------------------------------------------------------

    def fetch_symbol(self, symbol: str, start: date, end: date) -> HistoryBatch:
        """Daily bars (as traded), splits and dividends of ``symbol`` in [start, end].

        Splits and dividends come with the adjusted series only; a key refused it gets bars
        from the free series (see :class:`DailyEndpoint`).
        """
        symbol = parse_symbol(symbol)
        size = self.output_size(start)
        function = self.daily.function
        try:
            response, payload = self._call(function, symbol, outputsize=size)
            self.daily.settle()
        except (av.PremiumEndpointError, av.RefusedCallError) as exc:
            alternative = self.daily.alternative(exc)
            if alternative is None:
                raise
            if isinstance(exc, av.PremiumEndpointError):  # the key's, whatever the symbol
                self.daily.fall_back(alternative, exc)
            response, payload = self._call(alternative, symbol, outputsize=size)
            if self.daily.function != alternative:  # the free series answered: not the symbol
                self.daily.fall_back(alternative, exc)
            function = alternative
        now = datetime.now(UTC)
        bars, actions, rejects = rows.daily_tables(
            payload,
            symbol,
            function,
            start,
            end,
            adjusted=function == DAILY_ADJUSTED,
            calendar=self.calendar,
            now=now,
        )
        return HistoryBatch(
            source=self.name,
            batch_id=f"{symbol}-{start}-{end}",
            bars=bars,
            actions=actions,
            raw=self._raw(response),
            raw_format="json",
            rejects=reject_table(rejects, now),
        )

    # -- intraday and quotes -----------------------------------------------------------------

    def fetch_intraday(
        self, symbol: str, interval: str = "1min", month: str | None = None
    ) -> pa.Table:
        """Intraday bars (``INTRADAY_SCHEMA``, UTC) of the latest sessions, or of ``month``
        (``YYYY-MM``). Entries that cannot be parsed are left out and counted in a warning."""
        symbol = parse_symbol(symbol)
        if interval not in INTRADAY_INTERVALS:
            raise SourceError(
                f"alphavantage: interval {interval!r} is not one of {', '.join(INTRADAY_INTERVALS)}"
            )
        params = {"interval": interval, "outputsize": "full" if month else "compact"}
        if month:
            params["month"] = month
        _, payload = self._call("TIME_SERIES_INTRADAY", symbol, **params)
        return rows.intraday_bars(payload, symbol)

    def fetch_quote(self, symbol: str) -> pa.Table:
        """The latest quote as one tick (``TICK_SCHEMA``).

        ``ts`` is the close of the latest trading day, or now when that is still to come;
        ``size`` is unknown (the quote carries the day's cumulative volume) and ``seq`` is that
        cumulative volume, so polling the same quote twice yields the same key.
        """
        symbol = parse_symbol(symbol)
        _, payload = self._call("GLOBAL_QUOTE", symbol)
        return rows.quote_tick(payload, symbol, self.calendar)
