"""Historical sources are chosen by name from the settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketlake.errors import ConfigError
from marketlake.settings import load_settings
from marketlake.sources.files import FileSource
from marketlake.sources.registry import HISTORY_SOURCES, create_history_source
from marketlake.sources.sim import SimSource


def test_sim_uses_seed_and_calendar(home: Path) -> None:
    settings = load_settings(home=home, source="sim", sources={"sim": {"seed": 5}})
    source = create_history_source(settings)
    assert isinstance(source, SimSource)
    assert (source.seed, source.calendar) == (5, "XNYS")


@pytest.mark.parametrize("name", ["csv", "parquet"])
def test_files_need_a_path(home: Path, name: str) -> None:
    with pytest.raises(ConfigError, match="--path"):
        create_history_source(load_settings(home=home, source=name))
    settings = load_settings(home=home, source=name, sources={"files": {"path": home}})
    source = create_history_source(settings)
    assert isinstance(source, FileSource)
    assert (source.path, source.fmt) == (home, name)


@pytest.mark.parametrize("name", ["yahoo", "alphavantage"])
def test_provider_sources_are_built_from_their_settings(home: Path, name: str) -> None:
    source = create_history_source(load_settings(home=home, source=name))
    assert source.name == name


def test_unknown_source_lists_the_valid_names(home: Path) -> None:
    with pytest.raises(ConfigError) as error:
        create_history_source(load_settings(home=home, source="bloomberg"))
    for name in HISTORY_SOURCES:
        assert name in str(error.value)
