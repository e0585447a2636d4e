"""``marketlake run``: the batch pipeline with progress bars and a summary table."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from marketlake.pipeline.context import RunContext
from marketlake.pipeline.runner import Runner, RunReport
from marketlake.settings import load_settings


def run_pipeline(*, config: Any = None, quiet: bool = False, **overrides: Any) -> RunReport:
    """Build the settings from ``overrides``, run every stage and print the summary."""
    console = Console(stderr=False, quiet=quiet)
    settings = load_settings(config=config, **overrides)
    ctx = RunContext(settings, symbols_explicit=overrides.get("symbols") is not None)
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

    def on_progress(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = progress.add_task(stage, total=total)
        progress.update(tasks[stage], completed=done, total=total)

    ctx.progress = on_progress
    try:
        ctx.source  # noqa: B018 - configuration mistakes surface before any stage runs
        ctx.storage.check()
        with progress:
            report = Runner(ctx).run()
    finally:
        ctx.close()
    console.print(summary_table(report, ctx))
    return report


def summary_table(report: RunReport, ctx: RunContext) -> Table:
    """The end-of-run table: rows per stage, quarantined, time per stage."""
    start, end = ctx.date_range
    title = (
        f"run {report.run_id}: {ctx.settings.source}, {len(ctx.symbols)} symbols, {start} to {end}"
    )
    table = Table(title=title)
    for column in ("stage", "status", "attempts", "rows in", "rows out", "quarantined", "seconds"):
        table.add_column(column, justify="left" if column in ("stage", "status") else "right")
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
