"""The configured indicator set: TA-Lib functions by name, with parameters and column names.

The ``[indicators]`` settings table lists what ``indicators_1d`` holds, one entry per
indicator: the key names it, ``fn`` is the TA-Lib function, the other keys are the
function's parameters, ``inputs`` (optional) picks other bar columns than TA-Lib's
defaults (``{price = "high"}``) and ``outputs`` (optional) names the column of each output::

    rsi_14 = {fn = "RSI", timeperiod = 14}
    macd = {fn = "MACD", fastperiod = 12, slowperiod = 26, signalperiod = 9,
            outputs = {macd = "macd", macdsignal = "macd_signal", macdhist = "macd_hist"}}

A function with one output makes one column named after the entry; each output of a
function with several outputs is a column named as ``outputs`` says, else
``<name>_<output>``. :mod:`marketlake.analytics.indicator_config` checks the entries and
turns them into an :class:`IndicatorSet`; the defaults (:data:`DEFAULT_TABLES`, resolved as
:data:`DEFAULT_INDICATORS`) need no TA-Lib import.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

PRICE_INPUTS = ("open", "high", "low", "close", "volume")

DEFAULT_TABLES: Mapping[str, Mapping[str, Any]] = {
    "sma_20": {"fn": "SMA", "timeperiod": 20},
    "ema_20": {"fn": "EMA", "timeperiod": 20},
    "rsi_14": {"fn": "RSI", "timeperiod": 14},
    "macd": {
        "fn": "MACD",
        "fastperiod": 12,
        "slowperiod": 26,
        "signalperiod": 9,
        "outputs": {"macd": "macd", "macdsignal": "macd_signal", "macdhist": "macd_hist"},
    },
    "bb_20": {
        "fn": "BBANDS",
        "timeperiod": 20,
        "nbdevup": 2.0,
        "nbdevdn": 2.0,
        "matype": 0,
        "outputs": {"upperband": "bb_upper", "middleband": "bb_middle", "lowerband": "bb_lower"},
    },
    "atr_14": {"fn": "ATR", "timeperiod": 14},
    "stddev_20": {"fn": "STDDEV", "timeperiod": 20, "nbdev": 1.0},
    "obv": {"fn": "OBV"},
}
"""Today's indicator columns (sma_20 … obv), as ``[indicators]`` entries."""


@dataclass(frozen=True)
class Indicator:
    """One TA-Lib function call: its inputs, parameters and the column of each output.

    ``inputs`` are bar columns in the function's argument order; ``outputs`` pairs each
    TA-Lib output name with its column, in TA-Lib's order.
    """

    name: str
    function: str
    inputs: tuple[str, ...]
    parameters: tuple[tuple[str, int | float], ...]
    outputs: tuple[tuple[str, str], ...]

    @property
    def columns(self) -> tuple[str, ...]:
        """The indicator's columns, in output order."""
        return tuple(column for _, column in self.outputs)


@dataclass(frozen=True)
class IndicatorSet:
    """The indicators ``indicators_1d`` holds, in column order."""

    indicators: tuple[Indicator, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        """Every indicator column, in table order."""
        return tuple(column for indicator in self.indicators for column in indicator.columns)

    @property
    def inputs(self) -> tuple[str, ...]:
        """The bar columns the set reads."""
        used = {name for indicator in self.indicators for name in indicator.inputs}
        return tuple(name for name in PRICE_INPUTS if name in used)

    @property
    def schema(self) -> pa.Schema:
        """The ``indicators_1d`` schema: symbol, ts and one nullable float64 per column."""
        from marketlake.schemas import float_fields, series_schema

        return series_schema(*float_fields(*self.columns))

    @property
    def fingerprint(self) -> str:
        """A digest of every function, parameter and column: equal sets, equal digests."""
        described = [
            [i.name, i.function, list(i.inputs), [list(p) for p in i.parameters], list(i.outputs)]
            for i in self.indicators
        ]
        return hashlib.sha256(json.dumps(described).encode()).hexdigest()[:16]


DEFAULT_INDICATORS = IndicatorSet(
    (
        Indicator("sma_20", "SMA", ("close",), (("timeperiod", 20),), (("real", "sma_20"),)),
        Indicator("ema_20", "EMA", ("close",), (("timeperiod", 20),), (("real", "ema_20"),)),
        Indicator("rsi_14", "RSI", ("close",), (("timeperiod", 14),), (("real", "rsi_14"),)),
        Indicator(
            "macd",
            "MACD",
            ("close",),
            (("fastperiod", 12), ("slowperiod", 26), ("signalperiod", 9)),
            (("macd", "macd"), ("macdsignal", "macd_signal"), ("macdhist", "macd_hist")),
        ),
        Indicator(
            "bb_20",
            "BBANDS",
            ("close",),
            (("timeperiod", 20), ("nbdevup", 2.0), ("nbdevdn", 2.0), ("matype", 0)),
            (("upperband", "bb_upper"), ("middleband", "bb_middle"), ("lowerband", "bb_lower")),
        ),
        Indicator(
            "atr_14", "ATR", ("high", "low", "close"), (("timeperiod", 14),), (("real", "atr_14"),)
        ),
        Indicator(
            "stddev_20",
            "STDDEV",
            ("close",),
            (("timeperiod", 20), ("nbdev", 1.0)),
            (("real", "stddev_20"),),
        ),
        Indicator("obv", "OBV", ("close", "volume"), (), (("real", "obv"),)),
    )
)
""":data:`DEFAULT_TABLES` resolved (what ``resolve_indicators`` makes of them)."""


def talib_function(indicator: Indicator) -> Callable[..., Any]:
    """The TA-Lib function of ``indicator``, without TA-Lib's pandas/polars Series wrapper
    (the arrays passed are always numpy)."""
    import talib

    function = getattr(talib, indicator.function)
    unwrapped: Callable[..., Any] = getattr(function, "__wrapped__", function)
    return unwrapped


def call_indicator(indicator: Indicator, bars: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """The outputs of one TA-Lib call on one symbol's ``bars`` (float64 columns by name)."""
    function = talib_function(indicator)
    result = function(*(bars[name] for name in indicator.inputs), **dict(indicator.parameters))
    return list(result) if isinstance(result, tuple | list) else [result]
