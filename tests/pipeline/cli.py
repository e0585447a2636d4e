"""Run the ``marketlake`` command as a user would: in this process, or in a subprocess.

:func:`marketlake` calls the command (``marketlake.cli.app:main``) with the arguments in
``sys.argv``, as ``python -m marketlake`` does (less the quick exit of its process, see
``marketlake.cli.process``), and captures what it writes to
file descriptors 1 and 2 (so output of native libraries is captured too). It spares the
interpreter start and imports of a new process (about 1 s each). Use
:func:`marketlake_process` where a process must die, run concurrently, or start afresh
(imports, a Spark driver, librdkafka threads).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import math
import os
import signal
import subprocess
import sys
import tempfile
import traceback
import types
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb

from marketlake.cli.app import main

# What ``python -m marketlake`` puts in ``sys.argv[0]``.
_PACKAGE_MAIN = Path(sys.modules["marketlake"].__file__ or "").with_name("__main__.py")
# What a fresh interpreter's ``warnings.filters`` holds (Python's defaults).
_DEFAULT_WARNING_FILTERS = (
    ("default", DeprecationWarning, "__main__"),
    ("ignore", DeprecationWarning, None),
    ("ignore", PendingDeprecationWarning, None),
    ("ignore", ImportWarning, None),
    ("ignore", ResourceWarning, None),
)


def marketlake_process(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m marketlake ARGS`` in a new process and return the finished process."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "marketlake", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        check=False,
    )


def marketlake(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``marketlake ARGS`` through its entry point in this process, with ``env`` added to
    the environment; return what it wrote to stdout and stderr and its exit code.

    As in a new process: ``sys.argv`` names ``python -m marketlake``, warnings and log records
    go to stderr under Python's default filters, an escaping exception prints its traceback
    and exits 1. The environment, signal handlers and import hooks are restored afterwards;
    unlike a new process, pandas is already imported (see :func:`_process_state`).
    """
    importlib.import_module("pandas")  # see _process_state
    with _captured_output() as captured, _process_state(env or {}):
        code = _run_main(list(args))
    return subprocess.CompletedProcess(
        ["marketlake", *args], code, captured.stdout, captured.stderr
    )


def _run_main(args: list[str]) -> int:
    """``main()`` with ``args`` as a ``python -m marketlake`` process gets them; its exit code."""
    sys.argv = [str(_PACKAGE_MAIN), *args]
    try:
        main()
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)
        return 1
    except Exception:
        traceback.print_exc(file=sys.stderr)
        return 1
    return 0


class _Captured:
    """What file descriptors 1 and 2 received while the context was open, as text."""

    stdout = ""
    stderr = ""


@contextlib.contextmanager
def _captured_output() -> Iterator[_Captured]:
    """Point file descriptors 1 and 2, and ``sys.stdout``/``sys.stderr``, at temporary files;
    the yielded object holds what they received once the context is left."""
    captured = _Captured()
    files = [tempfile.TemporaryFile(), tempfile.TemporaryFile()]  # noqa: SIM115 - closed below
    streams = sys.stdout, sys.stderr
    for stream in streams:
        stream.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        os.dup2(files[0].fileno(), 1)
        os.dup2(files[1].fileno(), 2)
        sys.stdout = open(1, "w", encoding="utf-8", buffering=1, closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", encoding="utf-8", buffering=1, closefd=False)  # noqa: SIM115
        yield captured
    finally:
        sys.stdout.close()
        sys.stderr.close()
        sys.stdout, sys.stderr = streams
        for fd, old in zip((1, 2), saved, strict=True):
            os.dup2(old, fd)
            os.close(old)
        texts = []
        for file in files:
            file.seek(0)
            texts.append(file.read().decode("utf-8", errors="replace"))
            file.close()
        captured.stdout, captured.stderr = texts


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """Write a warning to ``sys.stderr``, as a new interpreter does."""
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


@contextlib.contextmanager
def _process_state(env: dict[str, str]) -> Iterator[None]:
    """The environment plus ``env``, a ``__main__`` as under ``python -m marketlake``, Python's
    default warning filters and no log handlers (records go to stderr); all restored after.

    pandas is imported beforehand, so the command's import hook that keeps pandas off its path
    (:mod:`marketlake.pandas_probe`) stays off: in a process that goes on, an import it declined
    could leave pandas half imported. ``tests/pipeline/test_startup.py`` checks the hook in a
    process of its own.
    """
    environ = dict(os.environ)
    argv = sys.argv
    main_module = sys.modules["__main__"]
    meta_path = list(sys.meta_path)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    root = logging.getLogger()
    root_handlers, root_level = list(root.handlers), root.level
    fake_main = types.ModuleType("__main__")
    fake_main.__package__ = "marketlake"
    try:
        with warnings.catch_warnings():
            warnings.resetwarnings()
            for action, category, module in reversed(_DEFAULT_WARNING_FILTERS):
                warnings.filterwarnings(action, category=category, module=module or "")
            os.environ.update(env)
            # -W options from PYTHONWARNINGS, which a new interpreter applies over the defaults
            options = os.environ.get("PYTHONWARNINGS", "")
            warnings._processoptions([o for o in options.split(",") if o])  # type: ignore[attr-defined]
            warnings.showwarning = _show_warning
            sys.modules["__main__"] = fake_main
            root.handlers, root.level = [], logging.WARNING
            yield
    finally:
        root.handlers, root.level = root_handlers, root_level
        sys.modules["__main__"] = main_module
        sys.argv = argv
        sys.meta_path[:] = meta_path
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        for name in set(os.environ) - set(environ):
            del os.environ[name]
        os.environ.update(environ)


def sql_json(home: Path, query: str) -> list[dict[str, Any]]:
    """Query the warehouse under ``home`` through ``marketlake sql --format json``."""
    proc = marketlake("sql", query, "--home", str(home), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    rows: list[dict[str, Any]] = json.loads(proc.stdout)
    return rows


TABLE_KEYS = {
    "bars_1d": ("symbol", "ts"),
    "corporate_actions": ("symbol", "ex_date", "kind"),
    "bars_1d_adjusted": ("symbol", "ts"),
    "daily_metrics": ("symbol", "ts"),
    "indicators_1d": ("symbol", "ts"),
    "quarantine": ("dataset", "record_id", "rule"),
}
VOLATILE_COLUMNS = {"ingested_at", "quarantined_at", "detected_at"}


def _nan_to_none(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def warehouse_snapshot(home: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every loaded table's rows, sorted by key, without load-time columns."""
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        snapshot = {}
        for table, keys in TABLE_KEYS.items():
            columns = [
                row[0]
                for row in con.execute(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_name = ? ORDER BY ordinal_position",
                    [table],
                ).fetchall()
                if row[0] not in VOLATILE_COLUMNS
            ]
            order = ", ".join(keys)
            rows = con.execute(
                f"SELECT {', '.join(columns)} FROM {table} ORDER BY {order}"
            ).fetchall()
            snapshot[table] = [tuple(_nan_to_none(v) for v in row) for row in rows]
        return snapshot
    finally:
        con.close()
