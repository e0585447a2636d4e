"""The bus contract, run against the in-memory bus."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from bus_contract import BusContract, GroupSplitContract

from marketlake.bus.base import Bus
from marketlake.bus.memory import MemoryBus


class TestMemoryBus(BusContract, GroupSplitContract):
    @pytest.fixture
    def bus(self) -> Iterator[Bus]:
        with MemoryBus() as bus:
            yield bus
