"""``marketlake run``: the batch pipeline with progress bars and a summary table."""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from marketlake.components import open_history_source, open_lake
from marketlake.errors import ConfigError
from marketlake.pipeline.context import RunContext
from marketlake.pipeline.plan import (
    check_split_stages,
    load_spec,
    plan_run,
    require_spec,
    save_spec,
)
from marketlake.pipeline.runner import Runner, RunReport, get_stage, stage_names
from marketlake.runspec import RunSpec
from marketlake.settings import Settings, load_settings
from marketlake.sources.base import HistorySource

RUN_DEFINING = ("source", "symbols", "start", "end", "engine", "sources")


def run_pipeline(
    *,
    config: Any = None,
    quiet: bool = False,
    run_id: str | None = None,
    stage: str | None = None,
    plan_only: bool = False,
    **overrides: Any,
) -> RunReport | None:
    """Run a whole run, one stage of a run (``stage`` with ``run_id``), or only plan one.

    A new run's spec is resolved once from the settings and stored with the run; an existing
    run id (``run_id``) loads its spec, so every process of the run does the same work.
    Returns None when only planning.
    """
    console = Console(stderr=False, quiet=quiet)
    settings = load_settings(config=config, **overrides)
    if stage is not None:
        get_stage(stage)
        if run_id is None:
            raise ConfigError(
                f"--stage {stage} runs one stage of a planned run: pass --run-id ID "
                "(`marketlake run --plan` plans a run and prints its id)"
            )
    if stage is not None or plan_only:
        check_split_stages(settings)
    spec, source = _load_or_plan(settings, overrides, run_id, stage)
    if plan_only:
        if source is not None:
            source.close()
        sys.stdout.write(spec.run_id + "\n")
        return None
    ctx = RunContext(settings, spec, source=source)
    progress = Progress(
        TextColumn("{task.description:<16}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=quiet or not console.is_terminal,
    )
    tasks: dict[str, Any] = {}

    def on_progress(name: str, done: int, total: int) -> None:
        if name not in tasks:
            tasks[name] = progress.add_task(name, total=total)
        progress.update(tasks[name], completed=done, total=total)

    ctx.progress = on_progress
    try:
        if stage in (None, stage_names()[0]):
            ctx.source  # noqa: B018 - configuration mistakes surface before any stage runs
        ctx.storage.check()
        with progress:
            report = Runner(ctx, [stage] if stage else None).run()
    finally:
        ctx.close()
    console.print(summary_table(report, ctx))
    return report


def _load_or_plan(
    settings: Settings, overrides: dict[str, Any], run_id: str | None, stage: str | None
) -> tuple[RunSpec, HistorySource | None]:
    """The stored spec of ``run_id``, or a new spec planned now (and stored).

    A new plan also returns the source it opened (file sources list their symbols), so the
    run reuses it instead of opening and reading the files again; the caller closes it.
    """
    storage = open_lake(settings)
    spec = load_spec(storage, run_id) if run_id else None
    if spec is not None:
        given = [name for name in RUN_DEFINING if overrides.get(name) is not None]
        if given:
            flags = ", ".join(f"--{name}" for name in given)
            raise ConfigError(
                f"run {spec.run_id} is already planned ({spec.source}, {len(spec.symbols)} "
                f"symbols, {spec.start} to {spec.end}, engine {spec.engine}); its stages take "
                f"what it was planned with: drop {flags}"
            )
        return spec, None
    if stage is not None and stage != stage_names()[0]:
        require_spec(storage, run_id or "")
    source = open_history_source(settings)
    try:
        spec = plan_run(
            settings, source, run_id=run_id, symbols_explicit=overrides.get("symbols") is not None
        )
        storage.check()
        save_spec(storage, spec)
    except BaseException:
        source.close()
        raise
    return spec, source


def summary_table(report: RunReport, ctx: RunContext) -> Table:
    """The end-of-run table: rows per stage, quarantined, time per stage."""
    start, end = ctx.date_range
    title = (
        f"run {report.run_id}: {ctx.settings.source}, {len(ctx.symbols)} symbols, {start} to {end}"
    )
    table = Table(title=title)
    for column in ("stage", "status", "attempts", "rows in", "rows out", "quarantined", "seconds"):
        if column in ("stage", "status"):
            table.add_column(column, no_wrap=True, min_width=15 if column == "stage" else 9)
        else:
            table.add_column(column, justify="right")
    total = 0.0
    for stage in report.stages:
        colour = {"succeeded": "green", "failed": "red"}.get(stage.status, "yellow")
        table.add_row(
            stage.name,
            f"[{colour}]{stage.status}[/{colour}]",
            str(stage.attempts),
            f"{stage.result.rows_in:,}",
            f"{stage.result.rows_out:,}",
            f"{stage.result.quarantined:,}",
            f"{stage.seconds:.2f}",
        )
        total += stage.seconds
    table.add_section()
    table.add_row("total", "", "", "", "", "", f"{total:.2f}")
    notes = [
        f"{s.name}: {s.result.detail['summary']}"
        for s in report.stages
        if s.result.detail.get("summary")
    ]
    if notes:
        table.caption = "\n".join(notes)
    for stage in report.stages:
        if stage.error:
            table.caption = f"{stage.name}: {stage.error}"
    return table
