"""Replay of recorded 1-minute bars as ticks, at N times real speed.

Each bar becomes four ticks inside its minute: open, then low and high (high first when the
bar closed below its open), then close, at 0, 15, 30 and 45 seconds into the bar, each with a
quarter of the bar's volume. Aggregating the replayed ticks into 1-minute bars therefore gives
back the recorded open, high, low, close and volume exactly. ``mode="close"`` emits one tick
per bar instead (the close, with the whole volume, one second before the bar ends).

Timestamps without an offset are read as America/New_York wall-clock time and converted to
UTC. ``bar_label`` says whether a timestamp marks the bar's start (``"start"``, e.g. the
mplfinance S&P 500 files) or its end (``"end"``, e.g. Alpha Vantage intraday files).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import pyarrow as pa

from marketlake.errors import ConfigError, SourceError
from marketlake.schemas import TICK_SCHEMA
from marketlake.sources.live.base import Chunk, TickSource, epoch_us
from marketlake.symbols import parse_symbol

if TYPE_CHECKING:
    import polars as pl

EXCHANGE_TZ = "America/New_York"
_TIME_NAMES = ("timestamp", "time", "date", "datetime")
_FORMATS = (  # ISO first, then US month/day/year; never guess day/month order
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d %H:%M:%S%z",
    "%Y-%m-%dT%H:%M:%S%z",
    "%Y-%m-%dT%H:%M:%S%.fZ",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y %H:%M:%S",
)
_OHLC_OFFSETS = np.array([0.0, 0.25, 0.5, 0.75])


def _read_bars(source: str | Path | pa.Table) -> pa.Table:
    """Bars with columns ts (UTC, µs), open, high, low, close, volume, sorted by ts."""
    import polars as pl

    if isinstance(source, pa.Table):
        frame = pl.from_arrow(source)
        label = "table"
    else:
        label = str(source)
        try:
            frame = pl.read_csv(source, infer_schema=False)
        except (OSError, pl.exceptions.PolarsError) as exc:
            raise SourceError(f"replay: cannot read bars from {label}: {exc}") from exc
    assert isinstance(frame, pl.DataFrame)
    frame = frame.rename({c: c.strip().lower() for c in frame.columns})
    time_col = next((c for c in _TIME_NAMES if c in frame.columns), None)
    missing = [c for c in ("open", "high", "low", "close", "volume") if c not in frame.columns]
    if time_col is None or missing:
        raise SourceError(
            f"replay: {label} needs a time column (one of {_TIME_NAMES}) and open, high, low, "
            f"close, volume; missing {missing or [time_col]}, found {frame.columns}"
        )
    stamps = frame.get_column(time_col)
    if stamps.dtype == pl.String:
        stamps = _parse_times(stamps, label)
    if not isinstance(stamps.dtype, pl.Datetime):
        raise SourceError(f"replay: {label} column {time_col!r} is not a timestamp")
    if stamps.dtype.time_zone is None:
        stamps = stamps.dt.replace_time_zone(EXCHANGE_TZ, ambiguous="earliest")
    bars = frame.select(
        stamps.dt.convert_time_zone("UTC").dt.cast_time_unit("us").alias("ts"),
        *(pl.col(c).cast(pl.Float64, strict=False) for c in ("open", "high", "low", "close")),
        pl.col("volume").cast(pl.Float64, strict=False),
    )
    bad = bars.filter(pl.any_horizontal(pl.all().is_null())).height
    if bad:
        raise SourceError(f"replay: {label} has {bad} rows with a missing or unreadable value")
    return bars.sort("ts").to_arrow()


def _parse_times(column: pl.Series, label: str) -> pl.Series:
    import polars as pl

    for fmt in _FORMATS:
        try:
            return column.str.strip_chars().str.to_datetime(format=fmt, time_unit="us")
        except pl.exceptions.PolarsError:
            continue
    raise SourceError(f"replay: cannot parse the timestamps of {label} (e.g. {column[0]!r})")


class ReplaySource(TickSource):
    """Recorded 1-minute bars replayed as ticks; ``speed`` x real time (0: as fast as possible).

    Pauses longer than ``max_gap_s`` of event time (nights, weekends, missing minutes) are
    shortened to ``max_gap_s`` before applying ``speed``. ``symbol`` defaults to the file
    name's first ``_``-separated part (``MSFT_1min_....csv`` -> ``MSFT``). Only ticks at or
    after ``start`` and after ``after`` are emitted (a replay that continues an earlier one);
    ``seq`` keeps numbering the recording's ticks from its first, so a tick replayed again
    has the same key.
    """

    name = "replay"

    def __init__(
        self,
        path_or_table: str | Path | pa.Table,
        speed: float = 1.0,
        *,
        symbol: str | None = None,
        mode: Literal["ohlc", "close"] = "ohlc",
        bar_label: Literal["start", "end"] = "start",
        bar_seconds: float = 60.0,
        max_gap_s: float = 60.0,
        start: datetime | None = None,
        after: datetime | None = None,
        batch_size: int = 10_000,
        linger_s: float = 0.002,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(batch_size=batch_size, linger_s=linger_s, clock=clock, sleep=sleep)
        if speed < 0:
            raise ConfigError(f"replay speed must be >= 0 (0 = as fast as possible), got {speed}")
        if mode not in ("ohlc", "close") or bar_label not in ("start", "end"):
            raise ConfigError(
                f"replay mode must be 'ohlc' or 'close' and bar_label 'start' or 'end', "
                f"got {mode!r} and {bar_label!r}"
            )
        if symbol is None:
            if isinstance(path_or_table, pa.Table):
                raise ConfigError("replay of a table needs symbol=...")
            symbol = Path(path_or_table).name.split("_")[0]
        self.symbol = parse_symbol(symbol)
        self.source = path_or_table
        self.speed = speed
        self.mode = mode
        self.bar_label = bar_label
        self.bar_us = int(bar_seconds * 1e6)
        self.max_gap_s = max_gap_s
        self.start = start
        self.after = after

    def chunks(self) -> Iterator[Chunk]:
        """All ticks of the recording, with due times when paced."""
        bars = _read_bars(self.source)
        starts = bars.column("ts").cast(pa.int64()).to_numpy()
        if self.bar_label == "end":
            starts = starts - self.bar_us
        o, h, lo, c = (bars.column(n).to_numpy() for n in ("open", "high", "low", "close"))
        volume = bars.column("volume").to_numpy()
        if self.mode == "ohlc":
            up = c >= o
            prices = np.stack([o, np.where(up, lo, h), np.where(up, h, lo), c], axis=1).ravel()
            offsets = (_OHLC_OFFSETS * self.bar_us).astype(np.int64)
            ts = (starts[:, None] + offsets[None, :]).ravel()
            sizes = np.repeat(volume / 4.0, 4)
        else:
            prices, sizes = c, volume
            ts = starts + self.bar_us - 1_000_000
        n = len(ts)
        batch = pa.RecordBatch.from_arrays(
            [
                pa.array([self.symbol], pa.string()).take(pa.array(np.zeros(n, np.int64))),
                pa.array(ts.astype("datetime64[us]"), TICK_SCHEMA.field("ts").type),
                pa.array(prices, pa.float64()),
                pa.array(sizes, pa.float64()),
                pa.array([self.name], pa.string()).take(pa.array(np.zeros(n, np.int64))),
                pa.array(np.arange(1, n + 1, dtype=np.int64)),
            ],
            schema=TICK_SCHEMA,
        )
        keep = np.ones(n, dtype=bool)
        if self.start is not None:
            keep &= ts >= epoch_us(self.start)
        if self.after is not None:
            keep &= ts > epoch_us(self.after)
        if not keep.all():
            batch = batch.filter(pa.array(keep))
            ts = ts[keep]
            n = len(ts)
        if self.speed == 0 or n == 0:
            yield batch, None
            return
        gaps = np.minimum(np.diff(ts, prepend=ts[0]) / 1e6, self.max_gap_s)
        yield batch, np.cumsum(gaps) / self.speed
