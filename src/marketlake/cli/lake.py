"""``marketlake lake ...``: list, compact, vacuum and time-travel the lake's Delta tables."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from marketlake.cli.options import ConfigOption, FormatOption, HomeOption, LakeOption, OutputFormat
from marketlake.engines.registry import ENGINES

if TYPE_CHECKING:
    import pyarrow as pa

    from marketlake.lake.tables import LakeTables
    from marketlake.settings import Settings
    from marketlake.symbols import Symbol

lake_app = typer.Typer(
    help="Maintain the lake: tables, compact, vacuum, history, read --as-of, reprocess.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


TablesArgument = Annotated[
    list[str] | None,
    typer.Argument(
        help="Tables such as curated/bars_1d (default: every table)", show_default=False
    ),
]
AsOfOption = Annotated[
    str,
    typer.Option(
        "--as-of", help="A table version (e.g. 3) or an ISO date/time (UTC unless it has an offset)"
    ),
]


def _settings(
    home: Path | None, config: Path | None, lake: str | None, **overrides: Any
) -> Settings:
    from marketlake.settings import load_settings

    return load_settings(config=config, home=home, lake=lake, **overrides)


def _tables(settings: Settings) -> LakeTables:
    """The lake's tables; a remote lake is checked first, so a wrong endpoint, bucket or key
    fails here, in one line."""
    from marketlake.components import open_lake
    from marketlake.lake.tables import LakeTables

    storage = open_lake(settings)
    if not storage.is_local:
        storage.check()
    return LakeTables(storage)


def _open(home: Path | None, config: Path | None, lake: str | None) -> LakeTables:
    return _tables(_settings(home, config, lake))


def _emit(rows: pa.Table, fmt: OutputFormat) -> None:
    from marketlake.cli.sql import FORMATS

    sys.stdout.write(FORMATS[fmt.value](rows))


def _emit_counts(rows: list[dict[str, Any]], counts: Sequence[str], fmt: OutputFormat) -> None:
    """Print ``rows`` of a ``table`` name and the integer columns ``counts``."""
    import pyarrow as pa

    schema = pa.schema([("table", pa.string())] + [(name, pa.int64()) for name in counts])
    _emit(pa.Table.from_pylist(rows, schema=schema), fmt)


@lake_app.command("tables")
def tables_command(
    home: HomeOption = None,
    config: ConfigOption = None,
    lake: LakeOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """List the Delta tables with their version, live files, rows and size."""
    from marketlake.lake.maintenance import describe_tables

    infos = describe_tables(_open(home, config, lake).storage)
    rows = [
        {
            "table": i.name,
            "version": i.version,
            "files": i.files,
            "rows": i.rows,
            "bytes": i.size_bytes,
        }
        for i in infos
    ]
    _emit_counts(rows, ("version", "files", "rows", "bytes"), fmt)


@lake_app.command("compact")
def compact_command(
    names: TablesArgument = None,
    home: HomeOption = None,
    config: ConfigOption = None,
    lake: LakeOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Rewrite small data files into larger ones (one commit per table; rows unchanged)."""
    from marketlake.lake.maintenance import choose_tables

    tables = _open(home, config, lake)
    rows = []
    for name in choose_tables(tables.storage, names):
        metrics = tables.compact(name)
        rows.append(
            {
                "table": name,
                "files_removed": int(metrics.get("numFilesRemoved", 0)),
                "files_added": int(metrics.get("numFilesAdded", 0)),
                "version": tables.version(name),
            }
        )
    _emit_counts(rows, ("files_removed", "files_added", "version"), fmt)


@lake_app.command("vacuum")
def vacuum_command(
    names: TablesArgument = None,
    retention_hours: Annotated[
        int,
        typer.Option(
            "--retention-hours",
            min=0,
            help="Keep files that versions of the last N hours still need (time travel range)",
        ),
    ] = 168,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List the files that would be deleted")
    ] = False,
    home: HomeOption = None,
    config: ConfigOption = None,
    lake: LakeOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Delete data files no version within the retention period uses, and orphaned files."""
    import pyarrow as pa

    from marketlake.lake.maintenance import choose_tables, vacuum_table

    tables = _open(home, config, lake)
    rows = []
    for name in choose_tables(tables.storage, names):
        for path in vacuum_table(tables.storage, name, retention_hours, dry_run=dry_run):
            rows.append({"table": name, "file": path, "deleted": not dry_run})
    schema = pa.schema([("table", pa.string()), ("file", pa.string()), ("deleted", pa.bool_())])
    _emit(pa.Table.from_pylist(rows, schema=schema), fmt)


@lake_app.command("history")
def history_command(
    name: Annotated[str, typer.Argument(help="A table such as curated/bars_1d")],
    limit: Annotated[int | None, typer.Option(min=1, help="Newest N commits only")] = None,
    home: HomeOption = None,
    config: ConfigOption = None,
    lake: LakeOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """The commits of a table, newest first: version, time, operation, rows and files."""
    from marketlake.lake.maintenance import choose_tables, history_rows

    tables = _open(home, config, lake)
    (chosen,) = choose_tables(tables.storage, [name])
    _emit(history_rows(tables.storage, chosen, limit), fmt)


@lake_app.command("read")
def read_command(
    name: Annotated[str, typer.Argument(help="A table such as curated/bars_1d")],
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="A table version (e.g. 3) or an ISO date/time (UTC unless it has an offset) "
            "(default: latest)",
            show_default=False,
        ),
    ] = None,
    symbols: Annotated[str | None, typer.Option(help="Comma-separated symbols only")] = None,
    limit: Annotated[int | None, typer.Option(min=0, help="At most N rows")] = None,
    home: HomeOption = None,
    config: ConfigOption = None,
    lake: LakeOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Print a table's rows, as of a version or a time (time travel), sorted by symbol and ts."""
    from marketlake.lake.maintenance import choose_tables
    from marketlake.lake.snapshots import parse_snapshot, read_snapshot

    snapshot = parse_snapshot(as_of) if as_of is not None else None
    tables = _open(home, config, lake)
    (chosen,) = choose_tables(tables.storage, [name])
    wanted = _split(symbols)
    _emit(read_snapshot(tables, chosen, snapshot, symbols=wanted, limit=limit), fmt)


@lake_app.command("reprocess")
def reprocess_command(
    as_of: AsOfOption,
    symbols: Annotated[
        str | None, typer.Option(help="Comma-separated symbols (default: all in the snapshot)")
    ] = None,
    engine: Annotated[
        str | None, typer.Option(help=f"Batch engine: {', '.join(ENGINES)} (default: local)")
    ] = None,
    home: HomeOption = None,
    config: ConfigOption = None,
    lake: LakeOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Recompute the analytics tables from the curated bars and actions of an earlier snapshot.

    A version number is a version of curated/bars_1d (actions as of its commit); a time
    selects both tables as of that time. The warehouse is not touched.
    """
    from marketlake.lake.snapshots import parse_snapshot
    from marketlake.pipeline.reprocess import reprocess_snapshot

    snapshot = parse_snapshot(as_of)
    settings = _settings(home, config, lake, engine=engine)
    tables = _tables(settings)
    result = reprocess_snapshot(
        tables, snapshot, engine=settings.engine, symbols=_split(symbols), settings=settings
    )
    rows = [
        {
            "table": name,
            "rows": count,
            "symbols": len(result.symbols),
            "bars_version": result.bars_version,
            "actions_version": result.actions_version,
            "version": tables.version(name),
        }
        for name, count in result.rows.items()
    ]
    _emit_counts(rows, ("rows", "symbols", "bars_version", "actions_version", "version"), fmt)


def _split(symbols: str | None) -> list[Symbol] | None:
    """The symbols of a comma- or space-separated option, parsed; None when none are given."""
    from marketlake.symbols import parse_symbols

    if symbols is None:
        return None
    return parse_symbols(s for s in symbols.replace(",", " ").split() if s) or None
