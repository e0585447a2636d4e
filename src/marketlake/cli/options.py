"""Options shared by the ``marketlake`` commands: where things are and how to print results."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer


class OutputFormat(StrEnum):
    """Formats of the commands that print rows (``sql``, ``lake ...``)."""

    table = "table"
    csv = "csv"
    json = "json"


HomeOption = Annotated[
    Path | None,
    typer.Option(
        "--home",
        help="Folder of lake, bus and warehouse [env: MARKETLAKE_HOME; default ./marketlake-data]",
        show_default=False,
    ),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", help="TOML config file [env: MARKETLAKE_CONFIG; default <home>/marketlake.toml]"
    ),
]
BusOption = Annotated[
    str | None, typer.Option("--bus", help="Bus: local (default), memory://, kafka://host:port")
]
LakeOption = Annotated[
    str | None,
    typer.Option(
        "--lake", help="Lake root: file:///path or s3://bucket/prefix [default: <home>/lake]"
    ),
]
WarehouseOption = Annotated[
    str | None,
    typer.Option(
        "--warehouse",
        help="Warehouse: duckdb:///path or a DuckDB file path [default: <home>/warehouse.duckdb]",
    ),
]
FormatOption = Annotated[OutputFormat, typer.Option("--format", help="Output format")]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing on success")]
