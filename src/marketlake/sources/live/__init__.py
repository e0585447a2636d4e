"""Live tick sources: the paced base, the seeded simulator and the replay of recorded bars."""

from marketlake.sources.live.base import TickSource
from marketlake.sources.live.replay import ReplaySource
from marketlake.sources.live.sim import SimTickSource

__all__ = ["ReplaySource", "SimTickSource", "TickSource"]
