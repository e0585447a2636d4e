"""The warehouse tables: the catalogue's datasets that live in a SQL warehouse.

Every warehouse (DuckDB, PostgreSQL, Snowflake) creates the same tables from these specs;
they are derived from :mod:`marketlake.catalogue`, where each dataset is declared once.
"""

from __future__ import annotations

from collections.abc import Mapping

from marketlake.catalogue import Dataset, warehouse_tables
from marketlake.errors import ConfigError

TableSpec = Dataset
TABLES: Mapping[str, TableSpec] = warehouse_tables()


def get_table_spec(name: str) -> TableSpec:
    """The spec of table ``name``; raise ConfigError naming the valid tables otherwise."""
    try:
        return TABLES[name]
    except KeyError:
        raise ConfigError(
            f"unknown warehouse table {name!r}; valid tables: {', '.join(sorted(TABLES))}"
        ) from None
