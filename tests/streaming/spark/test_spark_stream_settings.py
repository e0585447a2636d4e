"""Settings and refusals of ``--engine spark`` that need no Spark session."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from marketlake.errors import ConfigError
from marketlake.settings import load_settings
from marketlake.streaming.spark.pipeline import checkpoint_folder
from pipeline.cli import marketlake


def test_spark_stream_settings_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MARKETLAKE_STREAM__ENGINE", "spark")
    monkeypatch.setenv("MARKETLAKE_SPARK__TRIGGER_INTERVAL", "250ms")
    monkeypatch.setenv("MARKETLAKE_SPARK__STREAM_PARTITIONS", "2")
    settings = load_settings(home=tmp_path)
    assert settings.stream.engine == "spark"
    assert settings.spark.trigger_interval == timedelta(milliseconds=250)
    assert settings.spark.stream_partitions == 2
    assert (
        checkpoint_folder(tmp_path, settings.spark, "g")
        == (tmp_path / "spark" / "checkpoints" / "g").resolve()
    )
    monkeypatch.setenv("MARKETLAKE_SPARK__CHECKPOINT", str(tmp_path / "elsewhere"))
    moved = load_settings(home=tmp_path).spark
    assert checkpoint_folder(tmp_path, moved, "g") == (tmp_path / "elsewhere" / "g").resolve()
    monkeypatch.setenv("MARKETLAKE_SPARK__TRIGGER_INTERVAL", "0s")
    with pytest.raises(ConfigError, match="trigger_interval"):
        load_settings(home=tmp_path)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--count", "5"), "--count is not supported by the spark stream engine"),
        (("--bus", "memory://x"), "the spark stream engine reads local:// or kafka:// buses"),
        (("--engine", "flink"), "stream.engine"),
    ],
)
def test_spark_engine_refuses_what_it_cannot_do(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    done = marketlake(
        "stream", "process", "--home", str(tmp_path), "--engine", "spark", "-q", *args
    )
    assert done.returncode != 0
    assert message in done.stderr
    assert "Traceback" not in done.stderr
