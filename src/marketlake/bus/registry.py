"""The buses by URL scheme, held as data: ``local:///path``, ``memory://name``, ``kafka://host``.

:func:`open_bus` is the one way to open a bus; :data:`BUSES` and :data:`BUS_SCHEMES` describe
what can be opened, for help texts and ``doctor``. Adapters are imported only when opened, so
a missing driver concerns only the URLs that need it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import NamedTuple
from urllib.parse import parse_qs, unquote, urlsplit

from marketlake.bus.base import Bus
from marketlake.errors import ConfigError

_LOCAL_OPTIONS = {"partitions", "segment_bytes", "retention_bytes", "retention_ms"}
_memory_buses: dict[str, Bus] = {}
_memory_lock = threading.Lock()


class BusScheme(NamedTuple):
    """One kind of bus: what its URL looks like and means, and how to open it."""

    description: str
    open: Callable[[str], Bus]


def _open_local(url: str) -> Bus:
    from marketlake.bus.local.bus import LocalBus

    parts = urlsplit(url)
    if parts.netloc or not parts.path.startswith("/"):
        raise ConfigError(f"local bus URL {url!r} must be local:///absolute/path")
    options = _int_options(url, _LOCAL_OPTIONS)
    return LocalBus(Path(unquote(parts.path)), **options)


def _open_memory(url: str) -> Bus:
    from marketlake.bus.memory import MemoryBus

    parts = urlsplit(url)
    name = parts.netloc + parts.path
    if not name:
        raise ConfigError(f"memory bus URL {url!r} needs a name: memory://name")
    options = _int_options(url, {"partitions"})
    with _memory_lock:
        bus = _memory_buses.get(name)
        if bus is None:
            bus = _memory_buses[name] = MemoryBus(**options)
        return bus


def _open_kafka(url: str) -> Bus:
    from marketlake.bus.kafka.bus import KafkaBus

    return KafkaBus.from_url(url)


BUSES: Mapping[str, BusScheme] = MappingProxyType(
    {
        "local": BusScheme(
            "local:///abs/path[?partitions=4&segment_bytes=..&retention_bytes=..&retention_ms=..]"
            ": the durable local log in that folder",
            _open_local,
        ),
        "memory": BusScheme(
            "memory://name[?partitions=4]: a bus in this process's memory; the same name gives "
            "the same bus",
            _open_memory,
        ),
        "kafka": BusScheme(
            "kafka://[user:password@]host:port[,host:port][?setting=value...]: Kafka or any "
            "Kafka-protocol broker (needs the kafka extra)",
            _open_kafka,
        ),
    }
)
BUS_SCHEMES = tuple(BUSES)


def open_bus(url: str) -> Bus:
    """The bus named by ``url``, opened as its scheme's entry in :data:`BUSES` says.

    An unknown scheme is a ConfigError listing the valid ones. A ``memory://`` name is
    process-wide, so producing and consuming code paths given the same URL share one bus.
    """
    scheme = BUSES.get(urlsplit(url).scheme)
    if scheme is None:
        raise ConfigError(
            f"unknown bus URL {_without_query(url)!r}: valid schemes are {BUS_SCHEMES}"
        )
    return scheme.open(url)


def _int_options(url: str, allowed: set[str]) -> dict[str, int]:
    query = parse_qs(urlsplit(url).query, strict_parsing=False)
    unknown = sorted(set(query) - allowed)
    if unknown:
        raise ConfigError(
            f"unknown option(s) {unknown} in bus URL {url!r}: allowed are {sorted(allowed)}"
        )
    try:
        return {name: int(values[-1]) for name, values in query.items()}
    except ValueError as exc:
        raise ConfigError(f"bus URL {url!r} options must be integers") from exc


def _without_query(url: str) -> str:
    return url.split("?", 1)[0]
