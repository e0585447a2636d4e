"""Recomputing the analytics from an earlier snapshot of the curated tables."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pyarrow.compute as pc

from marketlake.analytics.indicator_config import configured_indicators
from marketlake.analytics.indicator_set import DEFAULT_INDICATORS
from marketlake.catalogue import (
    ADJUSTMENT_FACTORS,
    BARS_1D,
    CORPORATE_ACTIONS,
    DAILY_METRICS,
    INDICATORS_1D,
)
from marketlake.engines.base import EngineJob
from marketlake.engines.registry import create_engine
from marketlake.errors import TerminalError
from marketlake.lake.snapshots import Snapshot, check_version, resolve_version
from marketlake.lake.tables import LakeTables
from marketlake.pipeline.indicator_state import needs_rebuild
from marketlake.pipeline.pending import mark
from marketlake.symbols import Symbol, parse_symbols

if TYPE_CHECKING:
    from marketlake.settings import Settings


@dataclass(frozen=True)
class ReprocessResult:
    """What :func:`reprocess_snapshot` did: the snapshot read and the rows written per table."""

    bars_version: int
    actions_version: int | None
    symbols: list[Symbol]
    rows: dict[str, int]


def reprocess_snapshot(
    tables: LakeTables,
    snapshot: Snapshot,
    *,
    engine: str = "local",
    symbols: Sequence[Symbol] | None = None,
    settings: Settings | None = None,
) -> ReprocessResult:
    """Recompute the analytics tables from curated bars and actions as they were at ``snapshot``.

    A version number selects that version of ``curated/bars_1d`` and the corporate actions
    current when it was committed; a time selects both tables as of that time. The adjustment
    factors, daily metrics and indicators of the symbols (default: every symbol in the
    snapshot) are replaced, one commit per table, by what the engine computes from the
    snapshot, so the analytics describe exactly that snapshot until the next ``marketlake
    run``; the snapshot's adjusted bars are its bars (``bars_1d`` at ``bars_version``) with
    the factors applied (:func:`marketlake.analytics.adjust.apply_spans`). ``settings``
    configure the engine (its ``[spark]`` section, for example).
    """
    name = BARS_1D.lake_table
    if not tables.exists(BARS_1D):
        raise TerminalError(f"no {name} table in {tables.storage.describe()}: nothing to reprocess")
    bars_version = resolve_version(tables, BARS_1D, snapshot)
    if bars_version is None:
        raise TerminalError(f"{name} has no version as of {snapshot.describe()}")
    check_version(tables, BARS_1D, bars_version)
    moment = snapshot.at
    if moment is None:
        (commit,) = [c for c in tables.history(BARS_1D) if int(c["version"]) == bars_version]
        moment = datetime.fromtimestamp(commit["timestamp"] / 1000, UTC)
    actions_version = (
        resolve_version(tables, CORPORATE_ACTIONS, Snapshot(at=moment))
        if tables.exists(CORPORATE_ACTIONS)
        else None
    )
    if symbols:
        chosen = list(symbols)
    else:
        names = tables.read(BARS_1D, columns=["symbol"], version=bars_version).column("symbol")
        chosen = sorted(parse_symbols(pc.unique(names).to_pylist()))
    indicators = configured_indicators(settings.indicators) if settings else DEFAULT_INDICATORS
    if needs_rebuild(tables, indicators):
        raise TerminalError(
            "the configured [indicators] differ from the set indicators_1d was computed with: "
            "run `marketlake run` once to rebuild it for every symbol, then reprocess"
        )
    job = EngineJob(
        tables=tables,
        symbols=tuple(chosen),
        now=datetime.now(UTC),
        bars_version=bars_version,
        actions_version=actions_version,
        indicators=indicators,
    )
    # the next run recomputes these symbols from the current tables, even with nothing new
    mark(tables.storage, "reprocess", chosen)
    runner = create_engine(engine, settings)
    try:
        outcome = runner.process(job)
    finally:
        runner.close()
    analytics = (ADJUSTMENT_FACTORS, DAILY_METRICS, INDICATORS_1D)
    written = {d.lake_table: outcome.written.get(d.name, 0) for d in analytics}
    return ReprocessResult(bars_version, actions_version, chosen, written)
