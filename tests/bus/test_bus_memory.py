"""The bus contract, run against the in-memory bus."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from bus_contract import BusContract, GroupSplitContract

from marketlake.bus.base import Bus
from marketlake.bus.memory import MemoryBus
from marketlake.errors import ConfigError


class TestMemoryBus(BusContract, GroupSplitContract):
    @pytest.fixture
    def bus(self) -> Iterator[Bus]:
        with MemoryBus() as bus:
            yield bus


def test_trim_is_refused_with_what_to_do_instead() -> None:
    with MemoryBus() as bus, pytest.raises(ConfigError, match=r"stream\.retention_bytes"):
        bus.trim()
