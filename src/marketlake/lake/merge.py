"""Preparing Arrow data for an idempotent write: key checks, MERGE predicates, conforming.

De-duplication on the keys is :func:`marketlake.rows.deduplicate`, shared with the warehouse.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from marketlake.errors import TerminalError

if TYPE_CHECKING:
    import pyarrow as pa

_COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def quote(column: str) -> str:
    """``column`` as a quoted SQL identifier; only plain identifiers are accepted."""
    if not _COLUMN.match(column):
        raise TerminalError(
            f"column name {column!r} is not allowed in a lake table: use letters, digits and _"
        )
    return f'"{column}"'


def check_keys(data: pa.Table, keys: Sequence[str], table: str) -> None:
    """Raise TerminalError when a key column is missing or holds nulls."""
    if not keys:
        raise TerminalError(f"merging into {table} needs at least one key column")
    missing = [key for key in keys if key not in data.column_names]
    if missing:
        raise TerminalError(
            f"merging into {table}: key columns {missing} are not in the data "
            f"(columns: {data.column_names})"
        )
    for key in keys:
        nulls = data.column(key).null_count
        if nulls:
            raise TerminalError(
                f"merging into {table}: key column {key!r} has {nulls} null values; "
                "rows without a key cannot be merged (quarantine them first)"
            )


def merge_predicate(keys: Sequence[str]) -> str:
    """The ON clause matching target ``t`` and source ``s`` on ``keys``."""
    return " AND ".join(f"(t.{quote(k)} = s.{quote(k)})" for k in keys)


def changed_predicate(columns: Sequence[str], keys: Sequence[str]) -> str | None:
    """True for a matched row whose non-key columns differ; None when all columns are keys."""
    others = [c for c in columns if c not in keys]
    if not others:
        return None
    # Each comparison is parenthesised: the SQL parser binds OR tighter than IS DISTINCT FROM.
    return " OR ".join(f"(t.{quote(c)} IS DISTINCT FROM s.{quote(c)})" for c in others)


def conform_to(data: pa.Table, schema: pa.Schema, table: str) -> tuple[pa.Table, bool]:
    """Cast ``data`` to the table's ``schema``; return it and whether it adds new columns.

    Columns of the table missing from ``data`` become nulls; columns of ``data`` unknown to the
    table are kept (the write then adds them to the table's schema).
    """
    import pyarrow as pa

    columns: list[pa.Array | pa.ChunkedArray] = []
    fields: list[pa.Field] = []
    for target in schema:
        if target.name in data.column_names:
            column = data.column(target.name)
            if column.type != target.type:
                try:
                    column = column.cast(target.type)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                    raise TerminalError(
                        f"column {target.name!r} of type {column.type} cannot be written to "
                        f"{table}, whose column has type {target.type}: {exc}"
                    ) from exc
        elif target.nullable:
            column = pa.nulls(data.num_rows, target.type)
        else:
            raise TerminalError(
                f"data for {table} lacks the required column {target.name!r} "
                f"(columns: {data.column_names})"
            )
        columns.append(column)
        fields.append(target)
    extra = [name for name in data.column_names if name not in schema.names]
    for name in extra:
        columns.append(data.column(name))
        fields.append(pa.field(name, data.schema.field(name).type))
    return pa.Table.from_arrays(columns, schema=pa.schema(fields)), bool(extra)
