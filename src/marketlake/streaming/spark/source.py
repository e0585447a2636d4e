"""The bus as a Spark streaming source: a Python data source reading offset ranges.

Spark keeps the source's offsets in the query's checkpoint: ``{"ends": [next offset per
partition], "close_at": µs}``. Each micro-batch reads, per bus partition, the messages between
the previous batch's ends and the new ones, one row per message (partition, offset, payload,
the producer's send time). No consumer group is joined; once Spark has completed a batch,
:meth:`BusStreamReader.commit` records its ends as the offsets of the processor's group, so the
bus's trim and lag count the query as a reader.

``close_at`` asks the processor to close the sessions that have closed by that instant, as the
embedded processor does once it has caught up: a query run until caught up sets it when it
starts, so its one batch (everything up to the topic's end) ends with one control row per
partition; kept in the offsets, the instant is the same when Spark replays the batch.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from pyspark.sql.datasource import DataSource, DataSourceStreamReader, InputPartition
from pyspark.sql.streaming.datasource import (
    ReadAllAvailable,
    ReadLimit,
    ReadMaxRows,
    SupportsTriggerAvailableNow,
)

SOURCE_NAME = "marketlake_bus"
SCHEMA = "part INT, offset BIGINT, key STRING, value BINARY, sent_at BIGINT, close_at BIGINT"
ARROW_SCHEMA = pa.schema(
    [
        ("part", pa.int32()),
        ("offset", pa.int64()),
        ("key", pa.string()),
        ("value", pa.binary()),
        ("sent_at", pa.int64()),
        ("close_at", pa.int64()),
    ]
)
_ROWS_PER_BATCH = 1024
SENT_AT = "sent_at_us"  # the producer's header (see marketlake.streaming.runtime.producer)


@dataclass
class BusRange(InputPartition):
    """Messages ``[start, end)`` of one bus partition, or (``close_at`` set) its control row."""

    partition: int
    start: int
    end: int
    close_at: int = 0


def parse_offsets(text: str | dict[str, Any]) -> dict[str, Any]:
    """Source offsets as Spark's progress reports them (JSON text) or as a dict."""
    return json.loads(text) if isinstance(text, str) else dict(text)


class BusStreamReader(DataSourceStreamReader, SupportsTriggerAvailableNow):
    """Reads ranges of the topic named in the options from the bus at ``bus`` (a URL)."""

    def __init__(self, options: dict[str, str]) -> None:
        self.bus_url = options["bus"]
        self.topic = options["topic"]
        self.group = options["group"]
        self.close_at = int(options.get("close_at") or 0)
        self.max_messages = int(options.get("max_messages") or 0)
        self._bus: Any = None
        self._ranges: Any = None
        self._target: list[int] | None = None  # the topic's end when availableNow began

    def _offsets(self) -> list[tuple[int, int]]:
        if self._ranges is None:
            from marketlake.bus.registry import open_bus

            self._bus = open_bus(self.bus_url)
            self._ranges = self._bus.ranges()
        offsets: list[tuple[int, int]] = self._ranges.offsets(self.topic)
        return offsets

    def initialOffset(self) -> dict[str, Any]:
        """The earliest messages kept, no session close asked."""
        return {"ends": [first for first, _ in self._offsets()], "close_at": 0}

    def prepareForTriggerAvailableNow(self) -> None:
        """Fix the topic's current end as the end of an ``availableNow`` run."""
        self._target = [end for _, end in self._offsets()]

    def getDefaultReadLimit(self) -> ReadLimit:
        """At most ``max_messages`` messages per micro-batch, when that option is set."""
        return ReadMaxRows(self.max_messages) if self.max_messages else ReadAllAvailable()

    def latestOffset(self, start: dict[str, Any], limit: ReadLimit) -> dict[str, Any]:
        """The topic's end (as it was when an ``availableNow`` run began), or less under a
        :class:`ReadMaxRows` limit (an even share per partition); ``close_at`` of the options
        once the end is reached, else the start's."""
        ends = self._target if self._target is not None else [end for _, end in self._offsets()]
        reached = list(start.get("ends", []))
        begun = [reached[i] if i < len(reached) else 0 for i in range(len(ends))]
        full = [max(end, first) for end, first in zip(ends, begun, strict=True)]
        chosen = full
        if isinstance(limit, ReadMaxRows):
            share = max(limit.max_rows // max(len(full), 1), 1)
            chosen = [min(end, first + share) for end, first in zip(full, begun, strict=True)]
        closing = self.close_at if chosen == full and self.close_at else 0
        return {"ends": chosen, "close_at": closing or int(start.get("close_at", 0))}

    def partitions(self, start: dict[str, Any], end: dict[str, Any]) -> Sequence[InputPartition]:
        """One range per partition with new messages; one control row per partition when
        ``close_at`` changed."""
        begun = list(start.get("ends", []))
        ranges: list[InputPartition] = []
        for partition, stop in enumerate(end["ends"]):
            first = begun[partition] if partition < len(begun) else 0
            if stop > first:
                ranges.append(BusRange(partition, first, stop))
        if end.get("close_at", 0) != start.get("close_at", 0):
            ranges += [BusRange(p, 0, 0, int(end["close_at"])) for p in range(len(end["ends"]))]
        return ranges

    def read(self, partition: InputPartition) -> Iterator[pa.RecordBatch]:
        """The rows of one range (or its control row), in Arrow batches."""
        assert isinstance(partition, BusRange)
        if partition.close_at:
            yield _rows([(partition.partition, -1, "", b"", None, partition.close_at)])
            return
        from marketlake.bus.registry import open_bus

        with open_bus(self.bus_url) as bus:
            ranges = bus.ranges()
            try:
                rows: list[tuple[Any, ...]] = []
                for m in ranges.read(
                    self.topic, partition.partition, partition.start, partition.end
                ):
                    sent = m.headers.get(SENT_AT)
                    sent_at = None if sent is None else int(sent)
                    rows.append((m.partition, m.offset, m.key, m.value, sent_at, 0))
                    if len(rows) >= _ROWS_PER_BATCH:
                        yield _rows(rows)
                        rows = []
                if rows:
                    yield _rows(rows)
            finally:
                ranges.close()

    def commit(self, end: dict[str, Any]) -> None:
        """Record ``end`` as the group's committed offsets on the bus."""
        if self._ranges is None:
            self._offsets()
        commit_offsets(self._ranges, self.group, self.topic, end)

    def stop(self) -> None:
        """Close the bus."""
        if self._ranges is not None:
            self._ranges.close()
            self._bus.close()
            self._ranges = self._bus = None


def _rows(rows: list[tuple[Any, ...]]) -> pa.RecordBatch:
    columns = list(zip(*rows, strict=True))
    return pa.RecordBatch.from_arrays(
        [pa.array(column, field.type) for column, field in zip(columns, ARROW_SCHEMA, strict=True)],
        schema=ARROW_SCHEMA,
    )


def commit_offsets(ranges: Any, group: str, topic: str, end: dict[str, Any]) -> None:
    """Commit the ``ends`` of source offsets ``end`` as ``group``'s offsets of ``topic``."""
    ranges.commit(group, topic, dict(enumerate(end.get("ends", []))))


class BusDataSource(DataSource):
    """``spark.readStream.format("marketlake_bus")`` with options bus, topic, group and,
    optionally, close_at (µs since the epoch) and max_messages (per micro-batch)."""

    @classmethod
    def name(cls) -> str:
        """The format name."""
        return SOURCE_NAME

    def schema(self) -> str:
        """One row per message: its partition, offset, payload and send time."""
        return SCHEMA

    def streamReader(self, schema: Any) -> DataSourceStreamReader:
        """A reader of the options' topic."""
        return BusStreamReader(dict(self.options))
