"""The ``marketlake`` process ends right after its exit handlers, without the interpreter's
teardown: its exit status, its output and what it wrote are those of the command."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from deltalake import DeltaTable

from marketlake import __version__
from marketlake.cli.exits import ERROR_PREFIX, ExitCode
from tests.pipeline.cli import marketlake_process as process


@pytest.mark.parametrize(
    ("args", "status", "stdout", "stderr"),
    [
        (["--version"], ExitCode.OK, f"marketlake {__version__}\n", ""),
        (["run", "--start", "2024-13-01"], ExitCode.ERROR, "", f"{ERROR_PREFIX}Invalid value"),
        (["sql"], ExitCode.ERROR, "", f"{ERROR_PREFIX}Missing argument"),
    ],
)
def test_the_process_ends_with_the_commands_status_and_output(
    args: list[str], status: int, stdout: str, stderr: str
) -> None:
    done = process(*args)
    assert done.returncode == status
    assert done.stdout == stdout
    assert done.stderr.startswith(stderr) and done.stderr.count("\n") == (1 if stderr else 0)


def test_a_failed_run_ends_the_process_with_status_1(tmp_path: Path) -> None:
    done = process(
        "run", "-q", "--home", str(tmp_path / "home"), "--symbols", "AAPL",
        "--bus", "kafka://127.0.0.1:1", "--start", "2024-01-02", "--end", "2024-01-31",
        env={"MARKETLAKE_RUNNER__RETRIES": "0"},
    )  # fmt: skip
    assert done.returncode == ExitCode.FAILED == 1
    assert (
        done.stderr.startswith(f"{ERROR_PREFIX}run ") and "failed at fetch_history" in done.stderr
    )


def test_what_a_run_wrote_is_whole_once_its_process_has_ended(tmp_path: Path) -> None:
    """The teardown the process skips holds nothing a run needs: the warehouse file opens
    read-only with every bar the lake holds, and a second run finds everything in place."""
    home = tmp_path / "home"
    args = ("run", "--home", str(home), "--symbols", "AAPL,MSFT", "--start", "2023-01-03",
            "--end", "2023-12-29")  # fmt: skip
    first = process(*args)
    assert first.returncode == 0, first.stderr
    assert "success         succeeded" in first.stdout  # the summary was flushed whole
    lake_rows = DeltaTable(str(home / "lake" / "curated" / "bars_1d")).to_pyarrow_table().num_rows
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        (stored,) = con.execute("SELECT count(*) FROM bars_1d").fetchone() or (0,)
        (statuses,) = con.execute("SELECT list(DISTINCT status) FROM runs").fetchone() or ([],)
    assert stored == lake_rows == 2 * 250
    assert statuses == ["succeeded"]
    again = process(*args)
    assert again.returncode == 0, again.stderr
    assert "0 symbols fetched (0 sessions), 2 up to date" in again.stdout
