"""Which indicator set ``indicators_1d`` holds, and its rebuild when the configuration changes.

The lake keeps the fingerprint of the set its ``indicators_1d`` was computed with
(``_state/indicators.json``; a table from before the set was configurable holds the
defaults). When ``process`` finds the configured set's fingerprint different, it gives the
lake table the new columns (an overwrite commit with no rows: older versions stay readable),
recomputes every symbol in the lake, not only the run's, and then records the new
fingerprint. It also leaves a mark (``_pending/load/indicators_1d.json``) for
``load_warehouse``, which recreates the warehouse table with the new columns, loads every
symbol's rows and removes the mark.

Each step is safe to repeat: a run killed before the fingerprint is recorded rebuilds again,
and one killed before the warehouse mark is removed reloads again.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pyarrow.compute as pc

from marketlake.analytics.indicator_set import DEFAULT_INDICATORS, IndicatorSet
from marketlake.catalogue import BARS_1D, INDICATORS_1D

if TYPE_CHECKING:
    from marketlake.lake.storage import LakeStorage
    from marketlake.lake.tables import LakeTables
    from marketlake.warehouse.base import Warehouse

STATE = "_state/indicators.json"
RELOAD_MARK = "_pending/load/indicators_1d.json"


def stored_fingerprint(tables: LakeTables) -> str | None:
    """The fingerprint of the set the lake's ``indicators_1d`` holds (None: no table yet)."""
    if not tables.exists(INDICATORS_1D):
        return None
    if not tables.storage.exists(STATE):
        return DEFAULT_INDICATORS.fingerprint
    state = json.loads(tables.storage.read_bytes(STATE))
    return str(state["fingerprint"])


def needs_rebuild(tables: LakeTables, indicators: IndicatorSet) -> bool:
    """True when the lake's ``indicators_1d`` was computed with another indicator set."""
    stored = stored_fingerprint(tables)
    return stored is not None and stored != indicators.fingerprint


def record(storage: LakeStorage, indicators: IndicatorSet) -> None:
    """Record that ``indicators_1d`` holds ``indicators`` for every symbol."""
    state = {"fingerprint": indicators.fingerprint, "columns": list(indicators.columns)}
    storage.write_bytes(STATE, json.dumps(state).encode())


def start_rebuild(tables: LakeTables, indicators: IndicatorSet) -> list[str]:
    """Mark the warehouse for a reload, give the lake table ``indicators``' columns (no rows)
    and return every symbol with bars in the lake, to recompute."""
    from deltalake import write_deltalake

    storage = tables.storage
    storage.write_bytes(RELOAD_MARK, json.dumps(list(indicators.columns)).encode())
    storage.run(
        f"giving {INDICATORS_1D.lake_table} the configured indicator columns",
        lambda: write_deltalake(
            storage.uri(INDICATORS_1D.lake_table),
            indicators.schema.empty_table(),
            mode="overwrite",
            schema_mode="overwrite",
            storage_options=storage.storage_options(),
        ),
    )
    symbols = tables.read(BARS_1D, columns=["symbol"]).column("symbol")
    return sorted(str(s) for s in pc.unique(symbols).to_pylist())


def reload_pending(storage: LakeStorage) -> bool:
    """True when the warehouse's ``indicators_1d`` must be recreated and reloaded whole."""
    return storage.exists(RELOAD_MARK)


def recreate_table(warehouse: Warehouse) -> None:
    """Drop the warehouse's ``indicators_1d`` and create it with the configured columns."""
    warehouse.execute(f"DROP TABLE IF EXISTS {warehouse.quote(INDICATORS_1D.name)}")
    warehouse.ensure_tables()


def reload_done(storage: LakeStorage) -> None:
    """Remove the warehouse's reload mark once every symbol's rows are loaded."""
    storage.delete(RELOAD_MARK)
