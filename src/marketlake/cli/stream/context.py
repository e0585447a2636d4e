"""The settings and components of one ``marketlake stream`` invocation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from marketlake.bus.base import Retention
    from marketlake.components import Components
    from marketlake.settings import Settings

PRODUCER_KEYS = ("source", "topic", "partitions")
"""The ``[stream]`` settings the producer's first line shows."""
PROCESSOR_KEYS = (
    "engine",
    "topic",
    "partitions",
    "group",
    "ticks_mode",
    "lateness",
    "sliding_window",
    "sliding_step",
    "ma_windows",
    "alert_pct",
    "commit_interval",
)
"""The ``[stream]`` settings the processor's first line shows."""


def stream_context(params: Mapping[str, Any]) -> Components:
    """The components of the settings a stream command's parameters (``ctx.params``) give:
    its ``--home``, ``--config`` and every option that overrides a setting."""
    from marketlake.arrow_pool import prefer_jemalloc
    from marketlake.cli.stream.options import settings_overrides
    from marketlake.components import Components
    from marketlake.settings import load_settings

    prefer_jemalloc()
    overrides = settings_overrides(params)
    return Components(
        load_settings(config=params.get("config"), home=params.get("home"), **overrides)
    )


def settings_line(settings: Settings, keys: tuple[str, ...]) -> str:
    """The ``[stream]`` settings named by ``keys`` as one ``key=value`` line."""
    stream = settings.stream.model_dump(mode="json")
    values = (stream[key] for key in keys)
    shown = (",".join(v) if isinstance(v, list) else str(v) for v in values)
    return "stream settings: " + " ".join(f"{k}={v}" for k, v in zip(keys, shown, strict=True))


def topic_retention(ctx: Components) -> Retention | None:
    """The retention of the stream's topics (``stream.retention_bytes``, ``stream.retention``),
    None when neither is set."""
    from marketlake.bus.base import Retention

    stream = ctx.settings.stream
    if stream.retention_bytes is None and stream.retention is None:
        return None
    age = None if stream.retention is None else int(stream.retention.total_seconds() * 1000)
    return Retention(stream.retention_bytes, age)
