"""Mistakes in what a run is asked for end in one clear line and a non-zero exit."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pipeline.cli import marketlake, marketlake_process


def one_line_error(proc_stderr: str) -> str:
    """The error line of a failed command; the command printed nothing else on stderr."""
    lines = proc_stderr.strip().splitlines()
    assert len(lines) == 1, proc_stderr
    assert lines[0].startswith("error: "), proc_stderr
    return lines[0]


@pytest.mark.parametrize(
    "command",
    [
        ["run", "--symbols", "AAPL"],
        ["sql", "SELECT 1"],
        ["doctor"],
        ["stream", "--duration", "1"],
        ["lake", "tables"],
    ],
)
def test_home_that_is_a_file_is_one_line_for_every_command(
    tmp_path: Path, command: list[str]
) -> None:
    home = tmp_path / "home"
    home.write_text("not a folder")
    proc = marketlake(*command, "--home", str(home))
    assert proc.returncode != 0
    assert "is a file, not a folder" in one_line_error(proc.stderr)


@pytest.mark.parametrize("command", [["run", "--symbols", "AAPL"], ["sql", "SELECT 1"]])
def test_config_file_that_does_not_exist_is_an_error(home: Path, command: list[str]) -> None:
    missing = home.parent / "missing.toml"
    proc = marketlake(*command, "--home", str(home), "--config", str(missing))
    assert proc.returncode != 0
    assert f"config file {missing} does not exist" in one_line_error(proc.stderr)
    proc = marketlake(*command, "--home", str(home), env={"MARKETLAKE_CONFIG": str(missing)})
    assert proc.returncode != 0
    assert "does not exist" in one_line_error(proc.stderr)


def test_empty_symbol_set_is_a_clear_error_on_an_existing_home(home: Path) -> None:
    first = marketlake("run", "--home", str(home), "--symbols", "AAPL", "--start", "2024-01-02")
    assert first.returncode == 0, first.stderr
    proc = marketlake("run", "--home", str(home), "--symbols", "")
    assert proc.returncode != 0
    assert "no symbols to run" in one_line_error(proc.stderr)


def test_header_only_csv_is_a_clear_error(home: Path) -> None:
    first = marketlake("run", "--home", str(home), "--symbols", "AAPL", "--start", "2024-01-02")
    assert first.returncode == 0, first.stderr
    empty = home.parent / "empty.csv"
    empty.write_text("symbol,date,open,high,low,close,volume\n")
    proc = marketlake("run", "--home", str(home), "--source", "csv", "--path", str(empty))
    assert proc.returncode != 0
    assert "empty.csv: no usable row (no data rows)" in one_line_error(proc.stderr)


@pytest.mark.parametrize(
    ("dates", "message"),
    [
        (["--start", "2024-05-01", "--end", "2024-04-01"], "is after --end 2024-04-01"),
        (["--start", "2100-01-04"], "after the last closed session"),
        (["--start", "2024-12-25", "--end", "2024-12-25"], "no XNYS session from 2024-12-25"),
        (["--start", "2024-12-28", "--end", "2024-12-29"], "no XNYS session from 2024-12-28"),
        # past the calendar's last known day: the sessions have not closed, not "no session"
        (["--start", "2100-01-04", "--end", "2100-02-01"], "has closed yet"),
        (["--start", "1980-01-01", "--end", "1980-02-01"], "not from 1980-01-01 to 1980-02-01"),
    ],
)
def test_range_without_sessions_fails_instead_of_saying_up_to_date(
    home: Path, dates: list[str], message: str
) -> None:
    proc = marketlake("run", "--home", str(home), "--symbols", "AAPL", *dates)
    assert proc.returncode != 0
    assert message in one_line_error(proc.stderr)
    assert "up to date" not in proc.stdout


def test_file_import_of_a_range_without_sessions_fails(real_data: Path, home: Path) -> None:
    csv = real_data / "daily/nasdaq_format/AAPL_2008-11-24_2018-11-23.csv"
    dates = ("--start", "2015-12-25", "--end", "2015-12-25")
    proc = marketlake("run", "--home", str(home), "--source", "csv", "--path", str(csv), *dates)
    assert proc.returncode != 0
    assert "no XNYS session from 2015-12-25" in one_line_error(proc.stderr)


def test_a_warehouse_that_cannot_be_opened_stops_the_run_before_any_stage(home: Path) -> None:
    """The warehouse opens while the run is planned; its failure is still the run's one
    error line, and no stage has fetched anything."""
    blocker = home.parent / "a-file"
    blocker.write_text("not a folder")
    proc = marketlake(
        "run", "--home", str(home), "--symbols", "AAPL", "--warehouse", str(blocker / "w.duckdb")
    )
    assert proc.returncode == 2
    assert str(blocker) in one_line_error(proc.stderr)
    assert not list((home / "lake").rglob("*.json.gz"))  # no raw payload: nothing fetched
    assert not (home / "lake" / "curated").exists()


def test_a_planned_run_does_not_touch_the_warehouse(home: Path) -> None:
    proc = marketlake("run", "--home", str(home), "--symbols", "AAPL", "--plan")
    assert proc.returncode == 0, proc.stderr
    assert not (home / "warehouse.duckdb").exists()


def test_a_run_that_fails_to_plan_ends_cleanly_with_its_warehouse_half_open(home: Path) -> None:
    """Planning fails while the warehouse is being opened: the process waits for it, closes
    it and ends with the planning error (no crash of a thread cut off at exit)."""
    weekend = ("--start", "2024-01-06", "--end", "2024-01-07")
    for _ in range(3):
        proc = marketlake_process("run", "--home", str(home), "--symbols", "AAPL", *weekend)
        assert proc.returncode == 2, proc.stderr
        assert "no XNYS session" in one_line_error(proc.stderr)
    again = marketlake_process(
        "run", "--home", str(home), "--symbols", "AAPL", "--start", "2024-01-02"
    )
    assert again.returncode == 0, again.stderr
