"""The ``[stream]`` settings through the real command line: TOML < environment < flags,
invalid values as one error line, and ``doctor`` showing the section."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.cli import marketlake, sql_json
from streaming.runtime.stream_checks import SIM_ARGS

TOML = """
[stream]
lateness = "7s"
ticks_mode = "merge"
sliding_window = "10m"
sliding_step = "10m"
alert_pct = 3.0
ma_windows = ["5m"]
"""
ENV = {
    "MARKETLAKE_STREAM__LATENESS": "8s",
    "MARKETLAKE_STREAM__TICKS_MODE": "append",
    "MARKETLAKE_STREAM__SLIDING_WINDOW": "20m",
    "MARKETLAKE_STREAM__SLIDING_STEP": "20m",
    "MARKETLAKE_STREAM__ALERT_PCT": "4",
}
FLAGS = (
    "--lateness", "9", "--ticks-mode", "merge", "--sliding-window", "30m",
    "--sliding-step", "30m", "--alert-pct", "5",
)  # fmt: skip
EXPECTED = {  # lateness, ticks_mode, sliding window (and step), alert_pct
    "toml": ("7s", "merge", "10m", "3.0"),
    "env": ("8s", "append", "20m", "4.0"),
    "flag": ("9s", "merge", "30m", "5.0"),
}


def _settings_line(stdout: str) -> str:
    return next(line for line in stdout.splitlines() if line.startswith("stream settings:"))


@pytest.mark.parametrize("layer", ["toml", "env", "flag"])
def test_flags_beat_environment_beats_config_file(home: Path, layer: str) -> None:
    (home / "marketlake.toml").write_text(TOML)
    env = ENV if layer in ("env", "flag") else {}
    flags = FLAGS if layer == "flag" else ()
    proc = marketlake(
        "stream", "--home", str(home), "--count", "300", "--event-rate", "3", *SIM_ARGS, *flags,
        env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lateness, mode, span, alert = EXPECTED[layer]
    shown = _settings_line(proc.stdout).split()
    for item in (f"lateness={lateness}", f"ticks_mode={mode}", f"sliding_window={span}"):
        assert item in shown
    assert f"alert_pct={alert}" in shown
    assert "ma_windows=5m" in shown  # set only in the file, so the file's everywhere
    kinds = sql_json(home, "SELECT DISTINCT kind FROM stream_windows ORDER BY kind")
    assert kinds == [{"kind": "ma_5m"}, {"kind": f"sliding_{span}_{span}"}]


def test_produce_and_process_read_the_settings(home: Path) -> None:
    (home / "marketlake.toml").write_text('[stream]\ntopic = "quotes"\ngroup = "g1"\n')
    produced = marketlake(
        "stream", "produce", "--home", str(home), "--count", "200", "--partitions", "2",
        *SIM_ARGS,
    )  # fmt: skip
    assert produced.returncode == 0, produced.stderr
    assert "topic=quotes partitions=2" in _settings_line(produced.stdout)
    assert sorted(p.name for p in (home / "bus").rglob("quotes*"))  # the file's topic

    env = {"MARKETLAKE_STREAM__GROUP": "g2", "MARKETLAKE_STREAM__PARTITIONS": "2"}
    processed = marketlake("stream", "process", "--home", str(home), "--until-caught-up", env=env)
    assert processed.returncode == 0, processed.stderr
    assert "topic=quotes partitions=2 group=g2" in _settings_line(processed.stdout)
    assert "processed 200 ticks" in processed.stdout


@pytest.mark.parametrize(
    ("command", "env", "toml", "message"),
    [
        (("stream", "--ticks-mode", "upsert"), {}, "", "stream.ticks_mode: Input should be"),
        (("stream", "process", "--alert-pct", "-1"), {}, "", "stream.alert_pct: Input should"),
        (("stream", "produce", "--late-fraction", "2"), {}, "", "stream.sim.late_fraction:"),
        (("stream", "produce"), {"MARKETLAKE_STREAM__SLIDING_STEP": "20m"}, "", "sliding_step"),
        (("stream", "process"), {}, '[stream]\nlateness = "soon"\n', "stream.lateness: expected"),
    ],
)
def test_invalid_stream_settings_are_one_error_line(
    home: Path, command: tuple[str, ...], env: dict[str, str], toml: str, message: str
) -> None:
    (home / "marketlake.toml").write_text(toml)
    proc = marketlake(*command, "--home", str(home), "--count", "10", env=env)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith("error: invalid configuration: ")
    assert message in proc.stderr
    assert not (home / "bus").exists()  # nothing started


def test_doctor_shows_the_stream_section(home: Path) -> None:
    (home / "marketlake.toml").write_text(TOML)
    proc = marketlake("doctor", "--home", str(home), env={"MARKETLAKE_STREAM__ALERT_PCT": "4"})
    assert '"stream": {' in proc.stdout, proc.stdout + proc.stderr
    assert '"lateness": "7s"' in proc.stdout
    assert '"alert_pct": 4.0' in proc.stdout
    assert '"ma_windows": [\n      "5m"\n    ]' in proc.stdout
