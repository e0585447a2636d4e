"""A run that crosses processes: planning, resuming, and the mistakes a user can make.

That five stage processes equal one run is in ``test_split_stages.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.pipeline.cli import marketlake, marketlake_process, sql_json

ARGS = ["--start", "2023-06-01", "--end", "2024-05-31", "--symbols", "AAPL,MSFT,TSLA"]


def plan(home: Path, *args: str) -> str:
    """Plan a run under ``home`` and return its id."""
    proc = marketlake("run", "--plan", "--home", str(home), *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run_id = proc.stdout.strip()
    assert run_id and "\n" not in run_id
    return run_id


def test_the_first_stage_of_a_new_run_id_plans_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = marketlake(
        "run",
        "--home",
        str(home),
        "--stage",
        "fetch_history",
        "--run-id",
        "daily-2024-05-31",
        *ARGS,
    )
    assert first.returncode == 0, first.stdout + first.stderr
    spec = json.loads((home / "lake" / "_runs" / "daily-2024-05-31.json").read_text())
    assert spec["symbols"] == ["AAPL", "MSFT", "TSLA"]
    assert (spec["start"], spec["end"]) == ("2023-06-01", "2024-05-31")
    # Later stages take the stored spec: no need (and no right) to repeat the options.
    second = marketlake(
        "run", "--home", str(home), "--stage", "consume_history", "--run-id", "daily-2024-05-31"
    )
    assert second.returncode == 0, second.stdout + second.stderr
    changed = marketlake(
        "run",
        "--home",
        str(home),
        "--stage",
        "process",
        "--run-id",
        "daily-2024-05-31",
        "--symbols",
        "NVDA",
    )
    assert changed.returncode == 2
    assert "already planned" in changed.stderr and "--symbols" in changed.stderr


def test_a_run_id_resumes_the_planned_run_whole(tmp_path: Path) -> None:
    home = tmp_path / "home"
    run_id = plan(home, *ARGS)
    proc = marketlake("run", "--home", str(home), "--run-id", run_id, "--quiet")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    stages = sql_json(home, "SELECT DISTINCT run_id FROM runs")
    assert stages == [{"run_id": run_id}]
    bars = sql_json(home, "SELECT count(*) AS n, min(ts) AS first FROM bars_1d")
    assert bars[0]["n"] > 700 and bars[0]["first"].startswith("2023-06-01")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--stage", "process"], "--run-id"),
        (["--stage", "transform", "--run-id", "x"], "fetch_history, consume_history"),
        (["--stage", "process", "--run-id", "never-planned"], "not planned"),
        (["--stage", "fetch_history", "--run-id", "r1", "--bus", "memory://m"], "one process"),
        (["--plan", "--bus", "memory://m"], "one process"),
        (["--stage", "process", "--run-id", "../../etc"], "invalid run id"),
    ],
)
def test_stage_mistakes_get_one_clear_line(tmp_path: Path, args: list[str], message: str) -> None:
    proc = marketlake("run", "--home", str(tmp_path / "home"), *args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert message in lines[0]


def test_python_dash_m_is_the_command(tmp_path: Path) -> None:
    proc = marketlake_process("run", "--help")
    assert proc.returncode == 0
    for option in ("--stage", "--run-id", "--plan"):
        assert option in proc.stdout
