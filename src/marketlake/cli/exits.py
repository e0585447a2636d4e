"""Exit codes of ``marketlake`` and the one way its commands report an error.

Every command ends with one of :class:`ExitCode`; an error is one line on stderr starting with
:data:`ERROR_PREFIX`, whatever raised it (a bad option, a marketlake error, the system), and is
printed even with ``--quiet``. The table is in the README.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from enum import IntEnum
from typing import Any, NoReturn

import typer
from typer.core import TyperGroup

from marketlake.errors import MarketlakeError

ERROR_PREFIX = "error: "


def _click_exceptions() -> Any:
    """The exceptions of the Click that Typer runs on (newer Typers carry their own copy)."""
    try:
        return importlib.import_module("typer._click.exceptions")
    except ModuleNotFoundError:
        return importlib.import_module("click.exceptions")


click = _click_exceptions()


class ExitCode(IntEnum):
    """What a ``marketlake`` process's exit status means."""

    OK = 0  # done
    FAILED = 1  # the work ran and failed: a stage of the run, a doctor check
    ERROR = 2  # stopped with an error line: a usage mistake, bad configuration, a failed query
    INTERRUPTED = 130  # stopped by Ctrl-C (SIGINT)


def report_error(message: str) -> None:
    """Print ``message`` as the command's one error line on stderr."""
    line = " ".join(message.split()) if "\n" in message else message
    print(f"{ERROR_PREFIX}{line}", file=sys.stderr, flush=True)


class MarketlakeGroup(TyperGroup):
    """The command group: runs a command and turns whatever stops it into an exit code, with
    one error line for usage mistakes (instead of Click's boxed usage text), marketlake errors
    and system errors (a full disk, a folder without permission)."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        """Run the command line; exit with an :class:`ExitCode` (return it when not
        ``standalone_mode``)."""
        try:
            result = super().main(
                args,
                prog_name,
                complete_var,
                standalone_mode=False,
                windows_expand_args=windows_expand_args,
                **extra,
            )
            code = result if isinstance(result, int) else ExitCode.OK
            if code == ExitCode.INTERRUPTED:  # Typer's ending for Ctrl-C
                report_error("interrupted")
        except click.NoArgsIsHelpError as exc:  # the command alone: its help, as asked
            print(exc.format_message())
            code = ExitCode.ERROR
        except click.UsageError as exc:
            command = exc.ctx.command_path if exc.ctx is not None else "marketlake"
            report_error(f"{exc.format_message().rstrip('.')}; see `{command} --help`")
            code = ExitCode.ERROR
        except typer.Abort:
            report_error("interrupted")
            code = ExitCode.INTERRUPTED
        except click.ClickException as exc:
            report_error(exc.format_message())
            code = ExitCode.ERROR
        except MarketlakeError as exc:
            report_error(str(exc))
            code = ExitCode.ERROR
        except OSError as exc:
            report_error(_os_error(exc))
            code = ExitCode.ERROR
        if not standalone_mode:
            return int(code)
        _exit(int(code))


def _os_error(exc: OSError) -> str:
    if exc.filename is not None and exc.strerror:
        return f"{exc.strerror}: {exc.filename}"
    return str(exc) or type(exc).__name__


def _exit(code: int) -> NoReturn:
    sys.exit(code)
