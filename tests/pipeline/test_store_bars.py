"""How the lake writer stores a chunk's bars when some of their symbols are already stored:
new keys are appended, symbols with a changed bar are rewritten, and the table ends as one
MERGE would leave it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from marketlake.catalogue import BARS_1D
from marketlake.pipeline.chunk_writes import commit_bars
from marketlake.pipeline.chunks import after_merge
from marketlake.pipeline.context import RunContext
from marketlake.pipeline.plan import plan_run
from marketlake.schemas import BAR_KEYS, BAR_SCHEMA
from marketlake.settings import load_settings
from marketlake.sources.sim import SimSource

DAY0 = datetime(2024, 3, 4, tzinfo=UTC)
INGESTED = datetime(2024, 3, 20, tzinfo=UTC)


def bars(symbol: str, days: range, close: float = 10.0) -> pa.Table:
    n = len(days)
    return pa.table(
        {
            "symbol": [symbol] * n,
            "ts": [DAY0 + timedelta(days=d) for d in days],
            "open": [10.0] * n,
            "high": [11.0] * n,
            "low": [9.0] * n,
            "close": [close] * n,
            "volume": [1000] * n,
            "source": ["sim"] * n,
            "ingested_at": [INGESTED] * n,
        },
        schema=BAR_SCHEMA,
    )


def rows(table: pa.Table) -> list[tuple[object, ...]]:
    return sorted(
        (r["symbol"], r["ts"], r["close"]) for r in table.select(BAR_SCHEMA.names).to_pylist()
    )


def store_bars(ctx: RunContext, good: pa.Table, stored: pa.Table | None) -> None:
    """Commit ``good`` bars knowing ``stored``, as the lake writer does."""
    commit_bars(ctx, good, stored, after_merge(stored, good, BAR_KEYS))


def test_new_keys_are_appended_and_changed_symbols_rewritten(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path, symbols="AAPL,MSFT,NVDA", source="sim")
    ctx = RunContext(settings, plan_run(settings, SimSource()), source=SimSource())
    stored = pa.concat_tables([bars("AAPL", range(5)), bars("MSFT", range(5))])
    ctx.tables.merge(BARS_1D, stored, BAR_KEYS)
    revised = bars("AAPL", range(2, 3), close=12.5)
    chunk = pa.concat_tables(
        [
            bars("AAPL", range(0, 2)),  # stored as they are
            revised,
            bars("AAPL", range(5, 7)),  # new days
            bars("NVDA", range(3)),  # a new symbol
        ]
    )
    version = ctx.tables.version(BARS_1D)
    mine = stored.filter(pc.is_in(stored.column("symbol"), pa.array(["AAPL"])))
    store_bars(ctx, chunk, mine)
    expected = pa.concat_tables(
        [
            bars("AAPL", range(0, 2)),
            revised,
            bars("AAPL", range(3, 7)),
            bars("MSFT", range(5)),
            bars("NVDA", range(3)),
        ]
    )
    assert rows(ctx.tables.read(BARS_1D)) == rows(expected)
    history = ctx.tables.history(BARS_1D)
    assert ctx.tables.version(BARS_1D) == version + 2  # one rewrite, one append
    assert all("MERGE" not in str(entry) for entry in history[:2])
    store_bars(ctx, chunk, ctx.tables.read_symbols(BARS_1D, ["AAPL", "NVDA"]))
    assert ctx.tables.version(BARS_1D) == version + 2  # stored as they are: nothing to write
    ctx.close()
