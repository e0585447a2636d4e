"""The source contract: an adapter fetches one symbol's history; the base owns the loop."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import ClassVar

import pyarrow as pa

from marketlake.schemas import BAR_SCHEMA, CORPORATE_ACTION_SCHEMA, QUARANTINE_SCHEMA
from marketlake.symbols import parse_symbols

_NO_ACTIONS = CORPORATE_ACTION_SCHEMA.empty_table()
_NO_REJECTS = QUARANTINE_SCHEMA.empty_table()  # tables are immutable: one serves every batch


@dataclass
class HistoryBatch:
    """One fetch: canonical bars and corporate actions, plus the payload as received.

    ``raw`` is kept in the lake for audit under a name built from ``batch_id``, which must be
    deterministic for the same request (so a re-run overwrites instead of duplicating).
    ``rejects`` holds rows the adapter could not parse, in the quarantine schema.
    """

    source: str
    batch_id: str
    bars: pa.Table
    actions: pa.Table = field(default_factory=lambda: _NO_ACTIONS)
    raw: bytes = b""
    raw_format: str = "json"  # json | csv | parquet: the encoding of ``raw``
    rejects: pa.Table = field(default_factory=lambda: _NO_REJECTS)

    def __post_init__(self) -> None:
        if not self.bars.schema.equals(BAR_SCHEMA):
            raise TypeError(f"{self.source}: bars do not match the Bar schema")
        if not self.actions.schema.equals(CORPORATE_ACTION_SCHEMA):
            raise TypeError(f"{self.source}: actions do not match the CorporateAction schema")


class HistorySource(ABC):
    """Base of historical daily-bar sources.

    Subclasses implement :meth:`fetch_symbol`. Sources that discover their own symbols (files)
    override :meth:`available_symbols`; sources whose natural unit is not one symbol may
    override :meth:`fetch_history` itself.
    """

    name: ClassVar[str]

    def open(self) -> None:  # noqa: B027 - optional hook
        """Acquire resources (HTTP sessions, file handles)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources."""

    def available_symbols(self) -> Sequence[str] | None:
        """Symbols this source holds, when it knows them (files); None when any may be asked."""
        return None

    def notes(self) -> list[str]:
        """What the run summary should say about this source's fetch, one line each: the files
        a folder source skipped, an endpoint a provider source gave up for another."""
        return []

    @abstractmethod
    def fetch_symbol(self, symbol: str, start: date, end: date) -> HistoryBatch:
        """Fetch daily bars and corporate actions of ``symbol`` for sessions in [start, end]."""

    def fetch_history(
        self, symbols: Sequence[str], start: date, end: date
    ) -> Iterator[HistoryBatch]:
        """Fetch every symbol in turn; symbols are parsed before any I/O."""
        for symbol in parse_symbols(symbols):
            yield self.fetch_symbol(symbol, start, end)

    def __enter__(self) -> HistorySource:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
