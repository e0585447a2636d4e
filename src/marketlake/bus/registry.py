"""Open a bus from its URL: ``local:///path``, ``memory://name`` or ``kafka://host:port``."""

from __future__ import annotations

import threading
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from marketlake.bus.base import Bus
from marketlake.errors import ConfigError, MissingExtraError

SCHEMES = ("local", "memory", "kafka")
_LOCAL_OPTIONS = {"partitions", "segment_bytes", "retention_bytes", "retention_ms"}
_memory_buses: dict[str, Bus] = {}
_memory_lock = threading.Lock()


def open_bus(url: str) -> Bus:
    """The bus named by ``url``.

    - ``local:///abs/path[?partitions=4&segment_bytes=..&retention_bytes=..&retention_ms=..]``:
      the durable local log in that folder.
    - ``memory://name[?partitions=4]``: a process-wide in-memory bus; the same name gives the
      same bus, so producing and consuming code paths share it.
    - ``kafka://host:port[,host:port][?option=value...]``: Kafka (needs the ``kafka`` extra).
    """
    parts = urlsplit(url)
    scheme = parts.scheme
    if scheme == "local":
        return _open_local(url)
    if scheme == "memory":
        return _open_memory(url)
    if scheme == "kafka":
        try:
            import confluent_kafka  # noqa: F401
        except ImportError as exc:
            raise MissingExtraError("confluent-kafka", "kafka") from exc
        from marketlake.bus.kafka import KafkaBus

        return KafkaBus.from_url(url)
    raise ConfigError(f"unknown bus URL {_without_query(url)!r}: valid schemes are {SCHEMES}")


def _open_local(url: str) -> Bus:
    from marketlake.bus.local import LocalBus

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
