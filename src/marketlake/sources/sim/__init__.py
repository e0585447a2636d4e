"""The seeded daily-bar simulator: the adapter (``source``), the price model and its output."""

from marketlake.sources.sim.source import SimSource, simulate_bars

__all__ = ["SimSource", "simulate_bars"]
