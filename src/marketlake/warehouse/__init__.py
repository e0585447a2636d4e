"""The SQL warehouse: the catalogue's tables on DuckDB, PostgreSQL or Snowflake (one contract).

Open one with :func:`open_warehouse`; the tables are described in
:mod:`marketlake.warehouse.tables`.
"""

from marketlake.warehouse.base import (
    Capabilities,
    QueryError,
    Warehouse,
    WarehouseNotFoundError,
)
from marketlake.warehouse.registry import open_warehouse, redact_url
from marketlake.warehouse.tables import TABLES, TableSpec, get_table_spec

__all__ = [
    "TABLES",
    "Capabilities",
    "QueryError",
    "TableSpec",
    "Warehouse",
    "WarehouseNotFoundError",
    "get_table_spec",
    "open_warehouse",
    "redact_url",
]
