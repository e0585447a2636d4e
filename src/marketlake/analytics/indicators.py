"""Technical indicators per symbol, computed by TA-Lib.

Input: adjusted daily bars (symbol, ts and the price columns the set reads), sorted by
(symbol, ts); several symbols may be present and never influence each other. Each
indicator of the configured :class:`~marketlake.analytics.indicator_set.IndicatorSet` is
one TA-Lib call per symbol, on that symbol's bars in session order.

TA-Lib's Python wrapper starts each function at a symbol's first bar whose inputs are all
present (leading NaNs). Where TA-Lib returns NaN (warm-up, too-short series, values after a
NaN input) the column is **null**, so SQL engines see missing values rather than NaN; a
null input is treated as NaN. Integer outputs (candle patterns: -100, 0, 100) are stored as
float64 like every other column.

TA-Lib is imported here, on first use, never at start-up: importing it also imports pandas
when pandas is installed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from marketlake.analytics.indicator_set import DEFAULT_INDICATORS, IndicatorSet, talib_function

if TYPE_CHECKING:
    import polars as pl


def compute_indicators(
    bars: pl.DataFrame, indicators: IndicatorSet = DEFAULT_INDICATORS
) -> pl.DataFrame:
    """The ``indicators`` of every bar of ``bars`` (see the module docstring).

    ``bars`` must be sorted by (symbol, ts). Returns symbol, ts and one Float64 column per
    indicator output (null where TA-Lib gives NaN), in input order.
    """
    import polars as pl

    from marketlake.errors import TerminalError

    required = ("symbol", "ts", *indicators.inputs)
    missing = [name for name in required if name not in bars.columns]
    if missing:
        raise TerminalError(f"compute_indicators needs columns {list(required)}; missing {missing}")
    runs = bars.get_column("symbol").rle()
    if runs.struct.field("value").n_unique() != runs.len():
        raise TerminalError("compute_indicators needs bars sorted by (symbol, ts)")
    ends = np.cumsum(runs.struct.field("len").to_numpy().astype(np.int64))
    starts = ends - runs.struct.field("len").to_numpy()
    columns = {
        name: np.ascontiguousarray(
            bars.get_column(name).cast(pl.Float64).to_numpy(), dtype=np.float64
        )
        for name in indicators.inputs
    }
    calls = [
        (indicator, talib_function(indicator), dict(indicator.parameters), indicator.columns)
        for indicator in indicators.indicators
    ]
    out = {name: allocate(bars.height) for name in indicators.columns}
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        symbol_bars = {name: values[start:end] for name, values in columns.items()}
        for indicator, function, parameters, names in calls:
            try:
                result = function(*(symbol_bars[name] for name in indicator.inputs), **parameters)
            except Exception as exc:  # TA-Lib raises bare Exceptions
                symbol = bars.get_column("symbol")[start]
                raise TerminalError(
                    f"TA-Lib {indicator.function} failed on {symbol} "
                    f"(indicator {indicator.name}): {exc}"
                ) from None
            results = result if isinstance(result, tuple | list) else (result,)
            for column, values in zip(names, results, strict=True):
                out[column][start:end] = values
    series = [pl.Series(name, values, nan_to_null=True) for name, values in out.items()]
    return bars.select("symbol", "ts").with_columns(series)


def allocate(size: int) -> np.ndarray:
    """An uninitialised float64 array whose memory comes from Arrow's memory pool.

    Arrow's allocator keeps freed pages for the next request, where a large numpy array
    maps fresh pages each time and pays a page fault on the first touch of each one; the
    indicator outputs are large, short-lived and made again on every call.
    """
    import pyarrow as pa

    if size == 0:
        return np.empty(0)
    buffer = pa.allocate_buffer(size * 8)
    return np.frombuffer(buffer, dtype=np.float64, count=size)
