"""Durations as people write them in config files, environment variables and flags.

``250ms``, ``5s``, ``15m``, ``1h``, ``1d`` or a plain number of seconds (``0.2``). A setting
typed :data:`Duration` accepts any of these and is shown in its shortest form again.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

UNITS = {
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
}
_PATTERN = re.compile(r"^(-?\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h|d)?$")
FORMS = "a duration like 250ms, 5s, 15m, 1h, 1d or a number of seconds"


def parse_duration(value: Any) -> timedelta:
    """``value`` (a timedelta, a number of seconds or a text such as ``15m``) as a timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    match = _PATTERN.match(str(value).strip().lower())
    if match is None:
        raise ValueError(f"expected {FORMS}, got {value!r}")
    number, unit = match.groups()
    return float(number) * UNITS[unit or "s"]


def format_duration(span: timedelta) -> str:
    """The shortest exact name of ``span``: ``1d``, ``1h``, ``15m``, ``5s``, ``250ms``."""
    if not span:
        return "0s"
    for unit in ("d", "h", "m", "s", "ms"):
        count, rest = divmod(span, UNITS[unit])
        if not rest:
            return f"{count}{unit}"
    return f"{span.total_seconds():g}s"


def _parse(value: Any) -> Any:
    try:
        return parse_duration(value)
    except OverflowError as exc:
        raise ValueError(f"expected {FORMS}, got {value!r}") from exc


Duration = Annotated[
    timedelta,
    BeforeValidator(_parse),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]
"""A timedelta setting written as ``5s``, ``15m``, ``1h`` ... and shown the same way."""
