"""The fetch log written once: rows the re-fetch would close without asking for anything are
written already checked; every other row stays pending for the re-fetch after the drain."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from marketlake.catalogue import FETCH_LOG
from marketlake.pipeline.completeness import settle_log
from marketlake.pipeline.context import RunContext
from marketlake.pipeline.incremental import FETCH, REFETCH, FetchRequest, fetch_log_rows
from marketlake.pipeline.plan import plan_run
from marketlake.schemas import BAR_SCHEMA
from marketlake.settings import load_settings
from marketlake.sources.sim import SimSource

START, END = date(2024, 3, 4), date(2024, 3, 15)  # ten sessions


def run_context(home: Path, source: str = "sim") -> RunContext:
    settings = load_settings(home=home, symbols="AAPL,MSFT", source=source)
    return RunContext(settings, plan_run(settings, SimSource()), source=SimSource())


def bars(ctx: RunContext, symbol: str, skip: tuple[int, ...] = ()) -> pa.Table:
    """One bar per session of START..END for ``symbol``, without sessions at ``skip``."""
    days = [d for i, d in enumerate(ctx.calendar.session_array(START, END)) if i not in skip]
    n = len(days)
    stamps = [datetime.combine(d.astype(object), datetime.min.time(), UTC) for d in days]
    columns = {
        "symbol": [symbol] * n,
        "ts": stamps,
        "open": [10.0] * n,
        "high": [11.0] * n,
        "low": [9.0] * n,
        "close": [10.5] * n,
        "volume": [1000] * n,
        "source": ["sim"] * n,
        "ingested_at": [datetime.now(UTC)] * n,
    }
    return pa.table({f.name: columns.get(f.name) for f in BAR_SCHEMA}, schema=BAR_SCHEMA)


def log_of(ctx: RunContext, *symbols: str, kind: str = FETCH, source: str = "sim") -> pa.Table:
    requests = [FetchRequest(s, START, END, 10, np.array([], "datetime64[D]")) for s in symbols]
    return fetch_log_rows(requests, source, kind, ctx.run_id, ctx.now)


def checked(log: pa.Table) -> dict[str, bool]:
    return dict(
        zip(log.column("symbol").to_pylist(), log.column("checked").to_pylist(), strict=True)
    )


def test_a_span_with_every_session_is_settled(tmp_path: Path) -> None:
    ctx = run_context(tmp_path)
    held = pa.concat_tables([bars(ctx, "AAPL"), bars(ctx, "MSFT", skip=(4,))])
    settled = settle_log(ctx, log_of(ctx, "AAPL", "MSFT"), held)
    assert checked(settled) == {"AAPL": True, "MSFT": False}  # MSFT has a gap: re-fetch it


@pytest.mark.parametrize("skip", [(0,), (0, 1)])
def test_a_span_missing_its_first_sessions_waits_for_the_drain(
    tmp_path: Path, skip: tuple[int, ...]
) -> None:
    """Bars of another request could still come before them, making those sessions gaps."""
    ctx = run_context(tmp_path)
    settled = settle_log(ctx, log_of(ctx, "AAPL"), bars(ctx, "AAPL", skip=skip))
    assert checked(settled) == {"AAPL": False}


def test_held_bars_count_in_any_order_and_only_on_the_span(tmp_path: Path) -> None:
    """Held rows come as stored rows then new ones, may repeat a day or lie outside the
    span, and may belong to symbols the log does not name: only the span's sessions count."""
    from marketlake.pipeline.incremental import bar_days

    ctx = run_context(tmp_path)
    whole = bars(ctx, "AAPL")
    january = [datetime(2024, 1, 2 + i, tzinfo=UTC) for i in range(10)]
    outside = whole.set_column(
        1, BAR_SCHEMA.field("ts"), pa.array(january, BAR_SCHEMA.field("ts").type)
    )
    held = pa.concat_tables(
        [
            whole.slice(5),
            bars(ctx, "TSLA"),
            outside,
            whole.slice(0, 6),
            bars(ctx, "MSFT", skip=(9,)),
        ]
    )
    assert bar_days(held, ["AAPL"], None).num_rows == 21  # a day held twice
    settled = settle_log(ctx, log_of(ctx, "MSFT", "AAPL"), held)
    assert checked(settled) == {"AAPL": True, "MSFT": False}  # MSFT lacks its last session


def test_a_span_without_sessions_is_settled_with_or_without_bars(tmp_path: Path) -> None:
    ctx = run_context(tmp_path)
    weekend = FetchRequest(
        "AAPL", date(2024, 3, 9), date(2024, 3, 10), 0, np.array([], "datetime64[D]")
    )
    log = fetch_log_rows([weekend], "sim", FETCH, ctx.run_id, ctx.now)
    assert checked(settle_log(ctx, log, None)) == {"AAPL": True}
    assert checked(settle_log(ctx, log, bars(ctx, "MSFT"))) == {"AAPL": True}


def test_rows_without_bars_other_sources_and_refetches_are_left_as_they_are(
    tmp_path: Path,
) -> None:
    ctx = run_context(tmp_path)
    held = bars(ctx, "AAPL")
    assert checked(settle_log(ctx, log_of(ctx, "MSFT"), held)) == {"MSFT": False}
    assert checked(settle_log(ctx, log_of(ctx, "AAPL"), None)) == {"AAPL": False}
    other = settle_log(ctx, log_of(ctx, "AAPL", source="yahoo"), held)
    assert checked(other) == {"AAPL": False}
    assert checked(settle_log(ctx, log_of(ctx, "AAPL", kind=REFETCH), None)) == {"AAPL": True}


def test_file_imports_are_never_settled(tmp_path: Path) -> None:
    """File sources have no re-fetch: their rows stay as they were written."""
    ctx = run_context(tmp_path, source="csv")
    log = log_of(ctx, "AAPL", source="csv")
    assert checked(settle_log(ctx, log, bars(ctx, "AAPL"))) == {"AAPL": False}


def test_a_complete_run_writes_its_fetch_log_once(tmp_path: Path) -> None:
    from marketlake.pipeline.runner import Runner

    ctx = run_context(tmp_path / "home")
    assert Runner(ctx).run().succeeded
    table = ctx.tables.read(FETCH_LOG)
    assert table.num_rows == 2 and all(table.column("checked").to_pylist())
    assert ctx.tables.version(FETCH_LOG) == 0  # created checked: no second commit
    ctx.close()


def test_the_handed_over_fetch_log_is_what_the_lake_holds(tmp_path: Path) -> None:
    """A stage reads the fetch log once; later reads in the process take the rows handed
    over, which every merge keeps equal to the lake's."""
    from marketlake.pipeline.incremental import merge_fetch_log, read_fetch_log

    ctx = run_context(tmp_path)
    symbols = list(ctx.symbols)
    assert read_fetch_log(ctx, "sim", symbols).num_rows == 0  # nothing yet: handed over empty
    merge_fetch_log(ctx, log_of(ctx, "AAPL", "MSFT"))
    merge_fetch_log(ctx, settle_log(ctx, log_of(ctx, "AAPL"), bars(ctx, "AAPL")))
    merge_fetch_log(ctx, log_of(ctx, "MSFT", source="yahoo"))

    def rows(table: pa.Table) -> list[tuple[str, str, bool]]:
        columns = (table.column(c).to_pylist() for c in ("symbol", "source", "checked"))
        return sorted(zip(*columns, strict=True))

    held = read_fetch_log(ctx, "sim", symbols)
    assert rows(held) == [("AAPL", "sim", True), ("MSFT", "sim", False)]
    fresh = run_context(tmp_path)  # a new process: reads the lake
    assert rows(read_fetch_log(fresh, "sim", symbols)) == rows(held)
    assert rows(read_fetch_log(fresh, "yahoo", symbols)) == [("MSFT", "yahoo", False)]
    assert rows(read_fetch_log(ctx, "yahoo", symbols)) == [("MSFT", "yahoo", False)]


@pytest.mark.parametrize("bucket_rows", [1, 1_000_000])
def test_the_refetch_plan_does_not_depend_on_how_symbols_are_bucketed(
    tmp_path: Path, bucket_rows: int
) -> None:
    """Stored bar days are read a bucket of symbols at a time; the plan is the same."""
    from marketlake.catalogue import BARS_1D
    from marketlake.pipeline.completeness import plan_refetch
    from marketlake.pipeline.incremental import merge_fetch_log
    from marketlake.schemas import BAR_KEYS

    settings = load_settings(
        home=tmp_path, symbols="AAPL,MSFT", source="sim", runner={"bucket_rows": bucket_rows}
    )
    ctx = RunContext(settings, plan_run(settings, SimSource()), source=SimSource())
    stored = pa.concat_tables([bars(ctx, "AAPL", skip=(3,)), bars(ctx, "MSFT", skip=(5, 6))])
    ctx.tables.merge(BARS_1D, stored, BAR_KEYS)
    merge_fetch_log(ctx, log_of(ctx, "AAPL", "MSFT"))
    plan = plan_refetch(ctx)
    sessions = ctx.calendar.session_array(START, END)
    assert [(r.symbol, r.start, r.end, r.sessions) for r in plan.requests] == [
        ("AAPL", sessions[3].astype(object), sessions[3].astype(object), 1),
        ("MSFT", sessions[5].astype(object), sessions[6].astype(object), 2),
    ]
    assert {s: list(d) for s, d in plan.gaps.items()} == {
        "AAPL": [sessions[3]],
        "MSFT": [sessions[5], sessions[6]],
    }
    ctx.close()


@pytest.mark.parametrize("bucket_rows", [1, 1_000_000])
def test_the_fetch_plan_does_not_depend_on_how_symbols_are_bucketed(
    tmp_path: Path, bucket_rows: int
) -> None:
    """Stored bars are read a bucket of symbols at a time when planning what to fetch; the
    requests are the same: a gap in stored bars is asked for again, a span of the fetch log
    is not, a symbol with neither is fetched whole."""
    from marketlake.catalogue import BARS_1D
    from marketlake.pipeline.incremental import merge_fetch_log, plan_fetches
    from marketlake.schemas import BAR_KEYS

    settings = load_settings(
        home=tmp_path,
        symbols="AAPL,MSFT,NVDA",
        source="sim",
        start=START,
        end=END,
        runner={"bucket_rows": bucket_rows},
    )
    ctx = RunContext(settings, plan_run(settings, SimSource()), source=SimSource())
    ctx.tables.merge(BARS_1D, bars(ctx, "AAPL", skip=(3, 4)), BAR_KEYS)
    merge_fetch_log(ctx, log_of(ctx, "MSFT"))
    plan = plan_fetches(ctx)
    sessions = ctx.calendar.session_array(START, END)
    assert [(r.symbol, r.start, r.end, r.sessions) for r in plan.requests] == [
        ("AAPL", sessions[3].astype(object), sessions[4].astype(object), 2),
        ("NVDA", sessions[0].astype(object), sessions[-1].astype(object), 10),
    ]
    assert plan.up_to_date == ["MSFT"]
    ctx.close()
