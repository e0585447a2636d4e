"""Opening a DuckDB warehouse file: processes take turns, readers are locked down.

DuckDB allows one writing process per file (or several reading ones). :func:`connect` waits,
with backoff, while another process holds the file, and asks it to let go by touching
``<file>.wanted`` (see :func:`wanted_marker`); the warehouse's holder checks for that marker
after each write. A read-only connection reaches the warehouse's own tables only: it is opened
without file or network access, then extensions stay unloaded and its settings locked.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from pathlib import Path

import duckdb

from marketlake.errors import TerminalError, TransientError
from marketlake.warehouse.base import WarehouseNotFoundError

LOCK_WAIT_S = 30.0  # how long a process waits for a file another process holds
_FIRST_BACKOFF_S, _MAX_BACKOFF_S = 0.01, 0.25
SESSION = ("SET TimeZone = 'UTC'",)  # setting it loads the built-in ICU extension
WRITER_MEMORY_LIMIT = "256MB"
"""DuckDB's buffer memory for a process writing a warehouse file. DuckDB keeps the blocks a
load wrote cached up to 80 % of the machine's memory, so a batch load's memory grew with the
rows loaded (1.9 GB for 1,000 symbols x 20 years); a writer evicts them instead (they are in
the file already) and spills large joins to ``<file>.tmp``. The rows/s of a load are the same.
Readers (``marketlake sql``, ``serve``) keep DuckDB's default."""
# A read-only connection reaches the warehouse's tables only, and cannot change that: opened
# without file or network access, then extensions stay unloaded and the settings locked.
_READER = {"enable_external_access": False, "autoinstall_known_extensions": False}
_LOCK_DOWN = (  # global settings: later connections of this process to the file share them
    "SET GLOBAL TimeZone = 'UTC'",
    "SET autoload_known_extensions = false",
    "SET lock_configuration = true",
)
REFUSED = (duckdb.PermissionException,)  # a refused file, network or extension use
# Readers of one process share the database's settings: one thread at a time checks whether
# they are locked down and, if not, locks them (two at once would both try, one would fail).
_LOCKING_DOWN = threading.Lock()


def wanted_marker(path: Path | str) -> Path | None:
    """The file a process waiting for ``path`` touches to ask its holder to let go."""
    return path.with_name(path.name + ".wanted") if isinstance(path, Path) else None


def _ask_for(marker: Path | None) -> None:
    if marker is not None:
        with contextlib.suppress(OSError):  # a reader may not write the folder: it waits
            marker.touch()


def take_request(marker: Path | None) -> bool:
    """True (and the request removed) when a waiting process asked for the file."""
    if marker is None:
        return False
    try:
        marker.unlink()
    except OSError:
        return False
    return True


def connect(
    path: Path | str, read_only: bool, lock_wait_s: float, marker: Path | None = None
) -> duckdb.DuckDBPyConnection:
    """Open the file (creating its folder for writing) with the session time zone set to UTC,
    waiting up to ``lock_wait_s`` seconds while another process holds it (and asking it for
    the file through ``marker``)."""
    if isinstance(path, Path):
        if read_only and not path.exists():
            raise WarehouseNotFoundError(f"no warehouse at {path}")
        if not read_only:
            path.parent.mkdir(parents=True, exist_ok=True)
    # an in-memory database cannot be opened read-only; the base still refuses writes
    file_read_only = read_only and isinstance(path, Path)
    config, statements = (_READER, _LOCK_DOWN) if file_read_only else ({}, SESSION)
    if isinstance(path, Path) and not read_only:
        statements = (*statements, f"SET memory_limit = '{WRITER_MEMORY_LIMIT}'")
    deadline = time.monotonic() + lock_wait_s
    backoff, asked = _FIRST_BACKOFF_S, False
    while True:
        try:
            con = duckdb.connect(str(path), read_only=file_read_only, config=dict(config))
        except duckdb.Error as exc:
            holder = _holder(exc)
            if holder is None:
                raise TerminalError(f"cannot open the DuckDB warehouse at {path}: {exc}") from exc
            if time.monotonic() + backoff > deadline:
                take_request(marker if asked else None)  # no request outlives its asker
                raise TransientError(
                    f"the warehouse at {path} is in use by another process{holder}; waited "
                    f"{lock_wait_s:g} s, try again when it has finished"
                ) from exc
            _ask_for(marker)
            asked = True
        else:
            if asked:
                take_request(marker)
            if file_read_only:
                with _LOCKING_DOWN:
                    if not _locked(con):  # else another reader locked it down
                        _execute(con, statements)
            else:
                _execute(con, statements)
            return con
        time.sleep(backoff)
        backoff = min(backoff * 2, _MAX_BACKOFF_S)


def _execute(con: duckdb.DuckDBPyConnection, statements: tuple[str, ...]) -> None:
    for statement in statements:
        con.execute(statement)


def _locked(con: duckdb.DuckDBPyConnection) -> bool:
    """True when the database this connection shares is locked down already."""
    rows = con.execute("SELECT current_setting('lock_configuration')").fetchall()
    return bool(rows and rows[0][0])


def _holder(exc: duckdb.Error) -> str | None:
    """`` (PID n)`` (or ``""``) when ``exc`` says another connection holds the file, else None.

    Another process holds a file lock; a connection of this process with another
    configuration (a writer while a reader opens) is the same wait.
    """
    message = str(exc)
    if isinstance(exc, duckdb.IOException) and "lock" in message.lower():
        pid = re.search(r"PID \d+", message)
        return f" ({pid.group(0)})" if pid else ""
    if "different configuration" in message:
        return ""
    return None
