"""One stage of one run, in its own process: what each Airflow task starts.

``python -m marketlake.airflow.stage --run-id ID --stage NAME --attempt N`` plans the run
(first stage only, when it is not planned yet), runs the one stage as attempt ``N`` and
records it in ``runs`` like the built-in runner. Airflow owns the retries, so the stage is
tried once here; the exit status says what Airflow should do: 0 done, :data:`EXIT_TRANSIENT`
a transient failure (retry), :data:`EXIT_TERMINAL` a failure that retrying cannot fix.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from marketlake.errors import MarketlakeError, TransientError

EXIT_TRANSIENT = 75  # EX_TEMPFAIL
EXIT_TERMINAL = 1


def run_stage_process(
    run_id: str,
    stage: str,
    attempt: int,
    *,
    retried_later: bool,
    plan: dict[str, Any] | None = None,
) -> int:
    """Run ``stage`` of run ``run_id`` once; return the exit status for the orchestrator.

    ``plan`` holds the run's source, symbols, start and end: the first stage plans a run
    that is not stored yet from them (a retried first stage finds it stored and reuses it).
    """
    from marketlake.components import open_history_source, open_lake
    from marketlake.pipeline.context import RunContext
    from marketlake.pipeline.plan import (
        check_split_stages,
        load_spec,
        plan_run,
        require_spec,
        save_spec,
    )
    from marketlake.pipeline.run_log import abandon_dead_stages, require_earlier_stages
    from marketlake.pipeline.runner import get_stage, run_stage, stage_names
    from marketlake.settings import load_settings

    get_stage(stage)
    plan = plan or {}
    settings = load_settings(
        source=plan.get("source"),
        symbols=plan.get("symbols"),
        start=plan.get("start"),
        end=plan.get("end"),
    )
    check_split_stages(settings)
    storage = open_lake(settings)
    spec = load_spec(storage, run_id)
    source = None
    if spec is None:
        if stage != stage_names()[0]:
            require_spec(storage, run_id)
        source = open_history_source(settings)
        try:
            spec = plan_run(
                settings, source, run_id=run_id, symbols_explicit=bool(plan.get("symbols"))
            )
            storage.check()
            save_spec(storage, spec)
        except BaseException:
            source.close()
            raise
    ctx = RunContext(settings, spec, source=source)
    try:
        ctx.storage.check()
        abandon_dead_stages(ctx)
        require_earlier_stages(ctx, stage, stage_names())
        report = run_stage(ctx, stage, attempt=attempt, retried_later=retried_later)
    finally:
        ctx.close()
    if report.status == "succeeded":
        rows = f"{report.result.rows_in} rows in, {report.result.rows_out} out"
        print(f"{stage} of run {run_id} succeeded (attempt {attempt}): {rows}")
        return 0
    print(f"error: {stage} of run {run_id}: {report.error}", file=sys.stderr)
    return EXIT_TRANSIENT if report.transient else EXIT_TERMINAL


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, run the stage, and turn a marketlake error into one line."""
    parser = argparse.ArgumentParser(prog="python -m marketlake.airflow.stage")
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--stage", required=True)
    parser.add_argument("--attempt", type=int, default=1)
    parser.add_argument("--retried-later", action="store_true")
    parser.add_argument("--plan", type=json.loads, default=None, help="the run's plan as JSON")
    args = parser.parse_args(argv)
    try:
        return run_stage_process(
            args.run_id,
            args.stage,
            args.attempt,
            retried_later=args.retried_later,
            plan=args.plan,
        )
    except MarketlakeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_TRANSIENT if isinstance(exc, TransientError) else EXIT_TERMINAL


if __name__ == "__main__":
    sys.exit(main())
