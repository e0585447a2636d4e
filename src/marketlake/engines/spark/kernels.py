"""The per-symbol kernels of the Polars engine, wrapped for Spark's ``applyInArrow``.

Each function takes one symbol's Arrow rows and returns Arrow rows; Spark calls it once per
symbol on the executors, so a symbol's whole history is always in one call and the results
are the Polars engine's to the last bit.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import pyarrow as pa

from marketlake.schemas import ADJUSTED_BAR_SCHEMA, INDICATORS_SCHEMA

if TYPE_CHECKING:
    from marketlake.engines.base import ExpectedSessions

KEYS = ("symbol", "ts")
ADJUSTED_COLUMNS = tuple(ADJUSTED_BAR_SCHEMA.names)
INDICATOR_NAMES = tuple(name for name in INDICATORS_SCHEMA.names if name not in KEYS)
ANALYSED_SCHEMA = pa.schema(
    list(ADJUSTED_BAR_SCHEMA) + [INDICATORS_SCHEMA.field(name) for name in INDICATOR_NAMES]
)
"""One symbol's adjusted bars with their indicators: what :func:`analyse_symbol` returns."""


def analyse_symbol(bars: pa.Table, actions: pa.Table) -> pa.Table:
    """Back-adjust one symbol's bars for its actions and add its indicators (sorted by ts)."""
    from marketlake.analytics.adjust import adjust_table
    from marketlake.analytics.partition import analyse_partition, split_analytics
    from marketlake.schemas import CORPORATE_ACTION_SCHEMA

    if bars.num_rows == 0:
        return ANALYSED_SCHEMA.empty_table()
    actions = actions.select(CORPORATE_ACTION_SCHEMA.names).cast(CORPORATE_ACTION_SCHEMA)
    adjusted = adjust_table(bars, actions)
    _, indicators = split_analytics(analyse_partition(adjusted))
    columns = [adjusted.column(name) for name in ADJUSTED_COLUMNS]
    columns += [indicators.column(name) for name in INDICATOR_NAMES]
    return pa.Table.from_arrays(columns, schema=ANALYSED_SCHEMA)


def missing_for_symbol(bars: pa.Table, expected: ExpectedSessions, now: datetime) -> pa.Table:
    """One symbol's expected sessions without a bar (``MISSING_SESSION_SCHEMA``)."""
    from marketlake.engines.local import missing_sessions

    return missing_sessions(bars, expected, now)
