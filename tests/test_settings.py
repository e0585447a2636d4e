import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from marketlake.durations import format_duration, parse_duration
from marketlake.errors import ConfigError
from marketlake.settings import load_settings, masked
from marketlake.streaming.config import StreamConfig


def test_masked_settings_hide_url_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARKETLAKE_BUS", "kafka://user:sekrit@127.0.0.1:9092")
    monkeypatch.setenv("MARKETLAKE_WAREHOUSE", "postgresql://app:sekrit@db:5432/market")
    shown = masked(load_settings())
    assert "sekrit" not in repr(shown)
    assert shown["bus"] == "kafka://user:***@127.0.0.1:9092"
    assert shown["warehouse_url"] == "postgresql://app:***@db:5432/market"


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "marketlake.toml"
    path.write_text(text)
    return path


STREAM_TOML = """
[stream]
lateness = "7s"
ticks_mode = "merge"
sliding_window = "30m"
alert_pct = 3.0
ma_windows = ["5m", "2h"]

[stream.sim]
late_fraction = 0.1
"""


def test_stream_defaults_are_the_stream_config_defaults() -> None:
    stream = load_settings().stream
    assert stream.lateness == timedelta(seconds=5)
    assert stream.ticks_mode == "append"
    assert StreamConfig.from_settings(stream, "XNYS") == StreamConfig()
    assert masked(load_settings())["stream"]["ma_windows"] == ["15m", "1h"]


def test_stream_settings_from_toml(tmp_path: Path) -> None:
    stream = load_settings(config=_toml(tmp_path, STREAM_TOML)).stream
    assert stream.lateness == timedelta(seconds=7)
    assert stream.ticks_mode == "merge"
    assert stream.sliding_window == timedelta(minutes=30)
    assert stream.alert_pct == 3.0
    assert stream.ma_windows == (timedelta(minutes=5), timedelta(hours=2))
    assert stream.sim.late_fraction == 0.1
    assert stream.sliding_step == timedelta(minutes=5)  # not in the file: the default


def test_stream_env_beats_toml_and_explicit_beats_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _toml(tmp_path, STREAM_TOML)
    monkeypatch.setenv("MARKETLAKE_STREAM__LATENESS", "8")
    monkeypatch.setenv("MARKETLAKE_STREAM__TICKS_MODE", "append")
    monkeypatch.setenv("MARKETLAKE_STREAM__SLIDING_WINDOW", "20m")
    monkeypatch.setenv("MARKETLAKE_STREAM__ALERT_PCT", "4")
    monkeypatch.setenv("MARKETLAKE_STREAM__MA_WINDOWS", "10m,1h")
    from_env = load_settings(config=config).stream
    assert (from_env.lateness, from_env.ticks_mode) == (timedelta(seconds=8), "append")
    assert (from_env.sliding_window, from_env.alert_pct) == (timedelta(minutes=20), 4.0)
    assert from_env.ma_windows == (timedelta(minutes=10), timedelta(hours=1))
    assert from_env.sim.late_fraction == 0.1  # the file's, as no variable sets it

    explicit = {"lateness": "9s", "ticks_mode": "merge", "sliding_window": "1h", "alert_pct": 5}
    flags = load_settings(config=config, stream={**explicit, "sliding_step": None}).stream
    assert (flags.lateness, flags.ticks_mode) == (timedelta(seconds=9), "merge")
    assert (flags.sliding_window, flags.alert_pct) == (timedelta(hours=1), 5.0)
    assert flags.ma_windows == from_env.ma_windows  # unset explicitly: the environment's
    assert flags.sliding_step == timedelta(minutes=5)  # None is "not given"


@pytest.mark.parametrize(
    ("stream", "message"),
    [
        ({"ticks_mode": "upsert"}, "stream.ticks_mode: Input should be 'append' or 'merge'"),
        ({"lateness": "-1s"}, "stream.lateness: must be 0 or more, got -1s"),
        ({"lateness": "soon"}, "stream.lateness: expected a duration like 250ms"),
        ({"sliding_window": "90s"}, "stream.sliding_window: must be a positive whole number"),
        ({"ma_windows": "15m,0m"}, "stream.ma_windows: must be a positive whole number"),
        ({"sliding_step": "20m"}, "sliding_step (20m) must not exceed sliding_window (15m)"),
        ({"alert_pct": 0}, "stream.alert_pct: Input should be greater than 0"),
        ({"commit_interval": "0s"}, "stream.commit_interval: must be positive, got 0s"),
        ({"sim": {"late_fraction": 2}}, "stream.sim.late_fraction: Input should be less than"),
    ],
)
def test_invalid_stream_settings_say_which_and_why(stream: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(stream=stream)


@pytest.mark.parametrize(
    ("text", "span", "shown"),
    [
        ("250ms", timedelta(milliseconds=250), "250ms"),
        ("5", timedelta(seconds=5), "5s"),
        ("0.2", timedelta(milliseconds=200), "200ms"),
        ("90s", timedelta(seconds=90), "90s"),
        ("15m", timedelta(minutes=15), "15m"),
        ("60m", timedelta(hours=1), "1h"),
        ("1d", timedelta(days=1), "1d"),
    ],
)
def test_durations_parse_and_show(text: str, span: timedelta, shown: str) -> None:
    assert parse_duration(text) == span
    assert format_duration(span) == shown
