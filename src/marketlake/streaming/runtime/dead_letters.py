"""Dead letters: bus messages the stream processor could not decode or process.

A message whose payload cannot be decoded, or a poll whose ticks make the processor fail for
a reason a retry would not change, is recorded in the ``dead_letters`` dataset with its
position and its error, and the stream moves on past it: one bad batch never stops the stream.
Failures a retry may cure (:class:`~marketlake.errors.TransientError`), interrupts and a lack of
memory are not dead-lettered; they stop the run as before, and the same messages are read again
by the next one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import pyarrow as pa

from marketlake.errors import TransientError
from marketlake.schemas import DEAD_LETTER_SCHEMA

if TYPE_CHECKING:
    from marketlake.bus.base import Message

STAGES = ("decode", "process")
_ERROR_CHARS = 2000
_NOT_POISON = (TransientError, KeyboardInterrupt, SystemExit, GeneratorExit, MemoryError)


def is_poison(error: BaseException) -> bool:
    """True when ``error`` comes from the batch itself, so reading it again fails again.

    Polars panics derive from BaseException, not Exception, so they count too.
    """
    return not isinstance(error, _NOT_POISON)


def describe(error: BaseException) -> str:
    """``error`` as one line: its type and the first line of its message."""
    text = str(error).strip().splitlines()
    line = f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
    return line[:_ERROR_CHARS]


def dead_letter_rows(
    group: str,
    messages: Sequence[Message],
    ticks: Sequence[int | None],
    stage: str,
    error: BaseException,
    now: datetime,
) -> pa.Table:
    """One ``dead_letters`` row per message of ``messages`` (``ticks``: their tick counts)."""
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, got {stage!r}")
    n = len(messages)
    return pa.table(
        {
            "consumer_group": [group] * n,
            "topic": [m.topic for m in messages],
            "partition_id": [m.partition for m in messages],
            "message_offset": [m.offset for m in messages],
            "message_key": [m.key for m in messages],
            "ticks": list(ticks),
            "stage": [stage] * n,
            "error": [describe(error)] * n,
            "failed_at": [now] * n,
        },
        schema=DEAD_LETTER_SCHEMA,
    )
