"""Options shared by the ``marketlake`` commands: where things are and how to print results.

Help texts avoid square brackets: Typer reads them as Rich markup and drops the text.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from marketlake.bus.registry import BUSES


class OutputFormat(StrEnum):
    """Formats of the commands that print rows (``sql``, ``lake ...``)."""

    table = "table"
    csv = "csv"
    json = "json"


HomeOption = Annotated[
    Path | None,
    typer.Option(
        "--home",
        help="Folder of lake, bus and warehouse (default ./marketlake-data; env MARKETLAKE_HOME)",
        show_default=False,
    ),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="TOML config file (default <home>/marketlake.toml; env MARKETLAKE_CONFIG)",
    ),
]


def _bus_forms() -> str:
    """The URL form of each bus in the registry, without its optional parts:
    ``local:///abs/path, memory://name, kafka://host:port``."""
    forms = (re.sub(r"\[[^\]]*\]", "", bus.description.split(": ", 1)[0]) for bus in BUSES.values())
    return ", ".join(forms)


BusOption = Annotated[
    str | None,
    typer.Option(
        "--bus",
        help=f"Bus: local (default: the durable log under <home>/bus), {_bus_forms()} "
        "(env MARKETLAKE_BUS)",
    ),
]
LakeOption = Annotated[
    str | None,
    typer.Option(
        "--lake", help="Lake root: file:///path or s3://bucket/prefix (default <home>/lake)"
    ),
]
WarehouseOption = Annotated[
    str | None,
    typer.Option(
        "--warehouse",
        help=(
            "Warehouse: a DuckDB file, as a path or duckdb:///path (default "
            "<home>/warehouse.duckdb); postgresql://… or snowflake://… (env "
            "MARKETLAKE_WAREHOUSE)"
        ),
    ),
]
FormatOption = Annotated[OutputFormat, typer.Option("--format", help="Output format")]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing on success")]
