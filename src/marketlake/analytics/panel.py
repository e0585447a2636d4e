"""Panels: per-symbol segments of a flat column laid out as rows of a 2-D array.

Bars arrive as flat columns sorted by (symbol, ts). A :class:`Layout` says where each
symbol's usable bars start in the flat column and how many there are; :meth:`Layout.gather`
turns a flat column into a panel (one left-aligned, NaN-padded row per symbol) and
:meth:`Layout.scatter` puts a panel back into flat order. When every symbol has the same
number of bars and no leading gap, both are free reshapes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Layout:
    """Where each symbol's usable bars sit in a flat column.

    ``starts[i]`` is the flat index of symbol ``i``'s first usable bar and ``lengths[i]`` the
    number of bars from there to the symbol's end; ``width`` is the panel's column count
    (at least ``max(lengths)``).
    """

    starts: np.ndarray
    lengths: np.ndarray
    width: int

    @property
    def dense(self) -> bool:
        """True when the panel is a plain reshape of a contiguous run of the flat column."""
        rows = len(self.starts)
        return bool(
            rows > 0
            and (self.lengths == self.width).all()
            and (np.diff(self.starts) == self.width).all()
        )

    def gather(self, flat: np.ndarray) -> np.ndarray:
        """The panel of ``flat``: one row per symbol, NaN after each symbol's last bar."""
        rows = len(self.starts)
        if self.dense:
            first = int(self.starts[0])
            return flat[first : first + rows * self.width].reshape(rows, self.width)
        panel = np.full((rows, self.width), np.nan)
        for row, (start, length) in enumerate(zip(self.starts, self.lengths, strict=True)):
            panel[row, :length] = flat[start : start + length]
        return panel

    def scatter(self, panel: np.ndarray, out: np.ndarray) -> None:
        """Write each symbol's row of ``panel`` back to its place in the flat ``out``."""
        if self.dense:
            first = int(self.starts[0])
            out[first : first + panel.size] = panel.reshape(-1)
            return
        for row, (start, length) in enumerate(zip(self.starts, self.lengths, strict=True)):
            out[start : start + length] = panel[row, :length]


def time_major(panel: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of ``panel`` with one row per bar and one column per symbol."""
    return np.ascontiguousarray(panel.T)


def symbol_major(panel: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of a time-major ``panel`` with one row per symbol again."""
    return np.ascontiguousarray(panel.T)


def allocate(shape: tuple[int, ...]) -> np.ndarray:
    """An uninitialised float64 array whose memory comes from Arrow's memory pool.

    Arrow's allocator keeps freed pages for the next request, where a large numpy array
    maps fresh pages each time and pays a page fault on the first touch of each one; the
    indicator outputs are large, short-lived and made again on every call.
    """
    import pyarrow as pa

    size = int(np.prod(shape))
    if size == 0:
        return np.empty(shape)
    buffer = pa.allocate_buffer(size * 8)
    return np.frombuffer(buffer, dtype=np.float64, count=size).reshape(shape)


def first_valid(columns: Sequence[np.ndarray], starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Per segment, the offset of the first row where every column is non-NaN.

    A segment with no such row gets the offset of its last row, as TA-Lib's Python wrapper
    does: the functions then run on that single bar.
    """
    offsets = np.zeros(len(starts), dtype=np.int64)
    if not any(len(column) and np.isnan(column.min()) for column in columns):
        return offsets
    missing = np.zeros(len(columns[0]), dtype=bool)
    for column in columns:
        missing |= np.isnan(column)
    for i, (start, end) in enumerate(zip(starts, ends, strict=True)):
        valid = np.flatnonzero(~missing[start:end])
        offsets[i] = valid[0] if len(valid) else end - start - 1
    return offsets


def size_buckets(lengths: np.ndarray, spread: float = 2.0) -> list[np.ndarray]:
    """Group segment indexes so that no segment is shorter than 1/``spread`` of its group's
    longest one: padding then costs at most ``spread`` times the real rows."""
    order = np.argsort(-lengths, kind="stable")
    buckets: list[np.ndarray] = []
    begin = 0
    while begin < len(order):
        floor = lengths[order[begin]] / spread
        end = begin + 1
        while end < len(order) and lengths[order[end]] >= floor:
            end += 1
        buckets.append(np.sort(order[begin:end]))
        begin = end
    return buckets
