"""``marketlake doctor``: the effective configuration and a check of each component."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

from marketlake.settings import Settings, load_settings, masked


def _check_calendar(settings: Settings) -> str:
    from marketlake.calendar import get_sessions

    sessions = get_sessions(settings.calendar)
    return f"{settings.calendar}: sessions {sessions.first} to {sessions.last}"


def _check_source(settings: Settings) -> str:
    from marketlake.components import open_history_source

    source = open_history_source(settings)
    try:
        symbols = source.available_symbols()
    finally:
        source.close()
    if symbols is not None:
        return f"{settings.source}: {len(symbols)} symbols found ({', '.join(symbols[:8])})"
    return f"{settings.source}: ready"


def _check_bus(settings: Settings) -> str:
    """Reach the bus and list its topics; a local log not created yet is left uncreated."""
    from marketlake.components import open_bus

    url = settings.bus_url
    root = _local_bus_root(url)
    if root is not None and not (root / "topics").is_dir():
        return f"{url}: not created yet; `marketlake run` or `marketlake stream` creates it"
    with open_bus(settings) as bus:
        topics = bus.topics()
    listed = f": {', '.join(topics[:8])}" + (", ..." if len(topics) > 8 else "") if topics else ""
    return f"{url}: reachable; {len(topics)} topics{listed}"


def _local_bus_root(url: str) -> Path | None:
    """The folder of a ``local:///path`` bus (None for another bus)."""
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(url)
    return Path(unquote(parts.path)) if parts.scheme == "local" else None


def _check_warehouse(settings: Settings) -> str:
    from marketlake.warehouse.base import WarehouseNotFoundError
    from marketlake.warehouse.registry import open_warehouse, redact_url

    url = settings.warehouse_url
    try:
        with open_warehouse(url, read_only=True) as warehouse:
            names = warehouse.table_names()
    except WarehouseNotFoundError:
        return f"{redact_url(url)}: not created yet; `marketlake run` creates it"
    return f"{redact_url(url)}: {len(names)} tables"


def _check_lake(settings: Settings) -> str:
    """Reachable, writable (a probe object under ``_doctor/``, deleted), and the Delta tables
    found; a local lake not created yet is left uncreated."""
    from marketlake.components import open_lake
    from marketlake.lake.maintenance import describe_tables, probe_writes

    storage = open_lake(settings)
    if storage.is_local and not Path(storage.base_path).is_dir():
        return f"{storage.describe()}: not created yet; `marketlake run` creates it"
    storage.check()
    probe_writes(storage)
    infos = describe_tables(storage)
    found = "; ".join(f"{i.name} v{i.version} {i.rows:,} rows" for i in infos)
    return f"{storage.describe()}: reachable, writable; {len(infos)} Delta tables" + (
        f": {found}" if found else " (none yet; `marketlake run` creates them)"
    )


def _check_engine(settings: Settings) -> str:
    from marketlake.components import open_engine
    from marketlake.engines.registry import ENGINES

    engine = open_engine(settings)
    try:
        facts = engine.check()
    finally:
        engine.close()
    return f"{engine.name}: {ENGINES[engine.name].description}; {facts}"


CHECKS: dict[str, Callable[[Settings], str]] = {
    "calendar": _check_calendar,
    "source": _check_source,
    "bus": _check_bus,
    "engine": _check_engine,
    "warehouse": _check_warehouse,
    "lake": _check_lake,
}


def run_doctor(home: Path | None, config: Path | None) -> int:
    """Print the configuration and run each check; return the exit code (1 if any failed)."""
    console = Console()
    settings = load_settings(config=config, home=home)
    console.print_json(json.dumps(masked(settings), default=str))
    table = Table("component", "status", "detail")
    failed = 0
    for name, check in CHECKS.items():
        try:
            detail = check(settings)
            table.add_row(name, "[green]ok[/green]", detail)
        except Exception as exc:  # a check reports every failure, whatever its type
            failed += 1
            table.add_row(name, "[red]failed[/red]", f"{type(exc).__name__}: {exc}")
    console.print(table)
    return 1 if failed else 0
