"""The runner's retries: each attempt of a stage is recorded in ``runs``, then its outcome."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pyarrow as pa
import pytest

from marketlake.errors import SourceError, TransientError
from marketlake.pipeline import runner
from marketlake.pipeline.result import StageResult
from marketlake.pipeline.run_log import abandon_dead_stages, stage_row
from marketlake.settings import RunnerSettings
from marketlake.warehouse.duckdb import DuckDBWarehouse


class RecordingWarehouse:
    """Keeps every row the runner writes to ``runs``, in order."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def upsert(self, table: str, data: pa.Table) -> int:
        assert table == "runs"
        self.rows += data.to_pylist()
        return data.num_rows


def context(retries: int) -> Any:
    settings = SimpleNamespace(runner=RunnerSettings(retries=retries, backoff_s=0.5))
    return SimpleNamespace(settings=settings, run_id="r1", warehouse=RecordingWarehouse())


def flaky(failures: int, error: Exception) -> runner.Stage:
    calls = [0]

    def stage(ctx: Any) -> StageResult:
        calls[0] += 1
        if calls[0] <= failures:
            raise error
        return StageResult(rows_in=1, rows_out=1)

    return stage


@pytest.fixture
def waits() -> list[float]:
    """The waits between attempts, recorded instead of slept."""
    return []


def run(
    monkeypatch: pytest.MonkeyPatch, stage: runner.Stage, retries: int, waits: list[float]
) -> tuple[runner.StageReport, list[tuple[str, int]]]:
    monkeypatch.setattr(runner, "STAGES", (("flaky", stage),))
    ctx = context(retries)
    report = runner.run_stage(ctx, "flaky", sleep=waits.append)
    return report, [(row["status"], row["attempt"]) for row in ctx.warehouse.rows]


def test_a_transient_failure_is_retried_and_every_attempt_recorded(
    monkeypatch: pytest.MonkeyPatch, waits: list[float]
) -> None:
    report, statuses = run(monkeypatch, flaky(2, TransientError("busy")), 3, waits)
    assert report.status == "succeeded" and report.attempts == 3
    assert statuses == [
        ("running", 1),
        ("retrying", 1),
        ("running", 2),
        ("retrying", 2),
        ("running", 3),
        ("succeeded", 3),
    ]
    assert waits == [0.5, 1.0]


def test_retries_are_bounded_and_the_stage_fails_with_the_last_error(
    monkeypatch: pytest.MonkeyPatch, waits: list[float]
) -> None:
    report, statuses = run(monkeypatch, flaky(10, TransientError("still busy")), 1, waits)
    assert report.status == "failed" and report.attempts == 2
    assert report.error == "still busy"
    assert statuses[-1] == ("failed", 2)
    assert waits == [0.5]


def test_a_terminal_failure_is_not_retried(
    monkeypatch: pytest.MonkeyPatch, waits: list[float]
) -> None:
    report, statuses = run(monkeypatch, flaky(1, SourceError("no such symbol")), 3, waits)
    assert report.status == "failed" and report.attempts == 1
    assert statuses == [("running", 1), ("failed", 1)]
    assert waits == []


@pytest.mark.parametrize(
    ("error", "retried_later", "status"),
    [
        (TransientError("busy"), True, "retrying"),
        (TransientError("busy"), False, "failed"),
        (SourceError("bad file"), True, "failed"),
    ],
)
def test_an_orchestrator_attempt_is_tried_once_under_its_number(
    monkeypatch: pytest.MonkeyPatch,
    waits: list[float],
    error: Exception,
    retried_later: bool,
    status: str,
) -> None:
    monkeypatch.setattr(runner, "STAGES", (("flaky", flaky(1, error)),))
    ctx = context(3)
    report = runner.run_stage(
        ctx, "flaky", sleep=waits.append, attempt=2, retried_later=retried_later
    )
    assert [(row["status"], row["attempt"]) for row in ctx.warehouse.rows] == [
        ("running", 2),
        (status, 2),
    ]
    assert report.transient == isinstance(error, TransientError)
    assert waits == []  # the orchestrator waits, not the stage
    finished = ctx.warehouse.rows[-1]["finished_at"]
    assert (finished is None) == (status == "retrying")


def test_a_stage_left_for_the_orchestrator_to_retry_is_not_abandoned(tmp_path: Path) -> None:
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    warehouse = DuckDBWarehouse(tmp_path / "w.duckdb")
    warehouse.ensure_tables()
    now = datetime.now(UTC)
    for stage, detail in (("fetch_history", {"retried_by": "orchestrator"}), ("process", {})):
        row = stage_row(
            "r1", stage, "retrying", 1, now, None, 0.0, StageResult(detail=detail), "busy"
        )
        # recorded by a process that has ended since
        data = row.to_pylist()[0]
        data["detail"] = json.dumps({**json.loads(data["detail"]), "pid": int(ended.stdout)})
        warehouse.upsert("runs", pa.Table.from_pylist([data], schema=row.schema))
    assert abandon_dead_stages(SimpleNamespace(warehouse=warehouse)) == 1
    statuses = warehouse.query("SELECT stage, status FROM runs ORDER BY stage").to_pylist()
    assert statuses == [
        {"stage": "fetch_history", "status": "retrying"},
        {"stage": "process", "status": "abandoned"},
    ]


def _stage_ok(ctx: Any) -> StageResult:
    return StageResult(rows_in=1, rows_out=1)


def _stage_interrupted(ctx: Any) -> StageResult:
    raise KeyboardInterrupt


def _stage_broken(ctx: Any) -> StageResult:
    raise ValueError("bug")


@pytest.mark.parametrize(
    ("last", "raised", "status"),
    [
        (_stage_interrupted, KeyboardInterrupt, "running"),
        (_stage_broken, ValueError, "failed"),
        (flaky(5, SourceError("gone")), None, "failed"),
        (_stage_ok, None, "succeeded"),
    ],
)
def test_every_stage_row_reaches_the_runs_table_however_the_run_ends(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    last: runner.Stage,
    raised: type[BaseException] | None,
    status: str,
) -> None:
    """The runner writes a succeeded stage's row together with the next stage's first row:
    an interrupt, a bug or a failure in the next stage still leaves both rows written."""
    monkeypatch.setattr(runner, "STAGES", (("one", _stage_ok), ("two", _stage_ok), ("last", last)))
    warehouse = DuckDBWarehouse(tmp_path / "w.duckdb")
    warehouse.ensure_tables()
    ctx = context(0)
    ctx.warehouse = warehouse
    run = runner.Runner(ctx, ["one", "two", "last"], sleep=lambda _: None)
    if raised is None:
        run.run()
    else:
        with pytest.raises(raised):
            run.run()
    rows = warehouse.query("SELECT stage, status FROM runs ORDER BY started_at, stage")
    assert {row["stage"]: row["status"] for row in rows.to_pylist()} == {
        "one": "succeeded",
        "two": "succeeded",
        "last": status,
    }
