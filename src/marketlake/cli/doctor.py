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


CHECKS: dict[str, Callable[[Settings], str]] = {
    "calendar": _check_calendar,
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
