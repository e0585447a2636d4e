"""Options of the ``marketlake stream`` commands, declared once and shared by the one-process
command and the ``produce`` and ``process`` sub-commands (the options of every command are in
:mod:`marketlake.cli.options`).

Most options set a setting (:func:`setting_option`): left unset (None), the environment, the
config file and the default apply; their help names the setting and its environment variable
and shows the default, all read from the settings model. :func:`settings_overrides` turns a
command's parameters into the nested overrides :func:`~marketlake.settings.load_settings`
takes. The rest (``--count``, ``--duration``, ``--rate``, ``--path``, ``--start``) shape one
invocation only.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel

from marketlake.durations import format_duration
from marketlake.settings import Settings
from marketlake.sources.registry import TICK_SOURCES

SETTING_FLAGS: dict[str, str] = {
    "bus": "bus",
    "lake": "lake",
    "warehouse": "warehouse",
}
"""Parameter name of each option that sets a setting → the setting's dotted path."""


def _shown(value: Any) -> str:
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, tuple):
        return ",".join(_shown(v) for v in value)
    return str(value)


def setting_option(
    path: str, flag: str, help: str | None = None, metavar: str | None = None
) -> Any:
    """A ``typer.Option`` for ``flag`` that overrides the setting at ``path`` (``stream.lateness``).

    Its help is the field's description (or ``help``) with the field's default, the setting's
    name and its environment variable. (No square brackets: the help is read as Rich markup.)
    """
    model: type[BaseModel] = Settings
    *sections, name = path.split(".")
    for section in sections:
        model = model.model_fields[section].annotation  # type: ignore[assignment]
    field = model.model_fields[name]
    SETTING_FLAGS[flag.removeprefix("--").replace("-", "_")] = path
    env = "MARKETLAKE_" + path.upper().replace(".", "__")
    default = field.get_default(call_default_factory=True)
    shown = "" if default is None else f"default {_shown(default)}; "
    return typer.Option(
        flag,
        help=f"{help or field.description} ({shown}setting {path}, env {env})",
        show_default=False,
        metavar=metavar,
    )


def settings_overrides(params: Mapping[str, Any]) -> dict[str, Any]:
    """The settings the set options among ``params`` give, nested like the settings."""
    overrides: dict[str, Any] = {}
    for name, value in params.items():
        path = SETTING_FLAGS.get(name)
        if path is None or value is None:
            continue
        *sections, key = path.split(".")
        target = overrides
        for section in sections:
            target = target.setdefault(section, {})
        target[key] = value
    return overrides


_SOURCES = "; ".join(f"{name}: {spec.description}" for name, spec in TICK_SOURCES.items())

# Settings of the tick source
Source = Annotated[
    str | None, setting_option("stream.source", "--source", f"Tick source: {_SOURCES}")
]
Seed = Annotated[int | None, setting_option("sources.sim.seed", "--seed", "Seed of the sim source")]
EventRate = Annotated[float | None, setting_option("stream.sim.event_rate", "--event-rate")]
LateFraction = Annotated[
    float | None, setting_option("stream.sim.late_fraction", "--late-fraction")
]
LateBy = Annotated[
    str | None, setting_option("stream.sim.late_by", "--late-by", metavar="<duration>")
]
Speed = Annotated[float | None, setting_option("stream.replay.speed", "--speed")]
Symbols = Annotated[
    str | None, setting_option("symbols", "--symbols", "Comma-separated symbols of the sim")
]

# Settings of the bus and the processor
StreamEngine = Annotated[str | None, setting_option("stream.engine", "--engine")]
Partitions = Annotated[int | None, setting_option("stream.partitions", "--partitions")]
Topic = Annotated[str | None, setting_option("stream.topic", "--topic")]
Group = Annotated[str | None, setting_option("stream.group", "--group")]
Lateness = Annotated[
    str | None, setting_option("stream.lateness", "--lateness", metavar="<duration>")
]
SlidingWindow = Annotated[
    str | None, setting_option("stream.sliding_window", "--sliding-window", metavar="<duration>")
]
SlidingStep = Annotated[
    str | None, setting_option("stream.sliding_step", "--sliding-step", metavar="<duration>")
]
MaWindows = Annotated[
    str | None, setting_option("stream.ma_windows", "--ma-windows", metavar="<durations>")
]
AlertPct = Annotated[float | None, setting_option("stream.alert_pct", "--alert-pct")]
TicksMode = Annotated[str | None, setting_option("stream.ticks_mode", "--ticks-mode")]
CommitInterval = Annotated[
    str | None, setting_option("stream.commit_interval", "--commit-interval", metavar="<duration>")
]
MaxMessages = Annotated[int | None, setting_option("stream.max_messages", "--max-messages")]

# Options of one invocation
Rate = Annotated[float | None, typer.Option("--rate", help="Ticks per second (default: max)")]
Count = Annotated[int | None, typer.Option("--count", help="Stop after this many ticks")]
Duration = Annotated[float | None, typer.Option("--duration", help="Stop after S seconds")]
PathOpt = Annotated[Path | None, typer.Option("--path", help="Bars file to replay")]
Start = Annotated[
    datetime | None,
    typer.Option(
        "--start",
        help="Event time to start at (UTC, ISO format); sim and replay. Default: continue "
        "after the last tick produced to the topic in this home (the sim's first run starts "
        "at the open of the last closed session)",
    ),
]
NoWarehouse = Annotated[
    bool, typer.Option("--no-warehouse", help="Write the lake only, not the warehouse")
]
