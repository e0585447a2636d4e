"""Price-move alerts on final windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from stream_reference import FIXED_NOW

from marketlake.errors import ConfigError
from marketlake.streaming import StreamConfig, StreamOutput, StreamProcessor
from marketlake.streaming.alerts import detect_alerts

OPEN = datetime(2025, 11, 25, 14, 30, tzinfo=UTC)


def _path(symbol: str, prices: list[float]) -> list[tuple[str, datetime, float, float]]:
    return [(symbol, OPEN + timedelta(minutes=i), p, 100.0) for i, p in enumerate(prices)]


def test_alert_when_a_window_moves_more_than_the_threshold(make_ticks) -> None:
    rising = [100.0, 100.5, 101.0, 102.0, 103.0] + [103.0] * 15  # +3 % within 5 minutes
    flat = [50.0, 50.2, 50.4, 50.5, 50.6] + [50.6] * 15  # +1.2 %: below the 2 % threshold
    ticks = make_ticks(_path("AAPL", rising) + _path("MSFT", flat))
    processor = StreamProcessor(StreamConfig(alert_pct=2.0), clock=lambda: FIXED_NOW)
    first = processor.process(ticks)
    out = StreamOutput.concat([first, processor.flush_all()])
    alerts = pl.from_arrow(out.alerts)
    assert set(alerts.get_column("symbol")) == {"AAPL"}
    assert set(alerts.get_column("kind")) == {"sliding_15m_5m"}
    # windows ending 14:35 (14:20-14:35: 100 -> 103), 14:40 and 14:45 hold the whole move
    ends = [OPEN + timedelta(minutes=m) for m in (5, 10, 15)]
    assert sorted(alerts.get_column("ts").to_list()) == ends
    assert alerts.get_column("pct_move").to_list() == pytest.approx([3.0, 3.0, 3.0])
    assert all("AAPL moved 3.0%" in d for d in alerts.get_column("detail").to_list())
    # a window starting after the move (14:35-14:50: 103 -> 103) raises nothing
    assert OPEN + timedelta(minutes=20) not in alerts.get_column("ts").to_list()


def test_alerts_on_moving_average_windows_when_asked(make_ticks) -> None:
    falling = [100.0 - 0.5 * i for i in range(10)]  # -4.5 % over 10 minutes
    config = StreamConfig(alert_pct=4.2, alert_kinds=("ma_15m",))
    processor = StreamProcessor(config, clock=lambda: FIXED_NOW)
    out = StreamOutput.concat(
        [processor.process(make_ticks(_path("NVDA", falling))), processor.flush_all()]
    )
    alerts = pl.from_arrow(out.alerts)
    assert set(alerts.get_column("kind")) == {"ma_15m"}
    # the ma_15m window of the last bar spans 100 -> 95.5 = -4.5 %;
    # the one before (-4.0 %) stays below 4.2 %
    assert alerts.get_column("pct_move").to_list() == pytest.approx([-4.5])


def test_unknown_alert_kind_is_rejected() -> None:
    with pytest.raises(ConfigError, match="alert_kinds"):
        StreamConfig(alert_kinds=("sliding_1h_1m",))


def _windows(final: bool, last_price: float) -> pl.DataFrame:
    start = int(OPEN.timestamp() * 1_000_000)
    return pl.DataFrame(
        {
            "symbol": ["AAPL", "MSFT"],
            "kind": ["sliding_15m_5m", "sliding_15m_5m"],
            "is_final": [final, final],
            "window_start": [start, start],
            "window_end": [start + 900_000_000, start + 900_000_000],
            "first_price": [100.0, 100.0],
            "last_price": [last_price, last_price],
        }
    )


def test_alerts_of_windows_in_several_chunks_one_without_alerts() -> None:
    # The emission's windows come in several chunks; a chunk whose rows all fail the filters
    # leaves an empty chunk among the moved rows, on which pl.format used to panic.
    parts = [_windows(True, 103.0), _windows(False, 103.0), _windows(True, 97.0)]
    windows = pl.concat(parts, rechunk=False)
    assert windows.n_chunks() == 3
    alerts = detect_alerts(windows, ("sliding_15m_5m",), 2.0)
    assert alerts.get_column("symbol").to_list() == ["AAPL", "MSFT", "AAPL", "MSFT"]
    assert alerts.get_column("pct_move").to_list() == pytest.approx([3.0, 3.0, -3.0, -3.0])
    assert alerts.get_column("detail").to_list()[0] == (
        "AAPL moved 3.0% in sliding_15m_5m window 2025-11-25T14:30Z..2025-11-25T14:45Z "
        "(first 100.0, last 103.0; threshold 2.0%)"
    )
