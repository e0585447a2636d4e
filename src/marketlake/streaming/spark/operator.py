"""The stateful operator of the Spark query: one stream processor per bus partition.

The query groups the source's rows by bus partition and hands each group, once per
micro-batch, to :class:`PartitionProcessor` (``applyInPandasWithState``). Its state, kept in
Spark's state store and checkpoint, is the snapshot of a
:class:`~marketlake.streaming.processor.StreamProcessor` holding every symbol of the partition
(a symbol's ticks always land in one partition). The messages are decoded and fed to the
processor in offset order, so the windows, watermarks (per symbol, with the same lateness),
late-tick corrections, de-duplication and alerts are those of the embedded processor. A
control row (see :mod:`marketlake.streaming.spark.source`) closes the sessions that closed by
its instant. Spark replays a failed batch from the state of the batch before, so a batch's
outputs do not depend on how many times it ran.

The outputs leave as Arrow IPC payloads, one row per kind and partition (see :data:`KINDS`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from marketlake.streaming.config import StreamConfig
from marketlake.streaming.outputs import DUPLICATE, NEW, UNCHECKED, StreamOutput

if TYPE_CHECKING:
    import pandas as pd

OUTPUT_SCHEMA = "part INT, kind STRING, data BINARY"
STATE_SCHEMA = "state BINARY"
OUTPUT_KINDS = ("bars_1m", "windows", "late", "alerts", "quarantine")
KINDS = ("ticks", "unchecked", "dead_letters", "stats", *OUTPUT_KINDS)
STATS_SCHEMA = pa.schema(
    [
        ("messages", pa.int64()),
        ("ticks", pa.int64()),
        ("duplicates", pa.int64()),
        ("latencies_us", pa.list_(pa.int64())),
    ]
)


def to_ipc(table: pa.Table) -> bytes:
    """``table`` as Arrow IPC stream bytes."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def from_ipc(data: bytes) -> pa.Table:
    """The table of :func:`to_ipc` bytes."""
    return pa.ipc.open_stream(pa.py_buffer(data)).read_all()


@dataclass(frozen=True)
class PartitionProcessor:
    """The function ``applyInPandasWithState`` calls per bus partition and micro-batch."""

    config: StreamConfig
    topic: str
    group: str

    def __call__(
        self, key: tuple[Any, ...], frames: Iterator[pd.DataFrame], state: Any
    ) -> Iterator[pd.DataFrame]:
        import pandas as pd

        from marketlake.streaming.processor import StreamProcessor

        part = int(key[0])
        if state.exists:
            processor = StreamProcessor.restore(self.config, state.get[0])
        else:
            processor = StreamProcessor(self.config)
        rows = pd.concat(list(frames), ignore_index=True)
        messages = rows[rows["offset"] >= 0].sort_values("offset")
        closes = sorted(int(c) for c in rows.loc[rows["offset"] < 0, "close_at"])
        produced: dict[str, list[pa.Table]] = {kind: [] for kind in KINDS}
        counts = self._feed(processor, part, messages, produced)
        for close_at in closes:
            when = datetime.fromtimestamp(close_at / 1e6, tz=UTC)
            _keep(produced, processor.flush_session_close(when))
        state.update((processor.snapshot(),))
        produced["stats"].append(pa.table(counts, schema=STATS_SCHEMA))
        out = [
            (part, kind, to_ipc(pa.concat_tables(tables)))
            for kind, tables in produced.items()
            if tables and sum(t.num_rows for t in tables)
        ]
        yield pd.DataFrame(out, columns=["part", "kind", "data"])

    def _feed(
        self,
        processor: Any,
        part: int,
        messages: pd.DataFrame,
        produced: dict[str, list[pa.Table]],
    ) -> dict[str, list[Any]]:
        """Decode ``messages``, feed them to ``processor`` in one call and keep the outputs."""
        from marketlake.bus.base import Message
        from marketlake.streaming.codec import decode_ticks
        from marketlake.streaming.runtime.dead_letters import dead_letter_rows, is_poison

        batches: list[pa.RecordBatch] = []
        decoded: list[tuple[Message, int]] = []
        for offset, key, value in zip(
            messages["offset"], messages["key"], messages["value"], strict=True
        ):
            message = Message(self.topic, part, int(offset), str(key or ""), bytes(value))
            try:
                batch = decode_ticks(message.value)
            except Exception as exc:  # not a tick batch: reading it again fails again
                now = datetime.now(UTC)
                produced["dead_letters"].append(
                    dead_letter_rows(self.group, [message], [None], "decode", exc, now)
                )
                continue
            batches.append(batch)
            decoded.append((message, batch.num_rows))
        counts: dict[str, list[Any]] = {
            "messages": [len(messages)],
            "ticks": [0],
            "duplicates": [0],
            "latencies_us": [[]],
        }
        if not batches:
            return counts
        ticks = pa.Table.from_batches(batches)
        try:
            out, fates = processor.process_ticks(ticks)
        except BaseException as exc:
            if not is_poison(exc):
                raise
            produced["dead_letters"].append(
                dead_letter_rows(
                    self.group,
                    [m for m, _ in decoded],
                    [n for _, n in decoded],
                    "process",
                    exc,
                    datetime.now(UTC),
                )
            )
            return counts
        done_us = time.time_ns() // 1000
        sent = messages["sent_at"].dropna()
        counts["latencies_us"] = [[done_us - int(s) for s in sent]]
        counts["ticks"] = [ticks.num_rows]
        counts["duplicates"] = [int((fates == DUPLICATE).sum())]
        produced["ticks"].append(_having(ticks, fates, NEW))
        if (fates == UNCHECKED).any():
            produced["unchecked"].append(_having(ticks, fates, UNCHECKED))
        _keep(produced, out)
        return counts


def _keep(produced: dict[str, list[pa.Table]], out: StreamOutput) -> None:
    for kind in OUTPUT_KINDS:
        table = getattr(out, kind)
        if table.num_rows:
            produced[kind].append(table)


def _having(table: pa.Table, fates: np.ndarray, fate: int) -> pa.Table:
    chosen = fates == fate
    return table if chosen.all() else table.filter(pa.array(chosen))
