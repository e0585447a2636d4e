"""The stream processor: event time, 1-minute bars, windows, watermarks, late data.

This package is the computation only (ticks in, outputs and state bytes out); the loop that
feeds it from the bus and writes its outputs is :mod:`marketlake.streaming.runtime`, which
this package never imports.
"""

from marketlake.streaming.config import SlidingWindow, StreamConfig
from marketlake.streaming.outputs import StreamOutput
from marketlake.streaming.processor import StreamProcessor

__all__ = ["SlidingWindow", "StreamConfig", "StreamOutput", "StreamProcessor"]
