"""``marketlake doctor`` checks and changes nothing: a fresh home stays absent, an existing
bus gets no topic (run in-process through Typer's runner)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from marketlake.bus.local.bus import LocalBus
from marketlake.cli.app import app


def doctor(home: Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["doctor", "--home", str(home)], env={"COLUMNS": "200"})
    return result.exit_code, result.stdout


def test_doctor_on_a_fresh_home_creates_nothing(tmp_path: Path) -> None:
    home = tmp_path / "fresh"
    code, out = doctor(home)
    assert code == 0, out
    assert not home.exists()
    for component in ("bus", "lake", "warehouse"):
        line = next(line for line in out.splitlines() if f" {component} " in line)
        assert "not created yet" in line


def test_doctor_lists_the_topics_of_an_existing_bus_and_adds_none(home: Path) -> None:
    with LocalBus(home / "bus") as bus:
        bus.create_topic("marketlake.ticks", 2)
    code, out = doctor(home)
    assert code == 0, out
    assert "1 topics: marketlake.ticks" in out
    with LocalBus(home / "bus") as bus:
        assert bus.topics() == ["marketlake.ticks"]
    assert not (home / "lake").exists()
