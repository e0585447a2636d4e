"""The blocked indicator sweep and its kernels, bit for bit against straight computations."""

from __future__ import annotations

import numpy as np
import pytest
import talib

from marketlake.analytics import sweep
from marketlake.analytics.blocks import derive
from marketlake.analytics.kernels import obv, true_range
from marketlake.analytics.panel import allocate
from marketlake.analytics.smoothing import warm_up


def random_panels(symbols: int, bars: int, seed: int) -> dict[str, np.ndarray]:
    """Symbol-major OHLCV panels of random walks with a few NaN inputs."""
    rng = np.random.default_rng(seed)
    close = 100.0 + np.cumsum(rng.normal(0.0, 1.0, (symbols, bars)), axis=1)
    panels = {
        "close": close,
        "high": close + rng.uniform(0.0, 1.0, close.shape),
        "low": close - rng.uniform(0.0, 1.0, close.shape),
        "volume": rng.integers(1_000, 100_000, close.shape).astype(np.float64),
    }
    if bars > 50:
        panels["close"][0, bars // 2] = np.nan
        panels["high"][1, bars // 3] = np.nan
        panels["volume"][2 % symbols, bars // 4] = np.nan
    return panels


def unblocked(panels: sweep.Panels) -> dict[str, np.ndarray]:
    """Every sweep output from one pass of the warm-up recursions over all bars."""
    close = np.ascontiguousarray(panels.close.T)
    tr = true_range(panels.high, panels.low, panels.bars_close)
    state = warm_up(close, tr.T, close * close)
    state["obv"] = obv(panels.volume_close, panels.volume).T
    out = {name: np.empty(panels.close.shape) for name in sweep.OUTPUTS}
    with np.errstate(all="ignore"):
        derive(state, 0, out, warm=True)
    return out


@pytest.mark.parametrize("block", [1, 5, 128])
@pytest.mark.parametrize("bars", [1, 20, 34, 35, 36, 300])
def test_sweep_equals_one_unblocked_pass(
    monkeypatch: pytest.MonkeyPatch, block: int, bars: int
) -> None:
    monkeypatch.setattr(sweep, "BLOCK", block)
    raw = random_panels(3, bars, seed=bars + block)
    panels = sweep.Panels(
        close=raw["close"],
        high=raw["high"],
        low=raw["low"],
        bars_close=raw["close"],
        volume=raw["volume"],
        volume_close=raw["close"],
    )
    with np.errstate(all="ignore"):
        ours = sweep.sweep_indicators(panels)
    expected = unblocked(panels)
    for name in sweep.OUTPUTS:
        np.testing.assert_array_equal(ours[name], expected[name], err_msg=name)


def test_sweep_reads_other_layouts_for_atr_and_obv(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sweep, "BLOCK", 7)
    raw = random_panels(4, 120, seed=11)
    shifted = np.roll(raw["close"], 1, axis=1)
    panels = sweep.Panels(
        close=raw["close"],
        high=raw["high"],
        low=raw["low"],
        bars_close=shifted,
        volume=raw["volume"],
        volume_close=shifted * 1.5,
    )
    with np.errstate(all="ignore"):
        ours = sweep.sweep_indicators(panels)
    expected = unblocked(panels)
    for name in sweep.OUTPUTS:
        np.testing.assert_array_equal(ours[name], expected[name], err_msg=name)
    with np.errstate(all="ignore"):
        own = sweep.sweep_indicators(
            sweep.Panels(
                close=raw["close"],
                high=raw["high"],
                low=raw["low"],
                bars_close=raw["close"],
                volume=raw["volume"],
                volume_close=raw["close"],
            )
        )
    assert not np.array_equal(ours["atr_14"], own["atr_14"], equal_nan=True)
    assert not np.array_equal(ours["obv"], own["obv"], equal_nan=True)


def test_true_range_is_talibs_with_nan_and_inverted_bars() -> None:
    rng = np.random.default_rng(3)
    close = 50.0 + np.cumsum(rng.normal(0.0, 1.0, 400))
    high = close + rng.uniform(0.0, 1.0, 400)
    low = close - rng.uniform(0.0, 1.0, 400)
    high[10], low[20], close[30] = np.nan, np.nan, np.nan
    high[40:45], low[40:45] = low[40:45], high[40:45]  # high below low
    with np.errstate(all="ignore"):
        ours = true_range(high[None], low[None], close[None])[0]
    np.testing.assert_array_equal(ours, talib.TRANGE(high, low, close))


def test_obv_is_talibs_with_missing_and_infinite_volume() -> None:
    rng = np.random.default_rng(4)
    close = np.round(50.0 + np.cumsum(rng.normal(0.0, 1.0, 300)), 0)  # repeats: flat moves
    volume = rng.integers(1, 1_000, 300).astype(np.float64)
    close[100] = np.nan
    volume[150] = np.nan
    volume[np.flatnonzero(np.diff(close) == 0)[3] + 1] = np.inf
    with np.errstate(all="ignore"):
        ours = obv(close[None], volume[None])[0]
    np.testing.assert_array_equal(ours, talib.OBV(close, volume))


@pytest.mark.parametrize("shape", [(3, 5), (7,), (0, 4)])
def test_allocate_gives_writable_float64_arrays(shape: tuple[int, ...]) -> None:
    array = allocate(shape)
    assert array.shape == shape
    assert array.dtype == np.float64
    array.fill(2.5)
    assert (array == 2.5).all()
