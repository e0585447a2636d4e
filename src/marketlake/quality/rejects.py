"""Rule outputs of the batch checks (frames with ``_rule`` and ``_detail``) as quarantine rows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import polars as pl
import pyarrow as pa

from marketlake.records import quarantine_rows
from marketlake.schemas import QUARANTINE_SCHEMA

RULE = "_rule"
DETAIL = "_detail"


def build_rejects(
    rejected: pl.DataFrame,
    *,
    dataset: str,
    columns: Sequence[str],
    ts_column: str,
    now: datetime | None,
) -> pa.Table:
    """Quarantine rows (``QUARANTINE_SCHEMA``) for ``rejected``, one per input row.

    ``rejected`` holds the record ``columns`` plus ``_rule`` and ``_detail``; ``ts_column``
    names the record's time column. The rows are built by
    :func:`marketlake.records.quarantine_rows`.
    """
    if rejected.height == 0:
        return QUARANTINE_SCHEMA.empty_table()
    return quarantine_rows(
        dataset,
        rejected.select(columns).to_arrow(),
        rule=rejected[RULE].to_list(),
        detail=rejected[DETAIL].to_list(),
        now=now,
        ts_column=ts_column,
    )


def stack(frames: Sequence[pl.DataFrame], schema: pl.Schema) -> pl.DataFrame:
    """Concatenate rule outputs that share ``schema`` (an empty frame when there are none)."""
    parts = [frame for frame in frames if frame.height]
    if not parts:
        return pl.DataFrame(schema=schema)
    return pl.concat(parts, how="vertical")
