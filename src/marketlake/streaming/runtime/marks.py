"""Where a topic's stream stands: the last tick produced per symbol, so a new run continues.

Producers record, per symbol, the latest event time and the highest ``seq`` they delivered
to a topic, in ``<home>/stream/<topic>.produced.json`` (replaced atomically). A new run of
the simulator or a replay without an explicit start reads it and continues after those ticks
(see :func:`marketlake.sources.registry.create_tick_source`).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from marketlake.errors import TerminalError

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Mark:
    """The last tick produced for one symbol: its event time and ``seq``."""

    ts: datetime
    seq: int


@dataclass
class ProducedMarks:
    """The marks of one topic, kept in memory and saved to ``path`` now and then."""

    path: Path
    save_every_s: float = 0.25
    marks: dict[str, Mark] = field(default_factory=dict)
    _saved_at: float = 0.0
    _dirty: bool = False

    @classmethod
    def of_topic(cls, home: Path, topic: str) -> ProducedMarks:
        """The marks of ``topic`` kept in ``home``."""
        return cls(home / "stream" / f"{topic}.produced.json")

    def load(self) -> dict[str, Mark]:
        """Read the stored marks (empty when the topic has none yet)."""
        if not self.path.exists():
            self.marks = {}
            return {}
        try:
            rows = json.loads(self.path.read_bytes())["symbols"]
            self.marks = {
                symbol: Mark(_EPOCH + timedelta(microseconds=int(row["ts_us"])), int(row["seq"]))
                for symbol, row in rows.items()
            }
        except (ValueError, KeyError, TypeError) as exc:
            raise TerminalError(
                f"the produced-ticks record {self.path} is corrupt ({exc}); delete it to "
                "start the stream afresh"
            ) from exc
        return dict(self.marks)

    def observe(self, symbol: str, ticks: pa.RecordBatch) -> None:
        """Note a batch of ``symbol``'s ticks as sent (saved by :meth:`save`)."""
        if ticks.num_rows == 0:
            return
        top = pc.max(ticks.column("ts")).as_py()
        seq = pc.max(ticks.column("seq")).as_py()
        old = self.marks.get(symbol)
        if old is None or top > old.ts or seq > old.seq:
            self.marks[symbol] = Mark(
                max(top, old.ts) if old else top, max(seq, old.seq) if old else seq
            )
            self._dirty = True

    def save(self, force: bool = False) -> None:
        """Store the marks of delivered ticks, at most every ``save_every_s`` unless ``force``."""
        now = time.monotonic()
        if not self._dirty or (not force and now - self._saved_at < self.save_every_s):
            return
        rows = {
            symbol: {"ts_us": (mark.ts - _EPOCH) // timedelta(microseconds=1), "seq": mark.seq}
            for symbol, mark in sorted(self.marks.items())
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"symbols": rows}))
        os.replace(temporary, self.path)
        self._saved_at = now
        self._dirty = False
