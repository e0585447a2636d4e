"""Comparing derived tables: what the kernels compute, and equality to 1e-9 relative."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from marketlake.analytics.adjust import adjust_table
from marketlake.analytics.partition import analyse_partition, split_analytics


def reference(bars: pa.Table, actions: pa.Table) -> dict[str, pa.Table]:
    """What the derived tables must hold, computed from the kernels directly."""
    adjusted = adjust_table(bars, actions)
    metrics, indicators = split_analytics(analyse_partition(adjusted))
    return {"bars_1d_adjusted": adjusted, "daily_metrics": metrics, "indicators_1d": indicators}


def assert_same(actual: pa.Table, expected: pa.Table, columns: list[str]) -> None:
    """Equal rows by (symbol, ts): keys exactly, floats to 1e-9 relative, NULLs in place."""
    order = [("symbol", "ascending"), ("ts", "ascending")]
    actual, expected = actual.sort_by(order), expected.sort_by(order)
    assert actual.num_rows == expected.num_rows
    for name in columns:
        got, want = actual.column(name), expected.column(name)
        nulls = [pc.is_null(column).to_pylist() for column in (got, want)]
        assert nulls[0] == nulls[1], f"{name}: NULLs in other places"
        if pa.types.is_floating(want.type):
            a = got.to_numpy(zero_copy_only=False).astype(float)
            b = want.to_numpy(zero_copy_only=False).astype(float)
            assert np.array_equal(np.isnan(a), np.isnan(b)), name
            both = ~np.isnan(b)
            np.testing.assert_allclose(a[both], b[both], rtol=1e-9, err_msg=name)
        else:
            assert got.to_pylist() == want.to_pylist(), name
