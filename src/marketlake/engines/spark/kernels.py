"""The per-symbol kernels of the Polars engine, wrapped for Spark's ``applyInArrow``.

Each function takes one symbol's Arrow rows and returns Arrow rows; Spark calls it once per
symbol on the executors, so a symbol's whole history is always in one call and the results
are the Polars engine's to the last bit.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

import pyarrow as pa

from marketlake.analytics.indicator_set import DEFAULT_INDICATORS, IndicatorSet
from marketlake.schemas import ADJUSTED_BAR_SCHEMA

if TYPE_CHECKING:
    from marketlake.engines.base import ExpectedSessions

ADJUSTED_COLUMNS = tuple(ADJUSTED_BAR_SCHEMA.names)


def analysed_schema(indicators: IndicatorSet = DEFAULT_INDICATORS) -> pa.Schema:
    """One symbol's adjusted bars with their indicators: what :func:`analyse_symbol` returns."""
    schema = indicators.schema
    return pa.schema(
        list(ADJUSTED_BAR_SCHEMA) + [schema.field(name) for name in indicators.columns]
    )


def analyse_symbol(
    bars: pa.Table, actions: pa.Table, indicators: IndicatorSet = DEFAULT_INDICATORS
) -> pa.Table:
    """Back-adjust one symbol's bars for its actions and add its indicators (sorted by ts)."""
    from marketlake.analytics.adjust import adjust_table
    from marketlake.analytics.partition import analyse_partition, split_analytics
    from marketlake.schemas import CORPORATE_ACTION_SCHEMA

    schema = analysed_schema(indicators)
    if bars.num_rows == 0:
        return schema.empty_table()
    actions = actions.select(CORPORATE_ACTION_SCHEMA.names).cast(CORPORATE_ACTION_SCHEMA)
    adjusted = adjust_table(bars, actions)
    _, values = split_analytics(analyse_partition(adjusted, indicators), indicators)
    columns = [adjusted.column(name) for name in ADJUSTED_COLUMNS]
    columns += [values.column(name) for name in indicators.columns]
    return pa.Table.from_arrays(columns, schema=schema)


def symbol_analyser(indicators: IndicatorSet) -> Callable[[pa.Table, pa.Table], pa.Table]:
    """:func:`analyse_symbol` for ``indicators``, as the two-argument function Spark calls
    per symbol (the set travels to the executors with it)."""

    def analyse(bars: pa.Table, actions: pa.Table) -> pa.Table:
        return analyse_symbol(bars, actions, indicators)

    return analyse


def missing_for_symbol(bars: pa.Table, expected: ExpectedSessions, now: datetime) -> pa.Table:
    """One symbol's expected sessions without a bar (``MISSING_SESSION_SCHEMA``)."""
    from marketlake.engines.local import missing_sessions

    return missing_sessions(bars, expected, now)
