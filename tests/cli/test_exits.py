"""Exit codes and error lines of ``marketlake``: one ``error:`` line on stderr, the code of the
README's table, for every kind of ending (run in-process through Typer's runner)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from marketlake import __version__
from marketlake.cli.app import app
from marketlake.cli.exits import ERROR_PREFIX, ExitCode

RANGE = ("--start", "2024-01-02", "--end", "2024-01-31")


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run ``marketlake ARGS``; its exit code, stdout and stderr."""
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def error_line(stderr: str) -> str:
    """The one line a command that stopped with an error printed on stderr."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(ERROR_PREFIX), stderr
    return lines[0]


def test_version_prints_the_package_version() -> None:
    code, out, err = invoke("--version")
    assert (code, out, err) == (ExitCode.OK, f"marketlake {__version__}\n", "")


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["run", "--no-such-option"], "No such option: --no-such-option"),
        (["sql"], "Missing argument 'QUERY'"),
        (["no-such-command"], "No such command 'no-such-command'"),
        (["run", "--start", "2024-13-01"], "Invalid value for '--start'"),
        (["stream", "produce", "--count", "many"], "Invalid value for '--count'"),
        (["lake", "tables", "--format", "xml"], "Invalid value for '--format'"),
    ],
)
def test_a_usage_mistake_is_one_line_and_exit_code_2(args: list[str], reason: str) -> None:
    code, out, err = invoke(*args)
    assert code == ExitCode.ERROR == 2
    line = error_line(err)
    assert reason.lower() in line.lower()
    assert line.endswith("--help`")  # where to look for the right usage
    assert out == ""


def test_a_marketlake_error_is_one_line_and_exit_code_2(tmp_path: Path) -> None:
    home = tmp_path / "home"
    code, out, err = invoke("sql", "SELECT 1", "--home", str(home))
    assert code == ExitCode.ERROR
    assert "no warehouse at" in error_line(err) and out == ""
    assert not home.exists()


def test_a_system_error_is_one_line_and_exit_code_2(tmp_path: Path) -> None:
    config = tmp_path / "folder.toml"
    config.mkdir()
    code, _, err = invoke("doctor", "--config", str(config))
    assert code == ExitCode.ERROR
    assert str(config) in error_line(err)


def test_a_failed_run_prints_its_error_even_when_quiet(home: Path) -> None:
    bus = "kafka://127.0.0.1:1"  # nothing listens there
    env = {"MARKETLAKE_RUNNER__RETRIES": "0"}
    code, out, err = invoke(
        "run", "-q", "--home", str(home), "--symbols", "AAPL", "--bus", bus, *RANGE, env=env
    )
    assert code == ExitCode.FAILED == 1
    assert out == ""  # no summary
    line = error_line(err)
    assert line.startswith(f"{ERROR_PREFIX}run ") and "failed at fetch_history" in line
    assert "no Kafka broker answered at 127.0.0.1:1" in line


def test_ctrl_c_stops_a_run_with_exit_code_130_and_one_line(home: Path) -> None:
    run = subprocess.Popen(
        [sys.executable, "-m", "marketlake", "run", "--home", str(home), "--quiet",
         "--symbols", "AAPL,MSFT,NVDA,IBM", "--start", "2000-01-03", "--end", "2024-01-31"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        while not (home / "bus").exists() and run.poll() is None:  # the run has begun
            time.sleep(0.05)
        run.send_signal(signal.SIGINT)
        out, err = run.communicate(timeout=120)
    finally:
        run.kill()
    # CPython ends the process by SIGINT instead of the exit status when the interrupt was
    # raised inside Python code an extension ran through PyRun_* (as pyo3 modules do), even
    # once it was handled; a shell shows both endings as $? = 130
    assert run.returncode in (ExitCode.INTERRUPTED, -signal.SIGINT)
    assert ExitCode.INTERRUPTED == 128 + signal.SIGINT
    assert error_line(err) == f"{ERROR_PREFIX}interrupted" and out == ""
