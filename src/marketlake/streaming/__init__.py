"""The in-process stream processor: event time, 1-minute bars, windows, watermarks, late data."""

from marketlake.streaming.config import SlidingWindow, StreamConfig
from marketlake.streaming.outputs import StreamOutput
from marketlake.streaming.processor import StreamProcessor

__all__ = ["SlidingWindow", "StreamConfig", "StreamOutput", "StreamProcessor"]
