"""The embedded DuckDB warehouse (see :mod:`marketlake.warehouse.duckdb.warehouse`)."""

from marketlake.warehouse.duckdb.connection import LOCK_WAIT_S
from marketlake.warehouse.duckdb.warehouse import (
    IDLE_RELEASE_S,
    MEMORY,
    URL_PREFIX,
    DuckDBWarehouse,
)

__all__ = ["IDLE_RELEASE_S", "LOCK_WAIT_S", "MEMORY", "URL_PREFIX", "DuckDBWarehouse"]
