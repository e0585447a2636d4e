"""Corporate actions in the curated lake: reported by a source, or inferred from the bars.

The curated table ``corporate_actions`` has one column more than the sources' actions:
``inferred`` (true for a split :mod:`marketlake.quality.splits` inferred from a price gap).
A reported split replaces an inferred one: on the same ex-date the MERGE overwrites it, and
an inferred split within ``NEARBY`` of a reported split of the same symbol is removed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from marketlake.catalogue import CORPORATE_ACTIONS
from marketlake.quality.splits import NEARBY
from marketlake.schemas import CORPORATE_ACTION_KEYS, CURATED_ACTION_SCHEMA, SPLIT

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from marketlake.lake.tables import LakeTables


def marked(actions: pa.Table, inferred: bool) -> pa.Table:
    """``actions`` (``CORPORATE_ACTION_SCHEMA``) in the curated schema, ``inferred`` set."""
    column = pa.array([inferred] * actions.num_rows, pa.bool_())
    return CORPORATE_ACTIONS.conform(actions.append_column("inferred", column))


def store_actions(tables: LakeTables, actions: pa.Table) -> list[str]:
    """Merge curated ``actions`` into the lake; drop inferred splits that reported splits
    near them replace. Returns the symbols whose actions changed."""
    if actions.num_rows == 0:
        return []
    tables.merge(CORPORATE_ACTIONS, actions, CORPORATE_ACTION_KEYS)
    reported = actions.filter(
        pc.and_(pc.equal(actions.column("kind"), SPLIT), pc.invert(_inferred(actions)))
    )
    if reported.num_rows:
        _drop_replaced(tables, reported)
    return [str(s) for s in pc.unique(actions.column("symbol")).to_pylist()]


def read_actions(tables: LakeTables, symbols: Sequence[str]) -> pa.Table:
    """Every curated action of ``symbols`` (the curated schema; older tables without
    ``inferred`` read it as null)."""
    if not symbols or not tables.exists(CORPORATE_ACTIONS):
        return CURATED_ACTION_SCHEMA.empty_table()
    return CORPORATE_ACTIONS.conform(tables.read_symbols(CORPORATE_ACTIONS, symbols))


def _inferred(actions: pa.Table) -> pa.ChunkedArray:
    return pc.fill_null(actions.column("inferred"), False)


def _drop_replaced(tables: LakeTables, reported: pa.Table) -> None:
    """Remove inferred splits within ``NEARBY`` of a reported split of the same symbol on
    another ex-date (one on the same ex-date was overwritten by the MERGE)."""
    symbols = pc.unique(reported.column("symbol")).to_pylist()
    stored = read_actions(tables, symbols)
    guessed = stored.filter(_inferred(stored))
    if guessed.num_rows == 0:
        return
    dates: dict[str, list[datetime]] = {}
    for row in reported.select(["symbol", "ex_date"]).to_pylist():
        dates.setdefault(row["symbol"], []).append(row["ex_date"])
    replaced = [
        any(abs(row["ex_date"] - day) <= NEARBY for day in dates.get(row["symbol"], ()))
        for row in guessed.select(["symbol", "ex_date"]).to_pylist()
    ]
    if not any(replaced):
        return
    gone = guessed.filter(pa.array(replaced, pa.bool_()))
    owners = pc.unique(gone.column("symbol")).to_pylist()
    mine = stored.filter(pc.is_in(stored.column("symbol"), pa.array(owners, pa.string())))
    keep = pc.invert(
        pc.is_in(
            pc.binary_join_element_wise(
                mine.column("symbol"), pc.cast(mine.column("ex_date"), pa.string()), "|"
            ),
            value_set=pc.binary_join_element_wise(
                gone.column("symbol"), pc.cast(gone.column("ex_date"), pa.string()), "|"
            ),
        )
    )
    keep = pc.or_(keep, pc.not_equal(mine.column("kind"), SPLIT))
    tables.replace_symbols(CORPORATE_ACTIONS, mine.filter(keep), owners, CORPORATE_ACTION_KEYS)
