"""Opening buses by URL."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from bus_contract import drain, send_all

from marketlake.bus.base import Bus
from marketlake.bus.local.bus import LocalBus
from marketlake.bus.memory import MemoryBus
from marketlake.bus.registry import BUS_SCHEMES, BUSES, open_bus
from marketlake.errors import ConfigError, MissingExtraError


def test_a_local_url_opens_the_log_in_that_folder(tmp_path: Path) -> None:
    bus = open_bus(f"local://{tmp_path}/bus?partitions=2&segment_bytes=1000")
    assert isinstance(bus, LocalBus)
    assert bus.root == tmp_path / "bus"
    assert (bus.partitions, bus.segment_bytes) == (2, 1000)
    send_all(bus, "t", [("K", b"v")])
    with open_bus(f"local://{tmp_path}/bus").consumer("g", ["t"]) as consumer:
        assert [m.value for m in drain(consumer, 1)] == [b"v"]


def test_a_memory_url_names_one_shared_bus() -> None:
    first = open_bus("memory://shared-registry-test")
    assert isinstance(first, MemoryBus)
    assert open_bus("memory://shared-registry-test") is first
    assert open_bus("memory://another-registry-test") is not first
    send_all(first, "t", [("K", b"v")])
    with open_bus("memory://shared-registry-test").consumer("g", ["t"]) as consumer:
        assert [m.value for m in drain(consumer, 1)] == [b"v"]


def test_the_schemes_are_listed_with_what_their_urls_mean() -> None:
    assert BUS_SCHEMES == ("local", "memory", "kafka")
    for scheme, entry in BUSES.items():
        assert entry.description.startswith(f"{scheme}://")


EXAMPLES = {
    "local": "local://{tmp}/bus?partitions=2",
    "memory": "memory://listed-scheme-test",
    "kafka": "kafka://127.0.0.1:9092?partitions=2",
}


def test_every_listed_scheme_has_an_example_here() -> None:
    assert set(EXAMPLES) == set(BUS_SCHEMES)


@pytest.mark.parametrize("scheme", BUS_SCHEMES)
def test_every_listed_scheme_opens(scheme: str, tmp_path: Path) -> None:
    with open_bus(EXAMPLES[scheme].format(tmp=tmp_path)) as bus:
        assert isinstance(bus, Bus)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis://host:6379", "valid schemes are \\('local', 'memory', 'kafka'\\)"),
        ("local://relative/path", "local:///absolute/path"),
        ("local:///tmp/x?colour=red", "unknown option"),
        ("local:///tmp/x?partitions=many", "must be integers"),
        ("memory://", "needs a name"),
    ],
)
def test_bad_urls_say_what_is_allowed(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        open_bus(url)


def test_kafka_without_its_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "confluent_kafka", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'marketlake\[kafka\]'"):
        open_bus("kafka://127.0.0.1:9092")
