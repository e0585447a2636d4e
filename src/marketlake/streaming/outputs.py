"""What the stream processor emits: Arrow tables meant for idempotent upsert sinks.

Every output row carries its natural key; a later row with the same key replaces an earlier
one (a correction after late data, or a final row after provisional ones), so a sink that
upserts on the keys below ends with the correct values.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, fields

import pyarrow as pa

from marketlake.schemas import QUARANTINE_SCHEMA, TICK_SCHEMA, UTC_US

BARS_1M_SCHEMA = pa.schema(
    [
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("ts", UTC_US, nullable=False),  # minute start
        pa.field("open", pa.float64()),
        pa.field("high", pa.float64()),
        pa.field("low", pa.float64()),
        pa.field("close", pa.float64()),
        pa.field("volume", pa.float64()),
        pa.field("vwap", pa.float64()),
        pa.field("trades", pa.int64()),
    ]
)
BARS_1M_KEYS = ("symbol", "ts")

WINDOW_SCHEMA = pa.schema(
    [
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("window_start", UTC_US, nullable=False),
        pa.field("window_end", UTC_US, nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("mean_price", pa.float64()),  # mean of the 1-minute closes in the window
        pa.field("vwap", pa.float64()),
        pa.field("volatility", pa.float64()),  # sample std of 1-minute log returns
        pa.field("high", pa.float64()),
        pa.field("low", pa.float64()),
        pa.field("volume", pa.float64()),
        pa.field("ticks", pa.int64()),
        pa.field("is_final", pa.bool_(), nullable=False),
        pa.field("updated_at", UTC_US, nullable=False),
    ]
)
WINDOW_KEYS = ("symbol", "kind", "window_start")

LATE_SCHEMA = TICK_SCHEMA.append(pa.field("reason", pa.string(), nullable=False))
LATE_REASONS = ("behind_watermark", "beyond_retention")

ALERT_SCHEMA = pa.schema(
    [
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("ts", UTC_US, nullable=False),  # the end of the window that moved
        pa.field("kind", pa.string(), nullable=False),
        pa.field("pct_move", pa.float64(), nullable=False),  # percent: 2.5 means +2.5 %
        pa.field("detail", pa.string()),
    ]
)
ALERT_KEYS = ("symbol", "kind", "ts")


@dataclass
class StreamOutput:
    """The rows emitted for one processed batch (or one flush)."""

    bars_1m: pa.Table = field(default_factory=BARS_1M_SCHEMA.empty_table)
    windows: pa.Table = field(default_factory=WINDOW_SCHEMA.empty_table)
    late: pa.Table = field(default_factory=LATE_SCHEMA.empty_table)
    alerts: pa.Table = field(default_factory=ALERT_SCHEMA.empty_table)
    quarantine: pa.Table = field(default_factory=QUARANTINE_SCHEMA.empty_table)

    def __len__(self) -> int:
        """The number of rows across every output."""
        return sum(getattr(self, f.name).num_rows for f in fields(self))

    @classmethod
    def concat(cls, outputs: Iterable[StreamOutput]) -> StreamOutput:
        """One output holding the rows of ``outputs`` in order."""
        parts = list(outputs)
        merged = cls()
        for f in fields(cls):
            tables = [getattr(out, f.name) for out in parts]
            if tables:
                setattr(merged, f.name, pa.concat_tables([getattr(merged, f.name), *tables]))
        return merged
