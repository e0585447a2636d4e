"""The ``marketlake`` command line: run, stream, sql, serve, doctor."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from marketlake.errors import MarketlakeError

app = typer.Typer(
    name="marketlake",
    help="Market data: sources → bus → Delta lakehouse → analytics → SQL warehouse.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

HomeOption = Annotated[
    Path | None,
    typer.Option(
        "--home",
        help="Folder holding the lake, bus and warehouse [env: MARKETLAKE_HOME; default ./marketlake-data]",
        show_default=False,
    ),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="TOML config file [env: MARKETLAKE_CONFIG; default <home>/marketlake.toml]"),
]


@app.command()
def doctor(home: HomeOption = None, config: ConfigOption = None) -> None:
    """Print the effective configuration (secrets masked) and check every component."""
    from marketlake.cli.doctor import run_doctor

    raise typer.Exit(run_doctor(home=home, config=config))


def main() -> None:
    """Entry point: run the app and turn marketlake errors into one clear line."""
    try:
        app()
    except MarketlakeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
