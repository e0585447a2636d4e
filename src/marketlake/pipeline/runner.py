"""The built-in runner: stages in order, retries with backoff, each stage recorded in runs."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pyarrow as pa

from marketlake.catalogue import BARS_1D, RUNS
from marketlake.errors import ConfigError, MarketlakeError, TerminalError, TransientError
from marketlake.pipeline.context import RunContext
from marketlake.pipeline.ingest import consume_history, fetch_history
from marketlake.pipeline.load import load_warehouse
from marketlake.pipeline.process import process
from marketlake.pipeline.result import StageResult
from marketlake.pipeline.run_log import (
    ORCHESTRATOR,
    RETRY_KEY,
    abandon_dead_stages,
    require_earlier_stages,
    stage_row,
)
from marketlake.retry import Retry, RetryPolicy, call_with_retry
from marketlake.runspec import STAGE_NAMES

Stage = Callable[[RunContext], StageResult]


def success(ctx: RunContext) -> StageResult:
    """Check the warehouse holds exactly the lake's bars for the run's symbols."""
    symbols = ctx.symbols
    counts = ctx.handover.counts(BARS_1D, symbols)
    if counts is None:
        exists = ctx.tables.exists(BARS_1D)
        counts = ctx.tables.symbol_counts(BARS_1D, symbols) if exists else {}
    lake_rows = sum(counts.values())
    warehouse_rows = ctx.warehouse.count_rows(BARS_1D.name, symbols)
    if lake_rows != warehouse_rows:
        raise TerminalError(
            f"the warehouse holds {warehouse_rows} bars for the run's symbols, the lake {lake_rows}"
        )
    return StageResult(rows_in=lake_rows, rows_out=warehouse_rows)


STAGES: tuple[tuple[str, Stage], ...] = tuple(
    zip(
        STAGE_NAMES, (fetch_history, consume_history, process, load_warehouse, success), strict=True
    )
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
    transient: bool = False
    """True when the stage failed with a transient error (a later attempt may succeed)."""


@dataclass
class RunReport:
    """The outcome of a run."""

    run_id: str
    stages: list[StageReport]

    @property
    def succeeded(self) -> bool:
        """True when every stage succeeded."""
        return all(s.status == "succeeded" for s in self.stages)


def stage_names() -> list[str]:
    """The names of the batch stages, in order."""
    return [name for name, _ in STAGES]


def get_stage(name: str) -> Stage:
    """The stage called ``name``; ConfigError naming the stages otherwise."""
    for known, stage in STAGES:
        if known == name:
            return stage
    raise ConfigError(f"unknown stage {name!r}; stages: {', '.join(stage_names())}")


def run_stage(
    ctx: RunContext,
    name: str,
    sleep: Callable[[float], None] = time.sleep,
    *,
    attempt: int | None = None,
    retried_later: bool = False,
    log: RunLog | None = None,
) -> StageReport:
    """Run stage ``name`` of the run: retry transient errors with exponential backoff and
    record every attempt in the warehouse's ``runs`` table.

    Terminal errors end the stage as failed; an unexpected exception is recorded as failed
    and raised again. With ``attempt``, an orchestrator owns the retries: this call is that
    one attempt (numbered ``attempt`` in ``runs``), and a transient failure is recorded as
    ``retrying`` when ``retried_later`` (the orchestrator will try again), else as failed.
    With ``log``, a succeeded stage's last row is held there for the caller to write with
    the next row (:class:`RunLog`).
    """
    held = log is not None  # the caller writes the last row with its next one
    log = log if log is not None else RunLog(ctx)
    stage = get_stage(name)
    report = StageReport(name)
    settings = ctx.settings.runner
    policy = RetryPolicy(
        max_attempts=max(settings.retries, 0) + 1 if attempt is None else 1,
        backoff_s=settings.backoff_s,
        max_backoff_s=math.inf,
    )
    if attempt is not None:
        report.attempts = attempt - 1
    started = datetime.now(UTC)
    clock = time.perf_counter()

    def try_once() -> StageResult:
        report.attempts += 1
        log.record(report, "running", started, None)
        return stage(ctx)

    def retrying(retry: Retry) -> None:
        report.error = str(retry.error)
        log.record(report, "retrying", started, None)

    try:
        report.result = call_with_retry(
            policy, try_once, sleep=sleep, on_retry=retrying, give_up=lambda error, _: error
        )
        report.status = "succeeded"
    except MarketlakeError as exc:  # terminal, or transient with every retry spent
        report.error = str(exc)
        report.transient = isinstance(exc, TransientError)
        report.status = "retrying" if report.transient and retried_later else "failed"
        if report.status == "retrying":  # the next attempt is another process's, later
            report.result.detail[RETRY_KEY] = ORCHESTRATOR
    except Exception as exc:
        report.error = f"{type(exc).__name__}: {exc}"
        report.status = "failed"
        report.seconds = time.perf_counter() - clock
        log.record(report, "failed", started, datetime.now(UTC))
        raise
    report.seconds = time.perf_counter() - clock
    finished = None if report.status == "retrying" else datetime.now(UTC)
    log.record(report, report.status, started, finished, hold=held and report.status == "succeeded")
    return report


class RunLog:
    """Writes a run's ``runs`` rows; a row recorded with ``hold`` waits for the next row.

    The runner holds a succeeded stage's last row and writes it in one warehouse upsert
    with the next stage's ``running`` row, which follows at once: one transaction instead
    of two. :meth:`flush` writes a held row alone (the runner's ``finally``).
    """

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self._held: list[pa.Table] = []

    def record(
        self,
        report: StageReport,
        status: str,
        started: datetime,
        finished: datetime | None,
        *,
        hold: bool = False,
    ) -> None:
        """Write (or with ``hold``, keep for the next write) the stage's row as ``status``."""
        self._held.append(
            stage_row(
                self.ctx.run_id,
                report.name,
                status,
                report.attempts,
                started,
                finished,
                report.seconds,
                report.result,
                report.error,
            )
        )
        if not hold:
            self.flush()

    def flush(self) -> None:
        """Write the held rows, if any."""
        if self._held:
            self.ctx.warehouse.upsert(RUNS.name, pa.concat_tables(self._held))
            self._held = []


class Runner:
    """Runs the stages of one run in order, each through :func:`run_stage`."""

    def __init__(
        self,
        ctx: RunContext,
        stages: Sequence[str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.ctx = ctx
        self.stages = list(stages) if stages is not None else stage_names()
        for name in self.stages:
            get_stage(name)
        self._sleep = sleep

    def run(self) -> RunReport:
        """Mark stages of dead processes abandoned, then run every stage; stop at the first
        that fails for good. Stages run apart from the first need the stages ahead of them
        to have succeeded (:func:`require_earlier_stages`)."""
        abandon_dead_stages(self.ctx)
        require_earlier_stages(self.ctx, self.stages[0], stage_names())
        reports: list[StageReport] = []
        log = RunLog(self.ctx)
        try:
            for name in self.stages:
                report = run_stage(self.ctx, name, self._sleep, log=log)
                reports.append(report)
                if report.status != "succeeded":
                    break
        finally:
            log.flush()
        reports += [StageReport(name) for name in self.stages[len(reports) :]]
        return RunReport(self.ctx.run_id, reports)
