"""The ``marketlake`` process: run the command, then end the process without a teardown.

Once a command has finished and the interpreter's exit handlers have run (non-daemon threads
joined, thread pools shut down, logging flushed), CPython still destroys every module and
object and the native libraries run their destructors: 60-130 ms for the libraries a batch
run loads (the whole of which is done by then: lake commits, bus appends and warehouse
transactions are durable when they return, and the warehouse is closed). The process ends
right after the last exit handler instead, with the command's exit status. Only the
command-line process does this; :func:`marketlake.cli.app.main` called in a process of its
own (tests, embedding) returns or raises as usual.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys

_INTERRUPTED = 130  # the status of a process stopped by Ctrl-C


def main() -> None:
    """The ``marketlake`` command and ``python -m marketlake``."""
    status = 1  # a crash: Python prints the traceback and exits with status 1

    def leave() -> None:
        for stream in (sys.stdout, sys.stderr):
            # a closed pipe or stream: nothing is left to say
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os._exit(status)

    # the first exit handler registered runs last, after those of every library
    atexit.register(leave)
    from marketlake.cli.app import main as command

    try:
        command()
        status = 0
    except SystemExit as exc:
        status = _status(exc.code)
        raise
    except KeyboardInterrupt:
        status = _INTERRUPTED
        raise


def _status(code: object) -> int:
    """The exit status ``sys.exit(code)`` gives: None is 0, a message (printed) is 1."""
    if code is None:
        return 0
    return code if isinstance(code, int) else 1
