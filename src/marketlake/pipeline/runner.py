"""The built-in runner: stages in order, retries with backoff, each stage recorded in runs."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pyarrow as pa

from marketlake.errors import MarketlakeError, TransientError
from marketlake.pipeline.context import RunContext
from marketlake.pipeline.ingest import consume_history, fetch_history
from marketlake.pipeline.load import load_warehouse
from marketlake.pipeline.process import process
from marketlake.pipeline.result import StageResult
from marketlake.schemas import RUNS_SCHEMA

Stage = Callable[[RunContext], StageResult]


def success(ctx: RunContext) -> StageResult:
    """Check the warehouse holds exactly the lake's bars for the run's symbols."""
    from marketlake.errors import TerminalError
    from marketlake.pipeline.lake_names import BARS
    from marketlake.pipeline.process import symbol_filter

    symbols = ctx.symbols
    lake_rows = (
        ctx.tables.read(BARS, columns=["symbol"], filter=symbol_filter(symbols)).num_rows
        if ctx.tables.exists(BARS)
        else 0
    )
    placeholders = ", ".join("?" for _ in symbols)
    warehouse_rows = (
        ctx.warehouse.query(
            f"SELECT count(*) AS n FROM bars_1d WHERE symbol IN ({placeholders})", symbols
        )
        .column("n")[0]
        .as_py()
    )
    if lake_rows != warehouse_rows:
        raise TerminalError(
            f"the warehouse holds {warehouse_rows} bars for the run's symbols, the lake {lake_rows}"
        )
    return StageResult(rows_in=lake_rows, rows_out=warehouse_rows)


STAGES: tuple[tuple[str, Stage], ...] = (
    ("fetch_history", fetch_history),
    ("consume_history", consume_history),
    ("process", process),
    ("load_warehouse", load_warehouse),
    ("success", success),
)


@dataclass
class StageReport:
    """The outcome of one stage in one run."""

    name: str
    status: str = "pending"
    attempts: int = 0
    seconds: float = 0.0
    result: StageResult = field(default_factory=StageResult)
    error: str | None = None


@dataclass
class RunReport:
    """The outcome of a run."""

    run_id: str
    stages: list[StageReport]

    @property
    def succeeded(self) -> bool:
        """True when every stage succeeded."""
        return all(s.status == "succeeded" for s in self.stages)


class Runner:
    """Runs stages in order; retries transient errors; records every stage in ``runs``."""

    def __init__(
        self,
        ctx: RunContext,
        stages: Sequence[tuple[str, Stage]] = STAGES,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.ctx = ctx
        self.stages = list(stages)
        self._sleep = sleep

    def run(self) -> RunReport:
        """Run every stage; stop at the first that fails for good."""
        report = RunReport(self.ctx.run_id, [StageReport(name) for name, _ in self.stages])
        for (name, stage), stage_report in zip(self.stages, report.stages, strict=True):
            self._run_stage(name, stage, stage_report)
            if stage_report.status != "succeeded":
                break
        return report

    def _run_stage(self, name: str, stage: Stage, report: StageReport) -> None:
        settings = self.ctx.settings.runner
        started = datetime.now(UTC)
        clock = time.perf_counter()
        while True:
            report.attempts += 1
            self._record(name, "running", report, started, None)
            try:
                report.result = stage(self.ctx)
                report.status = "succeeded"
            except TransientError as exc:
                report.error = str(exc)
                if report.attempts > settings.retries:
                    report.status = "failed"
                else:
                    self._record(name, "retrying", report, started, None)
                    self._sleep(settings.backoff_s * 2 ** (report.attempts - 1))
                    continue
            except MarketlakeError as exc:
                report.error = str(exc)
                report.status = "failed"
            except Exception as exc:
                report.error = f"{type(exc).__name__}: {exc}"
                report.status = "failed"
                report.seconds = time.perf_counter() - clock
                self._record(name, "failed", report, started, datetime.now(UTC))
                raise
            break
        report.seconds = time.perf_counter() - clock
        self._record(name, report.status, report, started, datetime.now(UTC))

    def _record(
        self,
        stage: str,
        status: str,
        report: StageReport,
        started: datetime,
        finished: datetime | None,
    ) -> None:
        detail = dict(report.result.detail)
        if report.error:
            detail["error"] = report.error
        row = {
            "run_id": [self.ctx.run_id],
            "stage": [stage],
            "status": [status],
            "attempt": [report.attempts],
            "started_at": [started],
            "finished_at": [finished],
            "rows_in": [report.result.rows_in],
            "rows_out": [report.result.rows_out],
            "quarantined": [report.result.quarantined],
            "duration_s": [report.seconds],
            "detail": [json.dumps(detail, default=str, sort_keys=True)],
        }
        self.ctx.warehouse.upsert("runs", pa.table(row, schema=RUNS_SCHEMA))
