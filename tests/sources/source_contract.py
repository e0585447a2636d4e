"""The history source contract as test classes: subclass them and provide a ``case`` fixture.

``HistorySourceContract`` holds what every source must do; sources with a finite universe
(files, providers) also pass ``UnknownSymbolContract``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, time

import pyarrow as pa
import pytest

from marketlake.calendar import get_sessions
from marketlake.errors import SourceError, SymbolError
from marketlake.schemas import BAR_SCHEMA, CORPORATE_ACTION_SCHEMA, QUARANTINE_SCHEMA
from marketlake.sources.base import HistoryBatch, HistorySource


@dataclass(frozen=True)
class ContractCase:
    """One source under contract: how to open it and a request it can answer.

    ``symbol`` must have bars in [start, end]; ``unknown`` is a valid symbol the source does
    not hold (None when it makes up any symbol); ``io_count`` counts the requests the source
    has made so far, when it talks to a server; ``origin`` is the ``source`` every row
    carries when it is not the batch's (rows from files name their file: ``file:<name>``).
    """

    open: Callable[[], HistorySource]
    symbol: str
    start: date
    end: date
    unknown: str | None = None
    calendar: str = "XNYS"
    io_count: Callable[[], int] | None = None
    origin: str | None = None

    def fetch(self) -> HistoryBatch:
        """The batch of ``symbol`` over [start, end] from a freshly opened source."""
        with self.open() as source:
            return source.fetch_symbol(self.symbol, self.start, self.end)


def _without(table: pa.Table, column: str) -> pa.Table:
    return table.drop_columns([column])


class HistorySourceContract:
    """Behaviour every :class:`HistorySource` must show."""

    @pytest.fixture
    def case(self) -> ContractCase:
        raise NotImplementedError

    def test_tables_have_the_canonical_schemas(self, case: ContractCase) -> None:
        batch = case.fetch()
        assert batch.bars.schema.equals(BAR_SCHEMA)
        assert batch.actions.schema.equals(CORPORATE_ACTION_SCHEMA)
        assert batch.rejects.schema.equals(QUARANTINE_SCHEMA)
        assert batch.bars.num_rows > 0
        assert batch.batch_id and batch.raw_format in ("json", "csv", "parquet")

    def test_rows_are_of_the_asked_symbol_and_range(self, case: ContractCase) -> None:
        batch = case.fetch()
        assert set(batch.bars.column("symbol").to_pylist()) == {case.symbol}
        assert set(batch.actions.column("symbol").to_pylist()) <= {case.symbol}
        days = [ts.date() for ts in batch.bars.column("ts").to_pylist()]
        assert all(case.start <= day <= case.end for day in days)
        assert len(days) == len(set(days)), "one bar per symbol and session"
        assert {case.origin or batch.source} == set(batch.bars.column("source").to_pylist())

    def test_ts_is_the_session_date_at_utc_midnight(self, case: ContractCase) -> None:
        batch = case.fetch()
        sessions = get_sessions(case.calendar)
        stamps = batch.bars.column("ts").to_pylist() + batch.actions.column("ex_date").to_pylist()
        for ts in stamps:
            assert ts.utcoffset() is not None and ts.astimezone(UTC) == ts
            assert ts.time() == time(0, 0), ts
        for ts in batch.bars.column("ts").to_pylist():
            assert sessions.is_session(ts.date()), ts
        for ts in batch.bars.column("ingested_at").to_pylist():
            assert ts.tzinfo is not None

    def test_the_same_request_gives_the_same_batch(self, case: ContractCase) -> None:
        first, second = case.fetch(), case.fetch()
        assert first.batch_id == second.batch_id
        assert first.raw == second.raw and first.raw_format == second.raw_format
        assert _without(first.bars, "ingested_at").equals(_without(second.bars, "ingested_at"))
        assert _without(first.actions, "ingested_at").equals(
            _without(second.actions, "ingested_at")
        )
        assert _without(first.rejects, "quarantined_at").equals(
            _without(second.rejects, "quarantined_at")
        )

    def test_symbols_are_normalised(self, case: ContractCase) -> None:
        with case.open() as source:
            [batch] = [
                b
                for b in source.fetch_history([f" {case.symbol.lower()} "], case.start, case.end)
                if b.bars.num_rows
            ]
        assert set(batch.bars.column("symbol").to_pylist()) == {case.symbol}

    def test_an_invalid_symbol_fails_before_any_request(self, case: ContractCase) -> None:
        before = case.io_count() if case.io_count else 0
        with case.open() as source, pytest.raises(SymbolError, match="not a symbol!"):
            next(iter(source.fetch_history([case.symbol, "not a symbol!"], case.start, case.end)))
        if case.io_count:
            assert case.io_count() == before


class UnknownSymbolContract:
    """Sources that hold a finite set of symbols say which symbol they do not know."""

    def test_an_unknown_symbol_is_a_source_error_naming_it(self, case: ContractCase) -> None:
        assert case.unknown is not None
        with case.open() as source, pytest.raises(SourceError, match=case.unknown):
            source.fetch_symbol(case.unknown, case.start, case.end)
