"""Options of the ``marketlake stream`` commands, shared by the one-process command and the
``produce`` and ``process`` sub-commands (the options of every command are in
:mod:`marketlake.cli.options`)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

Source = Annotated[str, typer.Option("--source", help="Tick source: sim or replay")]
Symbols = Annotated[str | None, typer.Option("--symbols", help="Comma-separated symbols (sim)")]
Rate = Annotated[float | None, typer.Option("--rate", help="Ticks per second (default: max)")]
Count = Annotated[int | None, typer.Option("--count", help="Stop after this many ticks")]
Duration = Annotated[float | None, typer.Option("--duration", help="Stop after S seconds")]
PathOpt = Annotated[Path | None, typer.Option("--path", help="Bars file to replay")]
Speed = Annotated[float, typer.Option("--speed", help="Replay speed (0: as fast as possible)")]
Seed = Annotated[int | None, typer.Option("--seed", help="Seed of the sim source")]
Start = Annotated[
    datetime | None, typer.Option("--start", help="Sim event time start (UTC, ISO format)")
]
EventRate = Annotated[
    float | None, typer.Option("--event-rate", help="Sim ticks per second of event time")
]
LateFraction = Annotated[
    float, typer.Option("--late-fraction", help="Share of sim ticks sent late (for testing)")
]
LateBy = Annotated[float, typer.Option("--late-by", help="How late those ticks are, in seconds")]
Partitions = Annotated[int, typer.Option("--partitions", help="Partitions of the ticks topic")]
Topic = Annotated[str, typer.Option("--topic", help="Topic of the ticks")]
Group = Annotated[str, typer.Option("--group", help="Consumer group of the processor")]
Lateness = Annotated[float, typer.Option("--lateness", help="Allowed lateness in seconds")]
NoWarehouse = Annotated[
    bool, typer.Option("--no-warehouse", help="Write the lake only, not the warehouse")
]
TicksMode = Annotated[
    str, typer.Option("--ticks-mode", help="append (exactly-once by offsets) or merge (by key)")
]
CommitInterval = Annotated[
    float, typer.Option("--commit-interval", help="Seconds between sink commits")
]
MaxMessages = Annotated[int, typer.Option("--max-messages", help="Messages per poll at most")]
