"""``marketlake run``: the batch pipeline with progress bars and a summary table.

Progress bars go to stderr, only when it is a terminal and not ``--quiet``; the summary goes
to stdout (not with ``--quiet``), whole whatever the width: a terminal narrower than the table
folds the long cells, a pipe or file gets the table at its full width. A failed run ends with
one error line on stderr, quiet or not.
"""

from __future__ import annotations

import contextlib
import io
import sys
from typing import TYPE_CHECKING, Any

from marketlake.cli.exits import report_error
from marketlake.components import (
    discard_warehouse,
    open_history_source,
    open_lake,
    open_warehouse_soon,
)
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

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

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
    # a new run's warehouse opens while the run is planned (a stored run may name another)
    opening = open_warehouse_soon(settings) if run_id is None and not plan_only else None
    try:
        spec, source = _load_or_plan(settings, overrides, run_id, stage)
    except BaseException:
        if opening is not None:
            discard_warehouse(opening)
        raise
    if plan_only:
        if source is not None:
            source.close()
        sys.stdout.write(spec.run_id + "\n")
        return None
    ctx = RunContext(settings, spec, source=source, warehouse=opening)
    progress: Any = contextlib.nullcontext()
    progress_console = None if quiet else _console(stderr=True)  # rich only when printing
    if progress_console is not None and progress_console.is_terminal:
        progress = _progress_bars(progress_console)
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
    if not quiet:
        print_summary(summary_table(report, ctx))
    failed = next((stage for stage in report.stages if stage.status == "failed"), None)
    if failed is not None:
        report_error(f"run {report.run_id} failed at {failed.name}: {failed.error or 'no reason'}")
    return report


def _progress_bars(console: Console) -> Any:
    """Transient progress bars, one per stage, on ``console``."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(
        TextColumn("{task.description:<16}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def _console(**options: Any) -> Console:
    """A rich console (rich is imported only by runs that print)."""
    from rich.console import Console

    return Console(**options)


def print_summary(table: Table) -> None:
    """Print ``table`` to stdout: within a terminal's width (long cells fold, none is cut),
    at its full width to a pipe or a file (whatever COLUMNS says)."""
    console = _console()
    if console.is_terminal:
        console.print(table)
        return
    # the caption's lines go out as they are: rich would fold them to the table's width
    caption, table.caption = str(table.caption or ""), None
    width = _console(width=100_000, file=io.StringIO()).measure(table).maximum
    buffer = io.StringIO()
    _console(file=buffer, width=width, color_system=None, soft_wrap=False).print(table)
    lines = [*buffer.getvalue().splitlines(), *caption.splitlines()]
    sys.stdout.write("".join(line.rstrip() + "\n" for line in lines))


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
    from rich import box
    from rich.table import Table

    start, end = ctx.date_range
    title = (
        f"run {report.run_id}: {ctx.settings.source}, {len(ctx.symbols)} symbols, {start} to {end}"
    )
    table = Table(
        title=title,
        box=box.SIMPLE_HEAD,
        padding=0,  # the box's one space between columns: 12.6 M rows fit 80 columns
        show_edge=False,
        title_justify="left",
        caption_justify="left",
    )
    longest = max([len(stage.name) for stage in report.stages] + [len("total")])
    table.add_column("stage", no_wrap=True, min_width=longest)
    table.add_column("status", no_wrap=True, min_width=len("succeeded"))
    for column in ("attempts", "rows in", "rows out", "quarantined", "seconds"):
        table.add_column(column, justify="right", overflow="fold")  # headers wrap, never cut
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
