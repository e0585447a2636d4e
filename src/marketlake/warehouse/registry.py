"""Open a warehouse by URL: ``duckdb:///path`` (or a bare path to a DuckDB file),
``postgresql://user:password@host:port/database`` or
``snowflake://user:password@account/database/schema``.

Adapters are imported only when named, so their drivers stay optional (pip extras).
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from pathlib import Path

from marketlake.errors import ConfigError, MissingExtraError
from marketlake.redaction import redact_url
from marketlake.warehouse.base import Warehouse


@dataclass(frozen=True)
class Adapter:
    """Where a warehouse class lives and the driver (and pip extra) it needs."""

    module: str
    class_name: str
    driver: str  # the driver's top-level import name
    package: str  # the driver's name on PyPI
    extra: str  # the marketlake extra that installs it


_POSTGRES = Adapter(
    "marketlake.warehouse.postgres",
    "PostgresWarehouse",
    "adbc_driver_postgresql",
    "adbc-driver-postgresql",
    "postgres",
)
ADAPTERS: dict[str, Adapter] = {
    "duckdb": Adapter("marketlake.warehouse.duckdb", "DuckDBWarehouse", "duckdb", "duckdb", ""),
    "postgresql": _POSTGRES,
    "postgres": _POSTGRES,
    "snowflake": Adapter(
        "marketlake.warehouse.snowflake",
        "SnowflakeWarehouse",
        "snowflake",
        "snowflake-connector-python",
        "snowflake",
    ),
}
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")


def open_warehouse(url: str, read_only: bool = False) -> Warehouse:
    """Open the warehouse ``url`` names; a URL without a scheme is a DuckDB file path."""
    match = _SCHEME.match(url)
    if match is None:
        from marketlake.warehouse.duckdb import DuckDBWarehouse

        return DuckDBWarehouse(Path(url), read_only=read_only)
    scheme = match.group(1).lower()
    adapter = ADAPTERS.get(scheme)
    if adapter is None:
        valid = ", ".join(f"{name}://" for name in ADAPTERS)
        raise ConfigError(
            f"unknown warehouse {redact_url(url)!r}: use one of {valid} or a path to a DuckDB file"
        )
    warehouse_class: type[Warehouse] = getattr(_import(adapter), adapter.class_name)
    return warehouse_class.from_url(url, read_only=read_only)


def _import(adapter: Adapter) -> object:
    try:
        return importlib.import_module(adapter.module)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if adapter.extra and (missing == adapter.module or missing.split(".")[0] == adapter.driver):
            raise MissingExtraError(adapter.package, adapter.extra) from exc
        raise
