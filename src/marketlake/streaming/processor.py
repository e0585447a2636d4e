"""The stream processor: ticks in, 1-minute bars, windows, late ticks, alerts and quarantine out.

Each call to :meth:`StreamProcessor.process` handles one batch with a few vectorised Polars
operations (no per-tick Python). Event time is per symbol; a tick is *late* when its event
time is before its symbol's watermark as it stood before the batch. Late ticks within
``late_retention`` are still merged into their minute and every already-final bar and window
containing them is emitted again with corrected values, so an upsert sink ends with the same
rows as if every tick had arrived on time. The final values do not depend on how ticks were
batched; only which ticks are reported late (or beyond ``late_retention``, and so not applied)
does. Feed the processor whole polls of the bus (many messages at once) for throughput: its
cost per call is mostly fixed.

Emission rules per batch (``w0``/``w1``: the symbol's watermark before/after the batch):

- ``bars_1m``: bars that became final (``w0 < end <= w1``) and final bars touched by the batch
  (bars are only emitted once final);
- ``windows``: sliding windows that became final, final windows touched by the batch
  (corrections) and, with ``emit_provisional``, touched windows not final yet
  (``is_final=False``); ``ma_*`` rows for every bar that became final or whose trailing
  horizon contains a corrected bar;
- ``alerts``: final window rows of the alerted kinds whose move exceeds ``alert_pct`` (a
  corrected window is checked again; the alert key is (symbol, kind, window end)).

Ticks are de-duplicated on their key ``(symbol, ts, seq)`` before aggregation (see
:mod:`marketlake.streaming.dedup`), so a tick the bus carries twice counts once;
:meth:`StreamProcessor.process_ticks` also tells, per input row, whether the tick was new, a
duplicate, invalid, or too old to check (beyond ``late_retention``), which decides how the
runtime stores it.

A checkpoint (:meth:`snapshot`) holds the minute aggregates, watermarks and seen tick keys;
restored and fed the same batches from the bus offsets stored with it, the processor emits the
same rows (floating-point sums may differ in the last bit, as Polars sums in parallel).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from marketlake.errors import ConfigError
from marketlake.schemas import LATE_SCHEMA
from marketlake.streaming.bars import (
    KEYS,
    MINUTE_US,
    aggregate_minutes,
    empty_state,
    merge_minutes,
)
from marketlake.streaming.config import StreamConfig, to_us
from marketlake.streaming.dedup import SeenTicks
from marketlake.streaming.emission import emit_changes, emit_provisional
from marketlake.streaming.frames import collect, collect_all
from marketlake.streaming.outputs import DUPLICATE, INVALID, NEW, UNCHECKED, StreamOutput
from marketlake.streaming.state import pack_state, unpack_state
from marketlake.streaming.validation import as_tick_table, invalid_ticks, split_by_mask
from marketlake.streaming.watermark import WatermarkTracker

_END_OF_TIME = 2**61
_CHECKPOINT_FORMAT = 1
_NO_MINUTES = pl.DataFrame(schema={"symbol": pl.String, "minute": pl.Int64})


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class _Marks:
    """The watermarks of the symbols a batch or flush touched, before and after it."""

    symbols: list[str]
    before: list[int]
    after: list[int]

    def crossed_minute(self) -> bool:
        """True when a watermark passed a minute boundary (so a bar or window may be final)."""
        return any(
            w1 // MINUTE_US > w0 // MINUTE_US
            for w0, w1 in zip(self.before, self.after, strict=True)
        )

    def frame(self) -> pl.DataFrame:
        """The watermarks as a frame of symbol, w0 (before) and w1 (after)."""
        return pl.DataFrame(
            {"symbol": self.symbols, "w0": self.before, "w1": self.after},
            schema={"symbol": pl.String, "w0": pl.Int64, "w1": pl.Int64},
        )


class StreamProcessor:
    """Event-time processor of tick batches; see the module documentation for the rules."""

    def __init__(
        self, config: StreamConfig | None = None, *, clock: Callable[[], datetime] | None = None
    ) -> None:
        self.config = config or StreamConfig()
        self._clock = clock or _utc_now
        self._retention = to_us(self.config.late_retention)
        self._span = to_us(self.config.longest_span)
        self._bars = empty_state()
        self._marks = WatermarkTracker(to_us(self.config.allowed_lateness))
        self._seen = SeenTicks(to_us(self.config.allowed_lateness), self._retention)
        self.counts: dict[str, int] = {
            "ticks": 0,
            "late": 0,
            "beyond_retention": 0,
            "quarantined": 0,
            "duplicates": 0,
        }

    def watermark(self, symbol: str) -> datetime | None:
        """The current watermark of ``symbol`` (None before its first tick)."""
        if symbol not in self._marks.symbols():
            return None
        return datetime.fromtimestamp(self._marks.watermark(symbol) / 1e6, tz=UTC)

    def process(self, batch: pa.RecordBatch | pa.Table) -> StreamOutput:
        """Process one batch of ticks (Tick schema) and return what it makes final or changes.

        When processing fails, the state is left as it was before the batch, so a caller may
        set the batch aside and go on.
        """
        return self.process_ticks(batch)[0]

    def process_ticks(self, batch: pa.RecordBatch | pa.Table) -> tuple[StreamOutput, np.ndarray]:
        """Like :meth:`process`, and also the fate of each input row: ``NEW``, ``DUPLICATE``
        (its key was seen, so it was not applied again), ``INVALID`` (quarantined) or
        ``UNCHECKED`` (valid but beyond ``late_retention``: reported late, not applied, and too
        old to tell whether it is a duplicate).

        When processing fails, the state (aggregates, watermarks, seen tick keys and counts) is
        left as it was before the batch.
        """
        saved = (self._bars, self._marks.copy(), self._seen.copy(), dict(self.counts))
        try:
            return self._process(batch)
        except BaseException:
            self._bars, self._marks, self._seen, self.counts = saved
            raise

    def _process(self, batch: pa.RecordBatch | pa.Table) -> tuple[StreamOutput, np.ndarray]:
        now = self._clock()
        table = as_tick_table(batch).combine_chunks()  # a poll is one batch per message
        bad = invalid_ticks(table)
        valid, quarantine = split_by_mask(table, bad, now)
        fates = np.where(bad.to_numpy(zero_copy_only=False), INVALID, NEW).astype(np.int8)
        out = StreamOutput(quarantine=quarantine)
        self.counts["quarantined"] += quarantine.num_rows
        if valid.num_rows == 0:
            return out, fates
        ticks = self._with_standing(valid)
        positions = np.flatnonzero(fates == NEW)
        digests = self._seen.digests(ticks)
        repeated = self._seen.duplicates(ticks, digests)
        if repeated.any():
            fates[positions[repeated]] = DUPLICATE
            positions = positions[~repeated]
            digests = digests[~repeated]
            self.counts["duplicates"] += int(repeated.sum())
            ticks = ticks.filter(pl.Series(~repeated))
            valid = valid.filter(pa.array(~repeated))
            if valid.num_rows == 0:
                return out, fates
        lazy = ticks.lazy()
        too_old = pl.col("t") < pl.col("w0") - self._retention
        applied = lazy.filter(~too_old)
        flags = lazy.select(late=pl.col("t") < pl.col("w0"), too_old=too_old)
        largest = applied.group_by("symbol").agg(pl.col("t").max())
        fresh, top, flag = collect_all([aggregate_minutes(applied), largest, flags])
        self._bars = collect(merge_minutes(self._bars.lazy(), fresh.lazy()))
        kept = ~flag.get_column("too_old").to_numpy()
        self._seen.add(digests[kept], ticks.get_column("t").to_numpy()[kept])
        self.counts["ticks"] += valid.num_rows
        late = bool(flag.get_column("late").any())
        if late:
            self._route_late(out, valid, flag)
            old = flag.get_column("too_old").to_numpy()
            fates[positions[old]] = UNCHECKED
        maxima = dict(top.iter_rows())
        marks = self._advance(sorted(maxima), lambda: self._marks.observe(maxima))
        self._seen.evict(lambda: min(map(self._marks.watermark, self._marks.symbols())))
        self._emit(out, marks, fresh, now, late=late)
        return out, fates

    def _with_standing(self, valid: pa.Table) -> pl.DataFrame:
        """The ticks (symbol, ts, price, size, seq) with their event time ``t`` in µs, their
        symbol's watermark before the batch ``w0`` and the symbol's digest ``sd``, in input
        order (the fates and late flags are matched by position).

        The batch's few symbols are looked up once each and spread over the rows by index:
        on a poll of a few hundred ticks, a Polars join costs several times more.
        """
        column = valid.column("symbol")
        names = pc.unique(column)
        index = pc.index_in(column, value_set=names).to_numpy()
        present = names.to_pylist()
        marks = np.array([self._marks.watermark(s) for s in present], dtype=np.int64)
        table = (
            valid.select(["symbol", "ts", "price", "size", "seq"])
            .append_column("t", pc.cast(valid.column("ts"), pa.int64()))
            .append_column("w0", pa.array(marks[index], pa.int64()))
            .append_column("sd", pa.array(self._seen.symbol_digests(present)[index], pa.uint64()))
        )
        frame = pl.from_arrow(table)
        assert isinstance(frame, pl.DataFrame)
        return frame

    def _advance(self, symbols: list[str], change: Callable[[], None]) -> _Marks:
        """Apply ``change`` to the watermarks of ``symbols``; their values before and after."""
        before = [self._marks.watermark(s) for s in symbols]
        change()
        return _Marks(symbols, before, [self._marks.watermark(s) for s in symbols])

    def _route_late(self, out: StreamOutput, valid: pa.Table, flags: pl.DataFrame) -> None:
        late_mask = flags.get_column("late").to_arrow()
        old = flags.get_column("too_old")
        reasons = (
            pl.when(old).then(pl.lit("beyond_retention")).otherwise(pl.lit("behind_watermark"))
        )
        reason = flags.select(reasons.alias("reason")).get_column("reason").to_arrow()
        late = valid.filter(late_mask).append_column("reason", reason.filter(late_mask))
        out.late = late.cast(LATE_SCHEMA)
        self.counts["late"] += late.num_rows
        self.counts["beyond_retention"] += int(old.sum())

    def flush_session_close(self, now: datetime | None = None) -> StreamOutput:
        """Close the windows of symbols whose session (from the calendar) has closed.

        A symbol whose latest tick belongs to a session that closed at least
        ``allowed_lateness`` before ``now`` (wall clock by default) gets its watermark moved to
        the next session's open, which finalises every bar and window before it. Call it
        periodically, e.g. whenever the bus is idle.
        """
        from marketlake.calendar import get_sessions

        now = now or self._clock()
        sessions = get_sessions(self.config.calendar)
        floors = self._marks.idle_floors(to_us(now - datetime(1970, 1, 1, tzinfo=UTC)), sessions)
        return self._raise_floors(floors, now)

    def flush_all(self, now: datetime | None = None) -> StreamOutput:
        """Finalise every bar and window (end of a finite stream, such as a replay)."""
        floors = dict.fromkeys(self._marks.symbols(), _END_OF_TIME)
        return self._raise_floors(floors, now or self._clock())

    def _raise_floors(self, floors: dict[str, int], now: datetime) -> StreamOutput:
        out = StreamOutput()
        if not floors:
            return out

        def change() -> None:
            for symbol, floor in floors.items():
                self._marks.raise_floor(symbol, floor)

        marks = self._advance(sorted(floors), change)
        self._emit(out, marks, _NO_MINUTES, now, late=False)
        return out

    def _emit(
        self,
        out: StreamOutput,
        marks: _Marks,
        touched: pl.DataFrame,
        now: datetime,
        *,
        late: bool,
    ) -> None:
        """Fill ``out`` with the rows made final, corrected or (provisionally) updated.

        Bars and windows end on minute boundaries: unless a watermark crossed one or a tick
        was late, nothing became final or needs correcting, and only provisional windows are
        emitted.
        """
        if marks.crossed_minute() or late:
            emitted = emit_changes(self.config, self._bars, marks.frame(), touched, now)
            self._bars = emitted.state
            out.bars_1m, out.windows, out.alerts = emitted.bars_1m, emitted.windows, emitted.alerts
        elif self.config.emit_provisional and touched.height:
            out.windows = emit_provisional(self.config, self._bars, touched, now)

    def snapshot(self) -> bytes:
        """The processor's state as bytes; store it with the bus offsets it corresponds to."""
        meta = {
            "format": _CHECKPOINT_FORMAT,
            "config": self.config.fingerprint(),
            "counts": self.counts,
        }
        tables = {
            "bars": self._bars.sort(KEYS).to_arrow(),
            "marks": self._marks.to_arrow(),
            "seen": self._seen.to_arrow(),
        }
        return pack_state(meta, tables)

    @classmethod
    def restore(
        cls,
        config: StreamConfig,
        data: bytes,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> StreamProcessor:
        """A processor resuming from a :meth:`snapshot` taken with the same configuration."""
        meta, tables = unpack_state(data)
        if meta.get("format") != _CHECKPOINT_FORMAT:
            raise ConfigError(
                f"checkpoint format {meta.get('format')!r} is not supported "
                f"(this version reads format {_CHECKPOINT_FORMAT})"
            )
        if meta.get("config") != config.fingerprint():
            raise ConfigError(
                "checkpoint was taken with a different stream configuration: "
                f"{meta.get('config')} (now {config.fingerprint()})"
            )
        processor = cls(config, clock=clock)
        bars = pl.from_arrow(tables["bars"])
        assert isinstance(bars, pl.DataFrame)
        processor._bars = pl.concat([processor._bars, bars], how="vertical_relaxed")
        processor._marks = WatermarkTracker.from_arrow(
            to_us(config.allowed_lateness), tables["marks"]
        )
        if "seen" in tables:  # checkpoints taken before de-duplication have none
            processor._seen.restore(tables["seen"])
        processor.counts.update(meta.get("counts", {}))
        return processor
