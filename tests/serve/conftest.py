"""A real warehouse for the serving tests, made once per session by the real commands.

``marketlake run`` loads two simulated symbols for 2024 and a small CSV of a third symbol
with one broken row and one missing session (so the quality endpoint has findings), then
``marketlake stream`` adds 1-minute bars, windows and a stream status file.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from marketlake.serve.app import ServeOptions, create_app

ARTIFACTS = Path(__file__).resolve().parents[2] / "tmp" / "artifacts"
SYMBOLS = ("AAPL", "MSFT")
CSV_SYMBOL = "IBM"
# IBM, 2024-03-01 to 2024-03-14: 2024-03-07 is left out, 2024-03-12 has high below low
IBM_CSV = """Date,Open,High,Low,Close,Adj Close,Volume
2024-03-01,185.5,188.4,184.9,187.9,187.9,4500000
2024-03-04,188.0,189.9,187.1,188.6,188.6,3900000
2024-03-05,188.2,191.0,187.0,190.1,190.1,4100000
2024-03-06,190.0,193.1,189.5,192.8,192.8,4700000
2024-03-08,193.0,196.2,192.4,195.9,195.9,5200000
2024-03-11,195.5,196.0,191.2,191.7,191.7,4800000
2024-03-12,191.0,187.0,193.5,192.2,192.2,4400000
2024-03-13,192.5,194.8,191.8,194.1,194.1,4000000
2024-03-14,194.0,195.5,192.3,193.0,193.0,3700000
"""


@dataclass(frozen=True)
class Served:
    """A home folder whose warehouse the real commands loaded."""

    home: Path
    env: dict[str, str]

    @property
    def warehouse_url(self) -> str:
        return f"duckdb://{self.home / 'warehouse.duckdb'}"

    def options(self, token: str | None = None) -> ServeOptions:
        return ServeOptions(self.warehouse_url, self.home, token)


def marketlake(env: dict[str, str], *args: str, timeout: float = 300) -> str:
    """Run the real command line; fail with its output when it fails."""
    proc = subprocess.run(
        [sys.executable, "-m", "marketlake", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, (
        f"marketlake {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    )
    return proc.stdout


def command_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of a command run by these tests (no MARKETLAKE_* of the caller)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETLAKE_")}
    env["MARKETLAKE_CACHE_DIR"] = str(tmp_path_factory.getbasetemp() / "calendar-cache")
    src = str(Path(__file__).resolve().parents[2] / "src")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    return env


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Served:
    """A home loaded by ``marketlake run`` (sim and CSV) and ``marketlake stream``."""
    home = tmp_path_factory.mktemp("served") / "home"
    env = command_env(tmp_path_factory)
    marketlake(
        env,
        "run",
        "--home",
        str(home),
        "--symbols",
        ",".join(SYMBOLS),
        "--start",
        "2024-01-02",
        "--end",
        "2024-12-31",
        "-q",
    )
    csv = home.parent / f"{CSV_SYMBOL}.csv"
    csv.write_text(IBM_CSV)
    marketlake(env, "run", "--home", str(home), "--source", "csv", "--path", str(csv), "-q")
    marketlake(
        env,
        "stream",
        "--home",
        str(home),
        "--symbols",
        ",".join(SYMBOLS),
        "--count",
        "6000",
        "--event-rate",
        "2",
        "-q",
    )
    return Served(home, env)


@pytest.fixture(scope="session")
def client(served: Served) -> Iterator[TestClient]:
    """The application on the served warehouse, called in process."""
    with TestClient(create_app(served.options())) as test_client:
        yield test_client


_SAVED: list[Path] = []


def keep_artifact(path: Path) -> None:
    """Name ``path`` in the session's closing summary."""
    _SAVED.append(path)


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    """List the screenshots and other artifacts the tests kept."""
    if _SAVED:
        terminalreporter.write_sep("-", "serve test artifacts")
        for path in _SAVED:
            terminalreporter.write_line(str(path))
