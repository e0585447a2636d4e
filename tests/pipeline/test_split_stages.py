"""A run split into one process per stage ends with the same lake and warehouse as one run.

In one process the stages hand over what they wrote in memory; a stage run alone reads the
lake. Small buckets make both paths work bucket by bucket.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from deltalake import DeltaTable

from marketlake.runspec import STAGE_NAMES
from tests.pipeline.cli import VOLATILE_COLUMNS, marketlake, sql_json, warehouse_snapshot

SYMBOLS = "AAPL,MSFT,NVDA,TSLA,JPM"
RANGE = ("--start", "2021-01-04", "--end", "2023-12-29")
LAKE_TABLES = (
    "curated/bars_1d",
    "curated/corporate_actions",
    "analytics/adjustment_factors",
    "analytics/daily_metrics",
    "analytics/indicators_1d",
    "quality/missing_sessions",
    "quality/fetch_log",
)
SMALL_BUCKETS = {"MARKETLAKE_RUNNER__BUCKET_ROWS": "1000"}  # about two symbols a bucket


def _value(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def lake_snapshot(home: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every batch lake table's rows, sorted, without load-time or run-specific columns."""
    snapshot = {}
    for name in LAKE_TABLES:
        path = home / "lake" / name
        if not path.exists():
            snapshot[name] = []
            continue
        table = DeltaTable(str(path)).to_pyarrow_dataset().to_table()
        columns = [
            c
            for c in sorted(table.column_names)
            if c not in VOLATILE_COLUMNS and c not in ("run_id", "requested_at")
        ]
        rows = zip(*(table.column(c).to_pylist() for c in columns), strict=True)
        snapshot[name] = sorted((tuple(_value(v) for v in row) for row in rows), key=repr)
    return snapshot


@pytest.fixture(scope="module")
def homes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    whole = tmp_path_factory.mktemp("whole") / "home"
    proc = marketlake("run", "--home", str(whole), "--symbols", SYMBOLS, *RANGE, env=SMALL_BUCKETS)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    split = tmp_path_factory.mktemp("split") / "home"
    plan = marketlake("run", "--home", str(split), "--symbols", SYMBOLS, *RANGE, "--plan")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    run_id = plan.stdout.strip().splitlines()[-1]
    for stage in STAGE_NAMES:
        proc = marketlake(
            "run", "--home", str(split), "--run-id", run_id, "--stage", stage, env=SMALL_BUCKETS
        )
        assert proc.returncode == 0, f"{stage}: {proc.stdout}{proc.stderr}"
    return whole, split


def test_split_run_gives_the_same_lake(homes: tuple[Path, Path]) -> None:
    whole, split = homes
    expected = lake_snapshot(whole)
    assert expected["curated/bars_1d"] and expected["analytics/indicators_1d"]
    assert lake_snapshot(split) == expected


def test_split_run_gives_the_same_warehouse(homes: tuple[Path, Path]) -> None:
    whole, split = homes
    expected = warehouse_snapshot(whole)
    assert expected["bars_1d"] and expected["daily_metrics"]
    assert warehouse_snapshot(split) == expected


def test_results_do_not_depend_on_the_bucket_size(homes: tuple[Path, Path], tmp_path: Path) -> None:
    whole, _ = homes
    one_bucket = tmp_path / "home"
    proc = marketlake("run", "--home", str(one_bucket), "--symbols", SYMBOLS, *RANGE)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert lake_snapshot(one_bucket) == lake_snapshot(whole)
    assert warehouse_snapshot(one_bucket) == warehouse_snapshot(whole)


def test_each_stage_process_records_its_stage_of_the_run(homes: tuple[Path, Path]) -> None:
    _, split = homes
    spec = next((split / "lake" / "_runs").glob("*.json"))
    runs = sql_json(split, "SELECT run_id, stage, status FROM runs ORDER BY started_at")
    assert [(r["run_id"], r["stage"], r["status"]) for r in runs] == [
        (spec.stem, stage, "succeeded") for stage in STAGE_NAMES
    ]


def test_a_stage_ahead_of_its_turn_is_refused_and_not_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Run alone ahead of its turn, a stage would find nothing to work on and succeed with no
    rows (``success`` would pass a run that fetched nothing): it is refused, by the command
    and by the orchestrator's stage process alike, naming the stage to run first."""
    from marketlake.airflow.stage import EXIT_TERMINAL
    from marketlake.airflow.stage import main as stage_process

    home = tmp_path / "home"
    plan = marketlake("run", "--home", str(home), "--symbols", "AAPL", *RANGE, "--plan")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    run_id = plan.stdout.strip().splitlines()[-1]

    def stage(name: str) -> Any:
        return marketlake("run", "--home", str(home), "--run-id", run_id, "--stage", name)

    for name in ("process", "success"):
        proc = stage(name)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert proc.stderr == (
            f"error: {name} of run {run_id} runs after fetch_history, which has not run: run "
            f"`marketlake run --run-id {run_id} --stage fetch_history` first\n"
        )
    fetched = stage("fetch_history")
    assert fetched.returncode == 0, fetched.stdout + fetched.stderr
    assert "runs after consume_history, which has not run" in stage("load_warehouse").stderr

    monkeypatch.setenv("MARKETLAKE_HOME", str(home))
    assert stage_process(["--run-id", run_id, "--stage", "process"]) == EXIT_TERMINAL
    assert "process of run " + run_id + " runs after consume_history" in capsys.readouterr().err
    runs = sql_json(home, "SELECT stage, status FROM runs")
    assert [(r["stage"], r["status"]) for r in runs] == [("fetch_history", "succeeded")]
    for name in STAGE_NAMES[1:]:
        proc = stage(name)
        assert proc.returncode == 0, f"{name}: {proc.stdout}{proc.stderr}"
