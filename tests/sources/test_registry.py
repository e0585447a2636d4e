"""History and tick sources are chosen by name from the registries."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from marketlake.errors import ConfigError
from marketlake.settings import load_settings
from marketlake.sources.files import FileSource
from marketlake.sources.live import ReplaySource, SimTickSource
from marketlake.sources.registry import (
    HISTORY_SOURCES,
    TICK_SOURCES,
    TickRequest,
    create_history_source,
    create_tick_source,
)
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


def test_every_source_is_described() -> None:
    for registry in (HISTORY_SOURCES, TICK_SOURCES):
        for name, spec in registry.items():
            assert name == name.lower() and spec.description, name
    assert list(HISTORY_SOURCES) == ["sim", "csv", "parquet", "yahoo", "alphavantage"]
    assert list(TICK_SOURCES) == ["sim", "replay"]


def test_names_are_matched_without_case_or_spaces(home: Path) -> None:
    assert isinstance(create_history_source(load_settings(home=home, source=" SIM ")), SimSource)
    settings = load_settings(home=home, symbols="AAPL")
    assert isinstance(create_tick_source("Sim", settings), SimTickSource)


def test_sim_ticks_use_the_settings_and_the_request(home: Path) -> None:
    settings = load_settings(home=home, symbols="AAPL,MSFT", sources={"sim": {"seed": 5}})
    source = create_tick_source("sim", settings)
    assert isinstance(source, SimTickSource)
    assert (source.symbols, source.seed, source.calendar) == (["AAPL", "MSFT"], 5, "XNYS")
    request = TickRequest(rate=50.0, count=10, seed=9, start=datetime(2025, 1, 6, 15))
    source = create_tick_source("sim", settings, request)
    assert isinstance(source, SimTickSource)
    assert (source.seed, source.count, source.rate_per_s) == (9, 10, 50.0)
    assert source.start == datetime(2025, 1, 6, 15, tzinfo=UTC)


def test_replay_needs_a_path_and_takes_a_single_symbol(home: Path, tmp_path: Path) -> None:
    settings = load_settings(home=home, symbols="AAPL,MSFT")
    with pytest.raises(ConfigError, match="--path"):
        create_tick_source("replay", settings)
    path = tmp_path / "MSFT_1min.csv"
    source = create_tick_source("replay", settings, TickRequest(path=path, speed=0.0))
    assert isinstance(source, ReplaySource)
    assert (source.symbol, source.speed) == ("MSFT", 0.0)
    one = load_settings(home=home, symbols="IBM")
    source = create_tick_source("replay", one, TickRequest(path=path))
    assert isinstance(source, ReplaySource) and source.symbol == "IBM"


def test_unknown_tick_source_lists_the_valid_names(home: Path) -> None:
    with pytest.raises(ConfigError) as error:
        create_tick_source("bloomberg", load_settings(home=home))
    assert "unknown tick source 'bloomberg'" in str(error.value)
    for name in TICK_SOURCES:
        assert name in str(error.value)
