"""What a ``marketlake stream`` command does at the terminal: stop on a signal, print lines."""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any


def stop_flag() -> Callable[[], bool]:
    """A callable that turns true after SIGINT or SIGTERM (for a clean stop and commit)."""
    stopped: list[int] = []

    def handle(signum: int, _frame: Any) -> None:
        stopped.append(signum)

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)
    return lambda: bool(stopped)


def line_printer(quiet: bool) -> Callable[[str], None]:
    """A function printing progress lines at once, or nothing when ``quiet``."""

    def say(line: str) -> None:
        if not quiet:
            print(line, flush=True)

    return say
