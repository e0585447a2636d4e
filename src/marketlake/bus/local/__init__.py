"""The durable local log: the default bus, file-backed and shared by the processes of one host."""

from marketlake.bus.local.bus import LocalBus

__all__ = ["LocalBus"]
