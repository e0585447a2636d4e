"""The ``runs`` table: one row per stage of each run, stages whose process died, and the
order of a run's stages when they run one at a time.

Every row a stage records names the process running it (``pid`` and ``host`` in ``detail``).
A stage left ``running`` or ``retrying`` by a process that no longer exists (killed, or its
machine rebooted) is marked ``abandoned`` by the next run started on the same host, so the
run log never shows a dead run as still going; a stage ``retrying`` under an orchestrator
(Airflow), whose process ends before the next attempt on purpose, is left as it is. Rows
recorded on another host are left alone: whether that process lives cannot be told from here.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from marketlake.catalogue import RUNS
from marketlake.errors import ConfigError

if TYPE_CHECKING:
    from marketlake.pipeline.context import RunContext
    from marketlake.pipeline.result import StageResult

ABANDONED = "abandoned"
UNFINISHED = ("running", "retrying")
RETRY_KEY = "retried_by"
"""``detail`` key of a ``retrying`` row whose next attempt an orchestrator starts later."""
ORCHESTRATOR = "orchestrator"


def stage_row(
    run_id: str,
    stage: str,
    status: str,
    attempt: int,
    started: datetime,
    finished: datetime | None,
    seconds: float,
    result: StageResult,
    error: str | None,
) -> pa.Table:
    """One ``runs`` row for a stage of run ``run_id``, naming this process in ``detail``."""
    detail: dict[str, Any] = dict(result.detail)
    if error:
        detail["error"] = error
    detail["pid"] = os.getpid()
    detail["host"] = socket.gethostname()
    row = {
        "run_id": [run_id],
        "stage": [stage],
        "status": [status],
        "attempt": [attempt],
        "started_at": [started],
        "finished_at": [finished],
        "rows_in": [result.rows_in],
        "rows_out": [result.rows_out],
        "quarantined": [result.quarantined],
        "duration_s": [seconds],
        "detail": [json.dumps(detail, default=str, sort_keys=True)],
    }
    return pa.table(row, schema=RUNS.schema)


def _process_alive(pid: int) -> bool:
    """True when process ``pid`` exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _abandoned(detail: dict[str, Any], host: str) -> bool:
    """True when the process a row names is gone (rows naming no process are from before
    rows named one: nothing can still be running them)."""
    if detail.get(RETRY_KEY) == ORCHESTRATOR:
        return False  # its process ended on purpose; the orchestrator runs the next attempt
    pid = detail.get("pid")
    if not isinstance(pid, int):
        return True
    if detail.get("host") != host:
        return False
    return pid != os.getpid() and not _process_alive(pid)


def abandon_dead_stages(ctx: RunContext) -> int:
    """Mark stages left running by processes that died as ``abandoned``; return how many."""
    warehouse = ctx.warehouse
    statuses = ", ".join(f"'{status}'" for status in UNFINISHED)
    unfinished = warehouse.query(
        f"SELECT * FROM {warehouse.quote(RUNS.name)} WHERE status IN ({statuses})"
    )
    if unfinished.num_rows == 0:
        return 0
    host = socket.gethostname()
    now = datetime.now(UTC)
    rows = []
    for row in unfinished.to_pylist():
        detail = json.loads(row["detail"] or "{}")
        if not _abandoned(detail, host):
            continue
        detail["error"] = (
            f"abandoned: the process that ran it (pid {detail.get('pid', 'unknown')} on "
            f"{detail.get('host', 'an unknown host')}) ended while the stage was {row['status']}"
        )
        row.update(
            status=ABANDONED,
            finished_at=row["finished_at"] or now,
            detail=json.dumps(detail, default=str, sort_keys=True),
        )
        rows.append(row)
    if rows:
        warehouse.upsert(RUNS.name, pa.Table.from_pylist(rows, schema=RUNS.schema))
    return len(rows)


def require_earlier_stages(ctx: RunContext, stage: str, order: Sequence[str]) -> None:
    """Refuse ``stage`` of a run run alone before every stage ahead of it in ``order`` (the
    run's stages, in order) has succeeded.

    A stage started by hand ahead of its turn would find nothing to work on and succeed with
    no rows (``success`` would pass a run that fetched nothing); the error names the first
    stage still to run and how to run it.
    """
    earlier = order[: order.index(stage)]
    if not earlier:
        return
    warehouse = ctx.warehouse
    mark = warehouse.capabilities.placeholder
    rows = warehouse.query(
        f"SELECT stage, status FROM {warehouse.quote(RUNS.name)} WHERE run_id = {mark}",
        [ctx.run_id],
    ).to_pylist()
    status = {row["stage"]: row["status"] for row in rows}
    missing = next((name for name in earlier if status.get(name) != "succeeded"), None)
    if missing is None:
        return
    state = f"is {status[missing]}" if missing in status else "has not run"
    raise ConfigError(
        f"{stage} of run {ctx.run_id} runs after {missing}, which {state}: run "
        f"`marketlake run --run-id {ctx.run_id} --stage {missing}` first"
    )
