"""The ``marketlake`` command line: run, stream, sql, serve, doctor."""

from __future__ import annotations

import functools
import gc
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from marketlake.cli.exits import ExitCode, MarketlakeGroup
from marketlake.cli.options import (
    BusOption,
    ConfigOption,
    FormatOption,
    HomeOption,
    LakeOption,
    OutputFormat,
    QuietOption,
    WarehouseOption,
)
from marketlake.engines.registry import ENGINES
from marketlake.errors import MissingExtraError
from marketlake.runspec import STAGE_NAMES
from marketlake.settings.sections import OnConflict

SERVE_PACKAGES = ("fastapi", "starlette", "uvicorn", "prometheus_client")
"""What ``serve`` imports from the ``serve`` extra."""

commands = typer.Typer(
    name="marketlake",
    help="Market data: sources → bus → Delta lakehouse → analytics → SQL warehouse.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=MarketlakeGroup,
)
"""The top-level commands; :func:`build_app` adds the command groups."""

GROUPS = {
    "lake": ("marketlake.cli.lake", "lake_app"),
    "stream": ("marketlake.cli.stream.commands", "stream_app"),
    "airflow": ("marketlake.cli.airflow", "airflow_app"),
}
"""The command groups: name → (module, Typer app), imported only when built."""


def _print_version(value: bool) -> None:
    if value:
        from marketlake import __version__

        print(f"marketlake {__version__}")
        raise typer.Exit(ExitCode.OK)


@commands.callback()
def options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit"
        ),
    ] = False,
) -> None:
    """Market data: sources → bus → Delta lakehouse → analytics → SQL warehouse."""


@commands.command()
def run(
    home: HomeOption = None,
    config: ConfigOption = None,
    source: Annotated[
        str | None, typer.Option(help="History source: sim, csv, parquet, yahoo, alphavantage")
    ] = None,
    path: Annotated[
        Path | None, typer.Option(help="File or folder for the csv/parquet sources")
    ] = None,
    symbols: Annotated[
        str | None, typer.Option(help="Comma-separated symbols (default: 10 large US stocks)")
    ] = None,
    start: Annotated[
        datetime | None, typer.Option(formats=["%Y-%m-%d"], help="First session (YYYY-MM-DD)")
    ] = None,
    end: Annotated[
        datetime | None, typer.Option(formats=["%Y-%m-%d"], help="Last session (YYYY-MM-DD)")
    ] = None,
    bus: BusOption = None,
    lake: LakeOption = None,
    engine: Annotated[
        str | None, typer.Option(help=f"Batch engine: {', '.join(ENGINES)} (default: local)")
    ] = None,
    warehouse: WarehouseOption = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the sim source")] = None,
    on_conflict: Annotated[
        OnConflict | None,
        typer.Option(
            "--on-conflict",
            help="A stored bar that another origin contradicts: keep it (default), replace it, "
            "or keep it and quarantine the new bar; findings go to the reconciliation table "
            "(setting validation.on_conflict, env MARKETLAKE_VALIDATION__ON_CONFLICT)",
            show_default=False,
        ),
    ] = None,
    quiet: QuietOption = False,
    run_id: Annotated[
        str | None,
        typer.Option(
            "--run-id",
            help="Id of the run: a planned run's stored spec is used; a new id plans the run",
        ),
    ] = None,
    stage: Annotated[
        str | None,
        typer.Option(
            help="Run only this stage of run --run-id: " + ", ".join(STAGE_NAMES),
        ),
    ] = None,
    plan: Annotated[
        bool, typer.Option("--plan", help="Plan a run, store its spec and print its id")
    ] = False,
) -> None:
    """Run the batch pipeline: fetch_history → consume_history → process → load_warehouse."""
    from marketlake.arrow_pool import prefer_jemalloc
    from marketlake.pandas_probe import defer_pandas

    defer_pandas()
    prefer_jemalloc()
    from marketlake.cli.run import run_pipeline

    sources: dict[str, object] = {}
    if path is not None:
        sources["files"] = {"path": path}
    if seed is not None:
        sources["sim"] = {"seed": seed}
    # the objects of the modules imported so far live as long as the process: keep the
    # garbage collector's full passes from traversing them again and again (5-10 % of each
    # stage of 500 symbols x 10 years)
    gc.freeze()
    report = run_pipeline(
        config=config,
        quiet=quiet,
        home=home,
        source=source,
        symbols=symbols,
        start=start.date() if start else None,
        end=end.date() if end else None,
        bus=bus,
        lake=lake,
        engine=engine,
        warehouse=warehouse,
        sources=sources or None,
        validation={"on_conflict": on_conflict},
        run_id=run_id,
        stage=stage,
        plan_only=plan,
    )
    raise typer.Exit(ExitCode.OK if report is None or report.succeeded else ExitCode.FAILED)


@commands.command()
def sql(
    query: Annotated[str, typer.Argument(help='A SQL query, e.g. "SELECT * FROM bars_1d LIMIT 5"')],
    home: HomeOption = None,
    config: ConfigOption = None,
    warehouse: WarehouseOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Query the warehouse (read-only)."""
    from marketlake.cli.sql import run_sql
    from marketlake.settings import load_settings

    settings = load_settings(config=config, home=home, warehouse=warehouse)
    sys.stdout.write(run_sql(settings.warehouse_url, query, fmt.value))


@commands.command()
def serve(
    home: HomeOption = None,
    config: ConfigOption = None,
    warehouse: WarehouseOption = None,
    host: Annotated[
        str | None,
        typer.Option(
            help="Address to listen on (default 127.0.0.1; any other needs a token; "
            "env MARKETLAKE_SERVE__HOST)",
            show_default=False,
        ),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            help="TCP port (default 8000; env MARKETLAKE_SERVE__PORT)", show_default=False
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            help="Bearer token every API request must carry (env MARKETLAKE_SERVE__TOKEN)",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve the JSON API, Prometheus metrics and the live dashboard (read-only)."""
    from marketlake.settings import load_settings

    settings = load_settings(
        config=config,
        home=home,
        warehouse=warehouse,
        serve={"host": host, "port": port, "token": token},
    )
    try:
        from marketlake.serve.server import run_server
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] in SERVE_PACKAGES:
            raise MissingExtraError(exc.name or "fastapi", "serve") from exc
        raise
    run_server(settings)


@commands.command()
def doctor(home: HomeOption = None, config: ConfigOption = None) -> None:
    """Print the effective configuration (secrets masked) and check every component."""
    from marketlake.cli.doctor import run_doctor

    raise typer.Exit(run_doctor(home=home, config=config))


def build_app(command: str | None = None) -> typer.Typer:
    """The whole command line; with ``command`` naming a top-level command (``run``, …),
    a command line holding only that command, so the others are neither imported nor
    built (about 20 ms of a short run's start)."""
    import copy
    import importlib

    if command is not None and command in _command_names():
        single = copy.copy(commands)
        single.registered_commands = [
            c for c in commands.registered_commands if _name(c) == command
        ]
        single.registered_groups = []
        return single
    whole = copy.copy(commands)
    whole.registered_groups = list(commands.registered_groups)
    for name, (module, attribute) in GROUPS.items():
        whole.add_typer(getattr(importlib.import_module(module), attribute), name=name)
    return whole


def _name(info: typer.models.CommandInfo) -> str:
    callback = info.callback
    return info.name or (callback.__name__ if callback is not None else "")


def _command_names() -> set[str]:
    return {_name(info) for info in commands.registered_commands}


def __getattr__(name: str) -> typer.Typer:
    if name == "app":  # the whole command line, for callers that drive it (tests, tools)
        return _whole()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@functools.cache
def _whole() -> typer.Typer:
    return build_app()


def main() -> None:
    """Entry point: run the app; errors become one line and an exit code (see cli.exits)."""
    build_app(sys.argv[1] if len(sys.argv) > 1 else None)()
