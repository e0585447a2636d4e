"""The live tick simulator and the replay of recorded 1-minute bars."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest

from marketlake.calendar import get_sessions
from marketlake.errors import ConfigError, SourceError, SymbolError
from marketlake.schemas import TICK_SCHEMA
from marketlake.sources.live import ReplaySource, SimTickSource
from marketlake.streaming import StreamConfig, StreamOutput, StreamProcessor
from streaming.stream_reference import FIXED_NOW

START = datetime(2025, 11, 25, 20, 50, tzinfo=UTC)  # ten minutes before the close
SYMBOLS = ["AAPL", "MSFT", "NVDA"]


def _table(source: SimTickSource | ReplaySource) -> pl.DataFrame:
    batches = list(source.ticks())
    assert all(b.schema.equals(TICK_SCHEMA) for b in batches)
    frame = pl.from_arrow(pa.Table.from_batches(batches, TICK_SCHEMA))
    assert isinstance(frame, pl.DataFrame)
    return frame


class FakeClock:
    """Simulated wall time: sleeping advances it."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds


def test_sim_is_deterministic_for_a_seed_and_independent_of_batch_size() -> None:
    one = _table(SimTickSource(SYMBOLS, start=START, count=20_000, batch_size=700))
    two = _table(SimTickSource(SYMBOLS, start=START, count=20_000, batch_size=20_000))
    other = _table(SimTickSource(SYMBOLS, seed=7, start=START, count=20_000))
    assert one.equals(two)
    assert not one.equals(other)
    assert one.height == 20_000


def test_sim_seq_increases_per_symbol_and_times_stay_in_sessions() -> None:
    ticks = _table(SimTickSource(SYMBOLS, start=START, count=30_000, event_rate_per_s=20.0))
    for _, group in ticks.group_by("symbol"):
        seq = group.get_column("seq")
        assert seq.to_list() == list(range(1, group.height + 1))
    sessions = get_sessions("XNYS")
    days = {ts.date() for ts in ticks.get_column("ts").to_list()}
    assert len(days) == 2  # the stream crossed the close into the next session
    for day in days:
        open_, close = sessions.open_close(day)
        stamps = ticks.filter(pl.col("ts").dt.date() == day).get_column("ts")
        assert stamps.min() >= open_ and stamps.max() < close
    assert ticks.get_column("ts").is_sorted()  # no disorder asked for
    assert (ticks.get_column("price") > 0).all()
    assert (ticks.get_column("size") >= 1).all()
    assert set(ticks.get_column("source")) == {"sim"}


def test_sim_duration_limits_event_time() -> None:
    start = datetime(2025, 11, 25, 15, 0, tzinfo=UTC)
    ticks = _table(SimTickSource(["AAPL"], start=start, duration_s=120.0, event_rate_per_s=20.0))
    assert ticks.get_column("ts").min() >= start
    assert ticks.get_column("ts").max() < start + timedelta(seconds=120)
    assert 1_000 < ticks.height < 4_000


def test_sim_late_and_out_of_order_ticks() -> None:
    start = datetime(2025, 11, 25, 15, 0, tzinfo=UTC)
    ticks = _table(
        SimTickSource(
            ["AAPL"],
            start=start,
            count=20_000,
            event_rate_per_s=50.0,
            out_of_order_fraction=0.1,
            late_fraction=0.05,
            late_by_s=30.0,
        )
    )
    behind = ticks.with_columns(lag=pl.col("ts").cum_max() - pl.col("ts"))
    late = behind.filter(pl.col("lag") > timedelta(seconds=25)).height
    disordered = behind.filter(
        (pl.col("lag") > timedelta(0)) & (pl.col("lag") <= timedelta(seconds=2))
    ).height
    assert 0.04 * ticks.height < late < 0.06 * ticks.height
    assert 0.05 * ticks.height < disordered < 0.15 * ticks.height
    assert ticks.get_column("seq").is_sorted()


def test_sim_pacing_follows_the_rate_in_wall_time() -> None:
    clock = FakeClock()
    source = SimTickSource(
        ["AAPL"], rate_per_s=1_000.0, start=START, count=5_000, clock=clock, sleep=clock.sleep
    )
    ticks = _table(source)
    assert ticks.height == 5_000
    assert clock.slept == pytest.approx(5.0, abs=0.01)  # 5,000 ticks at 1,000 per second


def test_sim_rejects_bad_options() -> None:
    with pytest.raises(SymbolError):
        SimTickSource(["not valid"])
    with pytest.raises(ConfigError):
        SimTickSource(["AAPL"], late_fraction=2.0)
    with pytest.raises(ConfigError):
        SimTickSource(["AAPL"], rate_per_s=0)


CSV = """Date,Open,High,Low,Close,Volume
2024-07-01 09:30:00,100.0,101.5,99.5,101.0,400
2024-07-01 09:31:00,101.0,101.2,100.1,100.2,800
2024-12-02 09:30:00,50.0,50.5,49.0,49.5,1000
"""


def test_replay_of_a_small_csv_rebuilds_its_bars(tmp_path: Path) -> None:
    path = tmp_path / "ABC_1min.csv"
    path.write_text(CSV)
    ticks = _table(ReplaySource(path, speed=0))
    assert ticks.height == 12
    assert set(ticks.get_column("symbol")) == {"ABC"}
    assert ticks.get_column("seq").to_list() == list(range(1, 13))
    # 09:30 New York is 13:30 UTC in July (EDT) and 14:30 UTC in December (EST)
    firsts = ticks.filter(pl.col("seq").is_in([1, 5, 9])).get_column("ts").to_list()
    assert firsts == [
        datetime(2024, 7, 1, 13, 30, tzinfo=UTC),
        datetime(2024, 7, 1, 13, 31, tzinfo=UTC),
        datetime(2024, 12, 2, 14, 30, tzinfo=UTC),
    ]
    assert ticks.get_column("price").to_list()[:4] == [100.0, 99.5, 101.5, 101.0]  # O L H C
    assert ticks.get_column("price").to_list()[4:8] == [101.0, 101.2, 100.1, 100.2]  # O H L C

    processor = StreamProcessor(StreamConfig(), clock=lambda: FIXED_NOW)
    out = StreamOutput.concat(
        [
            processor.process(pa.Table.from_pandas(ticks.to_pandas(), schema=TICK_SCHEMA)),
            processor.flush_all(),
        ]
    )
    bars = pl.from_arrow(out.bars_1m).select("open", "high", "low", "close", "volume")
    assert bars.rows() == [
        (100.0, 101.5, 99.5, 101.0, 400.0),
        (101.0, 101.2, 100.1, 100.2, 800.0),
        (50.0, 50.5, 49.0, 49.5, 1000.0),
    ]


def test_replay_close_mode_end_labels_and_pacing(tmp_path: Path) -> None:
    path = tmp_path / "bars.csv"
    path.write_text(CSV)
    clock = FakeClock()
    source = ReplaySource(
        path,
        speed=10.0,
        symbol="xyz",
        mode="close",
        bar_label="end",
        max_gap_s=60.0,
        clock=clock,
        sleep=clock.sleep,
    )
    ticks = _table(source)
    assert ticks.get_column("symbol").to_list() == ["XYZ"] * 3
    assert ticks.get_column("price").to_list() == [101.0, 100.2, 49.5]
    assert ticks.get_column("size").to_list() == [400.0, 800.0, 1000.0]
    # an end-labelled 09:30 bar covers 09:29-09:30; its close tick is one second before 09:30
    assert ticks.get_column("ts").to_list()[0] == datetime(2024, 7, 1, 13, 29, 59, tzinfo=UTC)
    # 60 s between the first bars, the five-month gap shortened to 60 s; at 10x: 12 s
    assert clock.slept == pytest.approx(12.0, abs=0.01)


def test_replay_refuses_unreadable_files(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("when,price\n2024-07-01,1\n")
    with pytest.raises(SourceError, match="time column"):
        list(ReplaySource(path, speed=0, symbol="BAD").ticks())
    path.write_text("time,open,high,low,close,volume\nyesterday,1,1,1,1,1\n")
    with pytest.raises(SourceError, match="cannot parse"):
        list(ReplaySource(path, speed=0, symbol="BAD").ticks())
    with pytest.raises(ConfigError):
        ReplaySource(path, speed=-1, symbol="BAD")


def _recorded(path: Path) -> pl.DataFrame:
    frame = pl.read_csv(path)
    return frame.rename({c: c.lower() for c in frame.columns})


@pytest.mark.parametrize(
    ("name", "label", "fmt", "first_utc"),
    [
        (
            "SP500_index_1min_2019-11-05_2019-11-08.csv",
            "start",
            "%m/%d/%Y %H:%M",
            datetime(2019, 11, 5, 14, 30),
        ),
        (
            "MSFT_1min_extended_av_2020-11-23_2020-12-18.csv",
            "end",
            "%Y-%m-%d %H:%M:%S",
            datetime(2020, 11, 23, 9, 0),
        ),
    ],
)
def test_replay_of_real_recordings(
    real_data: Path, name: str, label: str, fmt: str, first_utc: datetime
) -> None:
    path = real_data / "intraday" / name
    recorded = _recorded(path)
    ticks = _table(ReplaySource(path, speed=0, bar_label=label))  # type: ignore[arg-type]
    assert ticks.height == 4 * recorded.height
    assert ticks.get_column("ts").min() == first_utc.replace(tzinfo=UTC)
    processor = StreamProcessor(StreamConfig(ma_horizons=()), clock=lambda: FIXED_NOW)
    batches = pa.Table.from_pandas(ticks.to_pandas(), schema=TICK_SCHEMA).to_batches(20_000)
    out = StreamOutput.concat([processor.process(b) for b in batches] + [processor.flush_all()])
    bars = pl.from_arrow(out.bars_1m).sort("ts")
    assert bars.height == recorded.height
    assert out.late.num_rows == 0 and out.quarantine.num_rows == 0
    stamp = pl.col(recorded.columns[0]).str.to_datetime(format=fmt)
    want = recorded.sort(stamp)  # files may be newest first
    for column in ("open", "high", "low", "close"):
        assert bars.get_column(column).to_list() == want.get_column(column).to_list()
    assert (
        bars.get_column("volume").to_list() == want.get_column("volume").cast(pl.Float64).to_list()
    )


def test_a_streamed_day_aggregates_to_the_batch_simulators_daily_bar() -> None:
    from marketlake.sources.sim.source import simulate_bars

    day = datetime(2025, 11, 28, tzinfo=UTC)  # an early close (13:00 New York)
    symbols = ["AAPL", "META", "NVDA", "BRK.B"]
    source = SimTickSource(symbols, seed=11, start=day, duration_s=86_400.0, event_rate_per_s=6.0)
    ticks = _table(source).filter(pl.col("ts").dt.date() == day.date())
    streamed = (
        ticks.sort("ts", "seq")
        .group_by("symbol")
        .agg(
            open=pl.col("price").first(),
            high=pl.col("price").max(),
            low=pl.col("price").min(),
            close=pl.col("price").last(),
            volume=pl.col("size").sum(),
        )
        .sort("symbol")
    )
    bars, _ = simulate_bars(symbols, day.date(), day.date(), seed=11)
    batch = pl.from_arrow(bars)
    assert isinstance(batch, pl.DataFrame)
    expected = batch.select("symbol", "open", "high", "low", "close", "volume").sort("symbol")
    assert streamed.equals(expected)
    assert (ticks.get_column("size") >= 1).all()


def test_a_stream_started_later_continues_the_same_market() -> None:
    whole = _table(SimTickSource(SYMBOLS, start=START, count=6_000, event_rate_per_s=10.0))
    later = START + timedelta(minutes=4, seconds=30)
    tail = _table(SimTickSource(SYMBOLS, start=later, count=3_000, event_rate_per_s=10.0))
    same = whole.filter(pl.col("ts") >= later)
    assert 0 < same.height < tail.height
    assert tail.head(same.height).drop("seq").equals(same.drop("seq"))
    assert tail.get_column("seq").min() == 1
    resumed = SimTickSource(
        SYMBOLS, start=later, count=3_000, event_rate_per_s=10.0, seq_from={"AAPL": 100}
    )
    aapl = _table(resumed).filter(pl.col("symbol") == "AAPL").get_column("seq")
    assert aapl.to_list() == list(range(101, 101 + aapl.len()))


def test_a_resumed_sim_continues_in_an_open_session_and_moves_on_after_a_closed_one() -> None:
    from marketlake.sources.live.sim import resume_start

    last = datetime(2024, 3, 4, 15, 0, 0, 5, tzinfo=UTC)
    during = datetime(2024, 3, 4, 16, 0, tzinfo=UTC)  # the session is still open
    assert resume_start(last, "XNYS", now=during) == last + timedelta(microseconds=1)
    after = datetime(2024, 3, 4, 22, 0, tzinfo=UTC)
    assert resume_start(last, "XNYS", now=after) == datetime(2024, 3, 5, 14, 30, tzinfo=UTC)
    friday = datetime(2024, 3, 8, 20, 59, tzinfo=UTC)
    weekend = datetime(2024, 3, 9, tzinfo=UTC)
    assert resume_start(friday, "XNYS", now=weekend) == datetime(2024, 3, 11, 13, 30, tzinfo=UTC)
