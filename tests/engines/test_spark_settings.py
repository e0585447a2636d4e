"""The ``[spark]`` settings: what a session marketlake starts is configured with."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketlake.engines.spark.session import spark_conf
from marketlake.errors import ConfigError
from marketlake.settings import SparkSettings, load_settings


def test_the_toml_section_and_the_environment_configure_spark(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "marketlake.toml"
    config.write_text(
        'engine = "spark"\n\n[spark]\nmaster = "spark://head:7077"\napp_name = "nightly"\n\n'
        '[spark.conf]\n"spark.executor.memory" = "4g"\n"spark.sql.session.timeZone" = "CET"\n'
    )
    settings = load_settings(config=config)
    assert settings.spark.master == "spark://head:7077"
    assert settings.spark.app_name == "nightly"
    conf = spark_conf(settings.spark)
    assert conf["spark.executor.memory"] == "4g"
    assert conf["spark.sql.shuffle.partitions"] == "8"
    assert conf["spark.sql.session.timeZone"] == "UTC"  # daily bars are midnight UTC
    monkeypatch.setenv("MARKETLAKE_SPARK__CONF", '{"spark.sql.shuffle.partitions": "64"}')
    assert spark_conf(load_settings(config=config).spark)["spark.sql.shuffle.partitions"] == "64"


def test_only_spark_keys_are_accepted() -> None:
    with pytest.raises(ConfigError, match=r"spark\.conf: only spark\.\* keys .* executor\.memory"):
        load_settings(spark={"conf": {"executor.memory": "4g"}})
    assert SparkSettings().master == "local[*]"
