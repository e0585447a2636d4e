"""What ``marketlake run`` prints: the summary whole at any width, progress on a terminal's
stderr only, nothing at all with ``--quiet`` (run in-process through Typer's runner)."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from marketlake.cli.app import app
from marketlake.pipeline.runner import stage_names

ARGS = ("--symbols", "AAPL,MSFT", "--start", "2024-01-02", "--end", "2024-01-31")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def run(home: Path, *extra: str, **env: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["run", "--home", str(home), *ARGS, *extra], env=env)
    return result.exit_code, result.stdout, result.stderr


def stage_rows(summary: str) -> dict[str, list[str]]:
    """The summary's rows by stage name, each cell as printed."""
    rows = {}
    for line in ANSI.sub("", summary).splitlines():
        cells = line.split()
        if cells and cells[0] in stage_names():
            rows[cells[0]] = cells[1:]
    return rows


def test_the_summary_is_whole_on_a_pipe_and_in_an_80_column_terminal_and_quiet_is_silent(
    home: Path,
) -> None:
    code, out, err = run(home, COLUMNS="80")  # a pipe: COLUMNS does not cut the table
    assert code == 0, out + err
    assert err == ""  # no progress bars off a terminal
    rows = stage_rows(out)
    assert list(rows) == stage_names()  # every stage name in full
    assert all(cells[0] == "succeeded" and len(cells) == 6 for cells in rows.values())
    assert rows["fetch_history"][3] == f"{2 * 21}"  # rows out: 21 sessions x 2 symbols
    assert "…" not in out and all(line == line.rstrip() for line in out.splitlines())
    notes = [line for line in out.splitlines() if line.startswith("consume_history:")]
    assert len(notes) == 1 and notes[0].endswith("reconciliation flags")  # one line per note

    code, out, err = run(home, COLUMNS="80", TTY_COMPATIBLE="1")  # a terminal 80 wide
    assert code == 0, out + err
    progress = ANSI.sub("", err)  # the progress display goes to stderr
    assert "━" in progress and any(name in progress for name in stage_names())
    assert list(stage_rows(out)) == stage_names()
    assert max(len(line) for line in ANSI.sub("", out).splitlines()) <= 80
    assert "…" not in out

    code, out, err = run(home, "-q", COLUMNS="80", TTY_COMPATIBLE="1")
    assert (code, out, err) == (0, "", "")  # quiet: neither progress nor summary
