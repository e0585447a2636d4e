"""How the stream processor runs its Polars queries: on the in-memory engine.

Polars 2 runs a lazy query on its streaming engine by default, which costs about 2 ms more
per query than the in-memory engine on the small frames of a poll (a few thousand ticks, the
minute state of the symbols they touch). A poll runs about eight queries, so on the default
engine that fixed cost was most of a small poll's processing time, and so of the
tick-to-window latency; on the 1 M-tick polls of a catch-up the in-memory engine is as fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Literal

import polars as pl

ENGINE: Final[Literal["in-memory"]] = "in-memory"


def collect(frame: pl.LazyFrame) -> pl.DataFrame:
    """``frame`` computed on the in-memory engine."""
    return frame.collect(engine=ENGINE)


def collect_all(frames: Sequence[pl.LazyFrame]) -> list[pl.DataFrame]:
    """``frames`` computed together (common parts once) on the in-memory engine."""
    return pl.collect_all(frames, engine=ENGINE)
