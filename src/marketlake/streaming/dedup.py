"""De-duplication of ticks on their key ``(symbol, ts, seq)``, before aggregation.

A producer that is restarted sends ticks again, so the bus may carry a tick twice. The
processor keeps the keys of the ticks it applied whose event time is within
``late_retention`` of their symbol's watermark (the horizon in which a tick still changes
bars and windows) and drops a tick whose key it has already seen, in the same batch or an
earlier one. A tick older than that horizon is not applied anyway; it is only reported late.

The checks are vectorised and cheap for a stream in event-time order: a repeated key needs a
repeated event time within the batch (one sort of the batch's times tells), and only ticks
not after their symbol's largest event time so far can repeat an earlier batch's tick, so
only those are joined with the kept keys.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl
import pyarrow as pa

KEY = ["symbol", "t", "seq"]
_SCHEMA = {"symbol": pl.String(), "t": pl.Int64(), "seq": pl.Int64()}


class SeenTicks:
    """The keys of the applied ticks within the horizon, in event-time microseconds."""

    def __init__(self, lateness_us: int, retention_us: int) -> None:
        self.lateness_us = lateness_us
        self.retention_us = retention_us
        self._chunks: list[pl.DataFrame] = []
        self._rows = 0
        self._kept = 0  # rows after the last eviction

    def duplicates(self, ticks: pl.DataFrame) -> np.ndarray:
        """Which rows of ``ticks`` (columns symbol, t, seq and w0, the symbol's watermark
        before the batch) repeat the key of an earlier row or of a tick already applied."""
        n = ticks.height
        repeated = np.zeros(n, dtype=bool)
        times = ticks.get_column("t").to_numpy()
        ordered = np.sort(times)
        if n > 1 and bool((ordered[1:] == ordered[:-1]).any()):
            rows = ticks.select(KEY).with_row_index("row").filter(pl.col("t").is_duplicated())
            again = rows.filter(~pl.struct(KEY).is_first_distinct()).get_column("row")
            repeated[again.to_numpy()] = True
        if self._rows:
            w0 = pl.col("w0")
            suspects = (
                ticks.select([*KEY, "w0"])
                .with_row_index("row")
                .filter(
                    (pl.col("t") <= w0 + self.lateness_us) & (pl.col("t") >= w0 - self.retention_us)
                )
            )
            if suspects.height:
                hits = suspects.join(self.frame(), on=KEY, how="semi").get_column("row")
                repeated[hits.to_numpy()] = True
        return repeated

    def add(self, keys: pl.DataFrame) -> None:
        """Remember the keys (symbol, t, seq) of ticks just applied."""
        if keys.height:
            self._chunks.append(keys.select(KEY))
            self._rows += keys.height

    def evict(self, watermarks: Callable[[], pl.DataFrame]) -> None:
        """Forget keys older than the horizon of their symbol's watermark (``watermarks()``:
        columns symbol, w); done once the keys have doubled since the last eviction, so it
        costs O(1) a tick."""
        if self._rows < 2 * self._kept + 100_000:
            return
        kept = (
            self.frame()
            .join(watermarks(), on="symbol", how="left")
            .filter(pl.col("w").is_null() | (pl.col("t") >= pl.col("w") - self.retention_us))
            .select(KEY)
        )
        self._chunks = [kept]
        self._rows = self._kept = kept.height

    def frame(self) -> pl.DataFrame:
        """Every kept key as one frame."""
        if not self._chunks:
            return pl.DataFrame(schema=_SCHEMA)
        if len(self._chunks) > 1:
            self._chunks = [pl.concat(self._chunks, rechunk=False)]
        return self._chunks[0]

    def to_arrow(self) -> pa.Table:
        """The kept keys as a table (for checkpoints)."""
        return self.frame().to_arrow()

    def restore(self, table: pa.Table) -> None:
        """Replace the kept keys with those of :meth:`to_arrow`'s table."""
        frame = pl.from_arrow(table)
        assert isinstance(frame, pl.DataFrame)
        self._chunks = [frame.cast(_SCHEMA)] if frame.height else []  # type: ignore[arg-type]
        self._rows = self._kept = frame.height
