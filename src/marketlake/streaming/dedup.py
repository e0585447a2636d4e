"""De-duplication of ticks on their key ``(symbol, ts, seq)``, before aggregation.

A producer that is restarted sends ticks again, so the bus may carry a tick twice. The
processor remembers the ticks it applied whose event time is within ``late_retention`` of
the watermarks (the horizon in which a tick still changes bars and windows) and drops a tick
whose key it has already seen, in the same batch or an earlier one. A tick older than that
horizon is not applied anyway; it is only reported late.

Costs stay small for a stream in event-time order:

- within a batch, a repeated key needs a repeated event time (one sort of the batch's times
  tells), and only rows sharing a time are compared, exactly;
- only ticks not after their symbol's largest event time so far can repeat an earlier
  batch's tick, so only those are looked up, and only in the remembered chunks (one per
  batch) whose time range they fall in;
- a tick is remembered as a 64-bit digest of its key (8 bytes in memory and in checkpoints),
  stable across versions; two keys of the horizon sharing a digest, so that a tick would be
  taken for a repeat, has a chance of about one in 10^13 per looked-up tick with a million
  ticks remembered;
- whole chunks are forgotten once they are older than every symbol's horizon.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa

KEY = ["symbol", "t", "seq"]
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@dataclass
class _Chunk:
    """The digests of one batch's applied ticks and the range of their event times."""

    digests: np.ndarray  # uint64, sorted once looked up
    first_t: int
    last_t: int
    ordered: bool = False

    def sorted_digests(self) -> np.ndarray:
        """The digests, sorted (in place, the first time)."""
        if not self.ordered:
            self.digests.sort()
            self.ordered = True
        return self.digests


class SeenTicks:
    """Digests of the keys of the applied ticks within the horizon."""

    def __init__(self, lateness_us: int, retention_us: int) -> None:
        self.lateness_us = lateness_us
        self.retention_us = retention_us
        self._chunks: list[_Chunk] = []
        self._symbols: dict[str, np.uint64] = {}

    def duplicates(self, ticks: pl.DataFrame, digests: np.ndarray) -> np.ndarray:
        """Which rows of ``ticks`` (columns symbol, t, seq and w0, the symbol's watermark
        before the batch; ``digests`` from :meth:`digests`) repeat the key of an earlier row
        or of a tick already applied."""
        n = ticks.height
        repeated = np.zeros(n, dtype=bool)
        ordered = np.sort(digests)
        twice = ordered[1:][ordered[1:] == ordered[:-1]]
        if len(twice):  # compare the keys themselves: equal digests may be a coincidence
            rows = np.flatnonzero(np.isin(digests, twice))
            keyed = ticks[rows].select(KEY).with_columns(row=pl.Series(rows))
            again = keyed.filter(~pl.struct(KEY).is_first_distinct()).get_column("row")
            repeated[again.to_numpy()] = True
        if self._chunks:
            times = ticks.get_column("t").to_numpy()
            w0 = ticks.get_column("w0").to_numpy()
            suspect = (times <= w0 + self.lateness_us) & (times >= w0 - self.retention_us)
            looked = np.flatnonzero(suspect & ~repeated)
            if len(looked):
                repeated[looked] = self._known(digests[looked], times[looked])
        return repeated

    def _known(self, digests: np.ndarray, times: np.ndarray) -> np.ndarray:
        lo, hi = int(times.min()), int(times.max())
        near = [c.sorted_digests() for c in self._chunks if c.last_t >= lo and c.first_t <= hi]
        if not near:
            return np.zeros(len(times), dtype=bool)
        seen = near[0] if len(near) == 1 else np.sort(np.concatenate(near))
        at = np.minimum(np.searchsorted(seen, digests), len(seen) - 1)
        return np.asarray(seen[at] == digests)

    def add(self, digests: np.ndarray, times: np.ndarray) -> None:
        """Remember the ticks just applied, by their digests and event times."""
        if len(digests):
            self._chunks.append(_Chunk(digests.copy(), int(times.min()), int(times.max())))

    def evict(self, lowest_watermark: Callable[[], int]) -> None:
        """Forget the chunks older than every symbol's horizon (``lowest_watermark()``: the
        smallest watermark of any symbol)."""
        if len(self._chunks) < 2:
            return
        floor = lowest_watermark() - self.retention_us
        if self._chunks[0].last_t < floor or len(self._chunks) > 64:
            self._chunks = [c for c in self._chunks if c.last_t >= floor]
            self._merge_small()

    def _merge_small(self) -> None:
        """Keep the chunk list short: merge neighbours while there are more than 64."""
        while len(self._chunks) > 64:
            merged = []
            for i in range(0, len(self._chunks), 2):
                pair = self._chunks[i : i + 2]
                merged.append(
                    _Chunk(
                        np.sort(np.concatenate([c.digests for c in pair])),
                        min(c.first_t for c in pair),
                        max(c.last_t for c in pair),
                        ordered=True,
                    )
                )
            self._chunks = merged

    def digests(self, keys: pl.DataFrame) -> np.ndarray:
        """Stable 64-bit digests of the keys (symbol, t, seq) of ``keys``; a column ``sd``
        with each symbol's :meth:`symbol_digests` saves hashing the symbols again."""
        given = keys.get_column("sd") if "sd" in keys.columns else None
        if given is not None and given.null_count() == 0:
            x = given.to_numpy().astype(np.uint64)
        else:
            symbols = keys.get_column("symbol").to_arrow().dictionary_encode()
            codes = self.symbol_digests(symbols.dictionary.to_pylist())
            x = codes[symbols.indices.to_numpy(zero_copy_only=False)]
        with np.errstate(over="ignore"):
            x ^= keys.get_column("t").to_numpy().astype(np.uint64) * _GOLDEN
            x ^= _mix(keys.get_column("seq").to_numpy().astype(np.uint64) + _MIX1)
        return _mix(x)

    def symbol_digests(self, symbols: list[str]) -> np.ndarray:
        """The 64-bit digest of each of ``symbols`` (cached)."""
        found = self._symbols
        for symbol in symbols:
            if symbol not in found:
                raw = hashlib.blake2b(symbol.encode(), digest_size=8).digest()
                found[symbol] = np.uint64(int.from_bytes(raw, "little"))
        return np.array([found[symbol] for symbol in symbols], dtype=np.uint64)

    def copy(self) -> SeenTicks:
        """An independent record of the same ticks (for a rollback). The chunks are shared:
        they are only ever replaced, never changed, apart from sorting their digests in place,
        which keeps the same set."""
        seen = SeenTicks(self.lateness_us, self.retention_us)
        seen._chunks = list(self._chunks)
        seen._symbols = self._symbols  # a cache of fixed digests
        return seen

    def to_arrow(self) -> pa.Table:
        """The remembered digests as a table (for checkpoints): one row per chunk."""
        sizes = np.array([len(c.digests) for c in self._chunks], dtype=np.int32)
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int32)
        values = np.concatenate([c.digests for c in self._chunks] or [np.zeros(0, np.uint64)])
        digests = pa.ListArray.from_arrays(pa.array(offsets), pa.array(values, pa.uint64()))
        return pa.table(
            {
                "digests": digests,
                "first_t": pa.array([c.first_t for c in self._chunks], pa.int64()),
                "last_t": pa.array([c.last_t for c in self._chunks], pa.int64()),
            }
        )

    def restore(self, table: pa.Table) -> None:
        """Replace the remembered digests with those of :meth:`to_arrow`'s table."""
        lists = table.column("digests").combine_chunks()
        self._chunks = [
            _Chunk(
                np.array(lists[i].values.to_numpy(zero_copy_only=False), dtype=np.uint64),
                first,
                last,
            )
            for i, (first, last) in enumerate(
                zip(
                    table.column("first_t").to_pylist(),
                    table.column("last_t").to_pylist(),
                    strict=True,
                )
            )
        ]


def _mix(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser, element-wise (wrapping uint64 arithmetic)."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * _MIX1
        x = (x ^ (x >> np.uint64(27))) * _MIX2
        return x ^ (x >> np.uint64(31))
