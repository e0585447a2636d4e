"""Reading Alpha Vantage JSON: every number arrives as a string under a numbered key.

A body is first checked for the provider's non-data answers, all sent with HTTP 200:
``Error Message`` (a bad call, :class:`RefusedCallError`: terminal), ``Note``/``Information``
(throttling: transient; a premium-endpoint notice under the same keys is a terminal
:class:`PremiumEndpointError`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from marketlake.errors import SourceError, TransientError

BAR_FIELDS = ("open", "high", "low", "close", "volume")


class ThrottledError(TransientError):
    """Alpha Vantage answered with a rate-limit notice instead of data."""


class RefusedCallError(SourceError):
    """Alpha Vantage refused the call ("Invalid API call"): a bad symbol, or an endpoint the
    key may not use."""


class PremiumEndpointError(SourceError):
    """The endpoint is premium and the key is not: retrying cannot help."""


def check_payload(payload: Any, symbol: str, function: str) -> dict[str, Any]:
    """Return ``payload`` when it holds data; raise for error and throttling answers."""
    if not isinstance(payload, dict):
        raise SourceError(
            f"alphavantage: {function} for symbol {symbol} returned {type(payload).__name__}, "
            "not a JSON object"
        )
    if "Error Message" in payload:
        raise RefusedCallError(
            f"alphavantage: {function} for symbol {symbol} was refused: {payload['Error Message']}"
        )
    for key in ("Note", "Information"):
        if key in payload and not any(
            k.startswith(("Time Series", "Global Quote")) for k in payload
        ):
            text = str(payload[key])
            if "is a premium endpoint" in text.lower():
                raise PremiumEndpointError(
                    f"alphavantage: {function} is a premium endpoint for this key (symbol "
                    f"{symbol}): {text}"
                )
            raise ThrottledError(f"alphavantage: {function} for symbol {symbol} throttled: {text}")
    return payload


def series(payload: dict[str, Any], symbol: str, function: str) -> dict[str, Any]:
    """The ``Time Series (...)`` object of a time-series body."""
    for key, value in payload.items():
        if key.startswith("Time Series") and isinstance(value, dict):
            return value
    raise SourceError(
        f"alphavantage: {function} for symbol {symbol} returned no 'Time Series' object "
        f"(keys: {', '.join(sorted(payload)) or 'none'})"
    )


def time_zone(payload: dict[str, Any]) -> str:
    """The time zone named in ``Meta Data`` (US/Eastern when absent)."""
    meta = payload.get("Meta Data") or {}
    for key, value in meta.items():
        if key.split(". ", 1)[-1].lower() == "time zone":
            return str(value)
    return "US/Eastern"


@dataclass(frozen=True)
class Row:
    """One entry of a time series: its key, parsed fields, and what could not be parsed."""

    key: str
    fields: dict[str, float]
    problems: tuple[str, ...]
    raw: dict[str, Any]


def rows(entries: dict[str, Any], wanted: tuple[str, ...]) -> Iterator[Row]:
    """Parse each entry's numbered string fields (``"1. open": "97.46"``) into floats."""
    for key, raw in entries.items():
        if not isinstance(raw, dict):
            yield Row(key, {}, (f"entry is {type(raw).__name__}, not an object",), {"value": raw})
            continue
        named = {k.split(". ", 1)[-1].strip().lower(): v for k, v in raw.items()}
        fields: dict[str, float] = {}
        problems: list[str] = []
        for name in wanted:
            if name not in named:
                problems.append(f"missing '{name}'")
                continue
            try:
                value = float(named[name])
            except (TypeError, ValueError):
                problems.append(f"'{name}' is {named[name]!r}, not a number")
                continue
            if not math.isfinite(value):
                problems.append(f"'{name}' is {named[name]!r}")
                continue
            fields[name] = value
        yield Row(key, fields, tuple(problems), dict(raw))


def parse_day(key: str) -> date | None:
    """The date of a daily key (``2018-05-10``, maybe with a time); None if it is not one."""
    try:
        return date.fromisoformat(key[:10])
    except ValueError:
        return None


def parse_local_time(key: str, zone: str) -> datetime | None:
    """An intraday key (``2018-06-01 16:00:00``, exchange time) as a UTC datetime."""
    from zoneinfo import ZoneInfo

    try:
        naive = datetime.fromisoformat(key)
    except ValueError:
        return None
    return naive.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)


def quote_fields(payload: dict[str, Any], symbol: str) -> dict[str, str]:
    """The ``Global Quote`` object with its number prefixes dropped (``price``, ``volume``...)."""
    quote = payload.get("Global Quote")
    if not isinstance(quote, dict) or not quote:
        raise SourceError(
            f"alphavantage: GLOBAL_QUOTE for symbol {symbol} returned no quote (unknown symbol?)"
        )
    return {k.split(". ", 1)[-1].strip().lower(): str(v) for k, v in quote.items()}
