"""Reads of the warehouse for the API: one read-only connection per read, closed at once.

A connection is opened for each read, through the same path as ``marketlake sql``
(:func:`marketlake.warehouse.registry.open_warehouse` with ``read_only=True``), so the server
never holds the warehouse open between requests and writers are not kept waiting by it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from marketlake.errors import TerminalError
from marketlake.warehouse.base import Warehouse, WarehouseNotFoundError
from marketlake.warehouse.registry import open_warehouse


class WarehouseMissingError(TerminalError):
    """There is no warehouse yet: nothing has been loaded."""


class WarehouseReader:
    """Runs read-only queries (``?`` marks parameters) on the warehouse at ``url``."""

    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        """The rows of ``sql`` as Arrow."""
        with self.open() as warehouse:
            return warehouse.query(sql, list(params) if params else None)

    def open(self) -> Warehouse:
        """A read-only connection for several queries in a row; close it (``with``) soon."""
        try:
            return open_warehouse(self.url, read_only=True)
        except WarehouseNotFoundError as exc:
            raise WarehouseMissingError(f"{exc}: run `marketlake run` first to load it") from exc

    def columns(self, table: str) -> list[str]:
        """The columns of ``table`` as the warehouse holds them, in table order."""
        result = self.query(f"SELECT * FROM {table} WHERE 1 = 0")
        return [name.lower() for name in result.column_names]
