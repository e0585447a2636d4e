"""Helpers of the Spark stream-processor tests: running either processor in this process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from marketlake.cli.stream.context import stream_context
from marketlake.cli.stream.processor import stream_pipeline
from marketlake.streaming.runtime.stats import ProcessStats


def process(home: Path, engine: str, **params: Any) -> ProcessStats:
    """Run ``stream process --until-caught-up`` with ``engine`` here (the Spark engine joins
    the test session's Spark); ``params`` are the command's other options by name."""
    ctx = stream_context({"home": home, "engine": engine, **params})
    try:
        return stream_pipeline(ctx, no_warehouse=False).run(until_caught_up=True)
    finally:
        ctx.close()
