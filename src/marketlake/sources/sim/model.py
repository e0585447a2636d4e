"""The simulator's numeric model: seeded random streams turned into daily price paths.

GARCH(1,1) log returns split into an overnight gap and an intraday move, rare jumps at the
open, volatility capped at 100 % a year and close-to-close moves bounded by ``MAX_LOG_MOVE``
(so the validator's ``implausible_jump`` rule never fires on a simulated bar), high/low
excursions beyond the open and close, volumes that rise with the size of the move, quarterly
dividends for about half of the symbols, and splits (2:1 up to 5:1) when the price climbs far
above the symbol's usual level. Each symbol draws from its own streams, derived from
``(seed, symbol)`` with SHA-256, in whole blocks of sessions, so the values of a session never
depend on how many sessions are simulated.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

_BLOCK = 256  # random draws come in blocks of sessions; the variance recursion too
_JUMP_ODDS = 0.004  # chance of a jump at the open, per session
_SPLIT_RATIOS = np.array([2.0, 2.0, 3.0, 2.0, 4.0, 3.0, 5.0, 2.0])
_MAX_SPLITS = 32
_MAX_DAILY_VOL = 1.0 / np.sqrt(252.0)  # GARCH variance can run away: cap it at 100 % a year
MAX_LOG_MOVE = float(np.log(1.5))
"""Largest close-to-close log move of a session before splits and dividends: +50 % or -33 %,
well inside the default ``validation.max_daily_jump`` of 60 %."""
_PARAMS = ("vol", "alpha", "beta", "drift", "level", "payer", "yield", "liquidity", "target")


def _streams(seed: int, symbol: str) -> tuple[np.random.Generator, np.random.Generator]:
    """Two random streams of one symbol (normals, uniforms), derived from ``(seed, symbol)``."""
    digest = hashlib.sha256(f"marketlake-sim:{seed}:{symbol}".encode()).digest()
    entropy = int.from_bytes(digest, "big")
    return (
        np.random.Generator(np.random.PCG64(np.random.SeedSequence([entropy, 0]))),
        np.random.Generator(np.random.PCG64(np.random.SeedSequence([entropy, 1]))),
    )


def simulate_paths(
    names: Sequence[str], days: np.ndarray, seed: int, first: int = 0
) -> dict[str, np.ndarray]:
    """Simulate ``names`` over ``days`` (from the origin); arrays are (symbols, sessions) and
    cover the sessions from ``days[first]`` on.

    Returns the as-traded ``open``, ``high``, ``low``, ``close`` and ``volume``, the ``split``
    ratio of each session (1.0 when none) and the ``dividend`` paid on it (0.0 when none).

    Draws come in whole blocks of sessions, block after block, so the draws of a session do
    not depend on how many sessions are simulated. The variance, the closes and the splits
    are path-dependent and run from the origin; the rest is computed for the sessions asked
    for only (a run of the last 10 years skips 15 years of opens, highs, lows and volumes).
    """
    n = len(days)
    blocks = -(-n // _BLOCK)
    width = blocks * _BLOCK
    count = len(names)
    params = np.empty((count, len(_PARAMS)))
    normal = np.empty((2, count, width))
    uniform = np.empty((3, count, width))
    ratio_draws = np.empty((count, _MAX_SPLITS))
    for i, symbol in enumerate(names):
        normals, uniforms = _streams(seed, symbol)
        params[i] = uniforms.random(len(_PARAMS))
        ratio_draws[i] = uniforms.random(_MAX_SPLITS)
        normal[:, i] = (
            normals.standard_normal((blocks, 2, _BLOCK)).transpose(1, 0, 2).reshape(2, width)
        )
        uniform[:, i] = uniforms.random((blocks, 3, _BLOCK)).transpose(1, 0, 2).reshape(3, width)
    shocks = normal[0]
    normal, uniform = normal[:, :, :n], uniform[:, :, :n]
    p = {name: params[:, [j]] for j, name in enumerate(_PARAMS)}
    daily_var = (0.15 + 0.40 * p["vol"]) ** 2 / 252.0  # 15% to 55% a year
    alpha = 0.06 + 0.06 * p["alpha"]
    beta = 0.99 - alpha - 0.02 * p["beta"]  # persistence 0.97 to 0.99
    omega = daily_var * (1.0 - alpha - beta)
    vol = np.sqrt(_garch_variance(shocks, omega, alpha, beta, daily_var)[:, :n])
    np.minimum(vol, _MAX_DAILY_VOL, out=vol)
    drift = (0.02 + 0.14 * p["drift"]) / 252.0  # median growth 2% to 16% a year
    draw = uniform[0]
    jumpy = draw < _JUMP_ODDS  # given a jump, draw / odds is uniform again: it sets the size
    gap = normal[1] * vol
    gap *= 0.5
    gap += np.where(jumpy, 0.2 * (draw / _JUMP_ODDS - 0.55), 0.0)
    move = normal[0] * vol
    move *= np.sqrt(0.75)
    move += drift
    move += gap  # close-to-close log return, before dividends
    np.clip(move, -MAX_LOG_MOVE, MAX_LOG_MOVE, out=move)
    quarterly_yield = np.where(p["payer"] < 0.5, 0.005 + 0.035 * p["yield"], 0.0) / 4.0
    ex_dates = _dividend_dates(days)
    log_div = np.log1p(-quarterly_yield) * ex_dates
    log_start = np.log(10.0 + 190.0 * p["level"])
    log_close = np.cumsum(move + log_div, axis=1)
    log_close += log_start
    unsplit = np.exp(log_close)
    splits = _split_ratios(unsplit, ratio_draws, 120.0 + 180.0 * p["target"][:, 0])
    factor = np.cumprod(splits, axis=1)
    close = unsplit / factor
    before = np.exp(log_start) if first == 0 else close[:, first - 1 : first]
    close, splits, factor = close[:, first:], splits[:, first:], factor[:, first:]
    prev_close = np.concatenate([before, close[:, :-1]], axis=1) / splits
    open_ = prev_close * np.exp(gap[:, first:] + log_div[:, first:])
    reach = vol[:, first:] * 1.2
    high = np.maximum(open_, close) * (1.0 + uniform[1, :, first:] * reach)
    low = np.minimum(open_, close) / (1.0 + uniform[2, :, first:] * reach)
    surprise = np.abs(move[:, first:]) / np.sqrt(daily_var)
    shares = 2e5 * np.exp(5.0 * p["liquidity"]) * (0.3 + 0.7 * surprise)
    volume = np.round(shares * (0.7 + 0.6 * draw[:, first:]) * factor)
    return {
        "open": _price(open_),
        "high": _price(high),
        "low": _price(low),
        "close": _price(close),
        "volume": volume,
        "split": splits,
        "dividend": np.round(quarterly_yield * prev_close * ex_dates[first:], 4),
    }


def _garch_variance(
    z: np.ndarray, omega: np.ndarray, alpha: np.ndarray, beta: np.ndarray, h0: np.ndarray
) -> np.ndarray:
    """GARCH(1,1) variances ``h[t] = omega + (alpha * z[t-1]**2 + beta) * h[t-1]``.

    The recursion is linear in ``h``, so within a block it has the closed form
    ``h = P * (h_before + omega * cumsum(1 / P))`` with ``P`` the running product of the
    coefficients (short enough never to underflow); only block boundaries are stepped through.
    """
    count, width = z.shape
    coef = np.empty_like(z)
    coef[:, 0] = 1.0
    np.square(z[:, :-1], out=coef[:, 1:])
    coef *= alpha
    coef += beta
    blocks = coef.reshape(count, width // _BLOCK, _BLOCK)
    growth = np.cumprod(blocks, axis=2)
    inflow = growth * np.cumsum(1.0 / growth, axis=2) * omega[:, :, None]
    h = np.empty_like(blocks)
    before = h0[:, 0]
    for b in range(blocks.shape[1]):
        h[:, b] = growth[:, b] * before[:, None] + inflow[:, b]
        before = h[:, b, -1]
    return h.reshape(count, width)


def _dividend_dates(days: np.ndarray) -> np.ndarray:
    """1.0 on the first session on or after the 10th of February, May, August and November."""
    months = days.astype("datetime64[M]")
    day_of_month = (days - months.astype("datetime64[D]")).astype(np.int64) + 1
    month_of_year = months.astype(np.int64) % 12 + 1
    eligible = (month_of_year % 3 == 2) & (day_of_month >= 10)
    earlier = np.concatenate([[False], eligible[:-1] & (months[1:] == months[:-1])])
    return (eligible & ~earlier).astype(np.float64)


def _split_ratios(unsplit: np.ndarray, draws: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-session split ratios (1.0 when none): a split follows a close far above ``target``."""
    ratios = np.ones_like(unsplit)
    n = unsplit.shape[1]
    for i in range(unsplit.shape[0]):
        held, t0 = 1.0, 1
        for k in range(_MAX_SPLITS):
            ratio = _SPLIT_RATIOS[int(draws[i, k] * len(_SPLIT_RATIOS))]
            above = unsplit[i, t0 - 1 : n - 1] / held > target[i] * ratio * 1.2
            hit = int(np.argmax(above)) if len(above) else 0
            if not len(above) or not above[hit]:
                break
            t = t0 + hit
            ratios[i, t] = ratio
            held *= ratio
            t0 = t + 1
    return ratios


def _price(values: np.ndarray) -> np.ndarray:
    """Round to cents (to 1/100 cent below one dollar), keeping every price above zero."""
    rounded = np.round(values, 2)
    cheap = values < 1.0
    if cheap.any():
        rounded[cheap] = np.maximum(np.round(values[cheap], 4), 1e-4)
    return rounded
