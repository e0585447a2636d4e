"""A seeded simulator of daily bars on real exchange sessions.

Every symbol gets its own random streams, derived from ``(seed, symbol)`` with SHA-256, and is
simulated from a fixed origin (2000-01-03) forward. A bar therefore depends only on the seed,
the symbol and its session, never on the range asked for: an incremental run, a backfill and
one full run agree to the last bit.

The model: GARCH(1,1) log returns split into an overnight gap and an intraday move, rare
jumps at the open, high/low excursions beyond the open and close, volumes that rise with the
size of the move, quarterly dividends for about half of the symbols, and splits (2:1 up to
5:1) when the price climbs far above the symbol's usual level. Bars are as traded: on a split
ex-date prices fall by the ratio (and volume rises by it); on a dividend ex-date the open and
close reflect the cash paid out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import ClassVar

import numpy as np
import pyarrow as pa

from marketlake.calendar import DEFAULT_CALENDAR, get_sessions
from marketlake.schemas import BAR_SCHEMA, CORPORATE_ACTION_SCHEMA, DIVIDEND, SPLIT, UTC_US
from marketlake.sources.base import HistoryBatch, HistorySource
from marketlake.symbols import validate_symbols

SOURCE = "sim"
ORIGIN = date(2000, 1, 3)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_BLOCK = 256  # random draws come in blocks of sessions; the variance recursion too
_JUMP_ODDS = 0.004  # chance of a jump at the open, per session
_SPLIT_RATIOS = np.array([2.0, 2.0, 3.0, 2.0, 4.0, 3.0, 5.0, 2.0])
_MAX_SPLITS = 32
_CHUNK = 32  # symbols simulated together: keeps the working arrays small
_PARAMS = ("vol", "alpha", "beta", "drift", "level", "payer", "yield", "liquidity", "target")

_BAR_FIELDS = ["ts", "open", "high", "low", "close", "volume"]
_ACTION_FIELDS = ["ex_date", "kind", "ratio", "amount"]
Group = tuple[list[str], pa.Table, np.ndarray, pa.Table, np.ndarray]


def simulate_bars(
    symbols: Sequence[str],
    start: date,
    end: date,
    seed: int = 42,
    calendar: str = DEFAULT_CALENDAR,
    ingested_at: datetime | None = None,
) -> tuple[pa.Table, pa.Table]:
    """Simulate daily bars and corporate actions of ``symbols`` for sessions in [start, end].

    Sessions before 2000-01-03 or after today are not simulated. Returns ``(bars, actions)``
    in the canonical schemas, sorted by symbol then date.
    """
    names = sorted(validate_symbols(symbols))
    groups = list(_simulate_groups(names, start, end, seed, calendar, ingested_at))
    if not groups:
        return BAR_SCHEMA.empty_table(), CORPORATE_ACTION_SCHEMA.empty_table()
    return pa.concat_tables([g[1] for g in groups]), pa.concat_tables([g[3] for g in groups])


class SimSource(HistorySource):
    """Deterministic simulated history: any valid symbol, real sessions, as-traded bars."""

    name: ClassVar[str] = SOURCE

    def __init__(self, seed: int = 42, calendar: str = DEFAULT_CALENDAR) -> None:
        self.seed = seed
        self.calendar = calendar

    def fetch_symbol(self, symbol: str, start: date, end: date) -> HistoryBatch:
        """Simulate ``symbol`` for sessions in [start, end]."""
        return next(self.fetch_history([symbol], start, end))

    def fetch_history(
        self, symbols: Sequence[str], start: date, end: date
    ) -> Iterator[HistoryBatch]:
        """Simulate the ``symbols`` in groups, yielding one batch per symbol."""
        names = validate_symbols(symbols)
        done: set[str] = set()
        for group, bars, bar_owner, actions, action_owner in _simulate_groups(
            names, start, end, self.seed, self.calendar, None
        ):
            bar_rows = _csv_rows(bars, _BAR_FIELDS)
            action_rows = _csv_rows(actions, _ACTION_FIELDS)
            for i, symbol in enumerate(group):
                done.add(symbol)
                blo, bhi = np.searchsorted(bar_owner, [i, i + 1])
                alo, ahi = np.searchsorted(action_owner, [i, i + 1])
                yield HistoryBatch(
                    source=SOURCE,
                    batch_id=f"{symbol}-{start}-{end}",
                    bars=bars.slice(int(blo), int(bhi - blo)),
                    actions=actions.slice(int(alo), int(ahi - alo)),
                    raw=_raw_json(symbol, self.seed, bar_rows[blo:bhi], action_rows[alo:ahi]),
                    raw_format="json",
                )
        for symbol in names:
            if symbol not in done:  # nothing to simulate in [start, end]
                yield HistoryBatch(
                    source=SOURCE,
                    batch_id=f"{symbol}-{start}-{end}",
                    bars=BAR_SCHEMA.empty_table(),
                    raw=_raw_json(symbol, self.seed, [], []),
                    raw_format="json",
                )


def _simulate_groups(
    names: Sequence[str],
    start: date,
    end: date,
    seed: int,
    calendar: str,
    ingested_at: datetime | None,
) -> Iterator[Group]:
    """Yield the bars and actions of ``names`` a group at a time, with each row's owner index."""
    stamp = ingested_at or datetime.now(UTC)
    table = get_sessions(calendar)
    last = min(end, stamp.astimezone(UTC).date(), table.last)
    if not names or last < max(start, ORIGIN):
        return
    days = table.session_array(ORIGIN, last)
    first = int(np.searchsorted(days, np.datetime64(max(start, ORIGIN), "D")))
    for lo in range(0, len(names), _CHUNK):
        group = list(names[lo : lo + _CHUNK])
        paths = _simulate(group, days, seed)
        bars, bar_owner = _bar_table(group, days[first:], paths, first, stamp)
        actions, action_owner = _action_table(group, days, paths, first, stamp)
        yield group, bars, bar_owner, actions, action_owner


def _bar_table(
    group: list[str], days: np.ndarray, paths: dict[str, np.ndarray], first: int, stamp: datetime
) -> tuple[pa.Table, np.ndarray]:
    rows = len(days)
    owner = np.repeat(np.arange(len(group)), rows)
    columns = {
        "symbol": _texts(group, owner),
        "ts": _stamps(np.tile(days.astype("datetime64[us]").view(np.int64), len(group))),
    }
    for name in ("open", "high", "low", "close", "volume"):
        columns[name] = pa.array(paths[name][:, first:].ravel())
    columns["source"] = _texts([SOURCE], np.zeros(len(owner), np.int64))
    columns["ingested_at"] = _stamps(np.full(len(owner), _micros(stamp), np.int64))
    return pa.table(columns, schema=BAR_SCHEMA), owner


def _action_table(
    group: list[str], days: np.ndarray, paths: dict[str, np.ndarray], first: int, stamp: datetime
) -> tuple[pa.Table, np.ndarray]:
    split_i, split_t = np.nonzero(paths["split"][:, first:] != 1.0)
    paid_i, paid_t = np.nonzero(paths["dividend"][:, first:] > 0.0)
    owner = np.concatenate([paid_i, split_i])
    at = np.concatenate([paid_t, split_t]) + first
    is_split = np.concatenate([np.zeros(len(paid_t), bool), np.ones(len(split_t), bool)])
    order = np.lexsort((is_split, at, owner))
    owner, at, is_split = owner[order], at[order], is_split[order]
    ratio = paths["split"][owner, at]
    amount = paths["dividend"][owner, at]
    kinds = [DIVIDEND, SPLIT]
    table = pa.table(
        {
            "symbol": _texts(group, owner),
            "ex_date": _stamps(days[at].astype("datetime64[us]").view(np.int64)),
            "kind": _texts(kinds, is_split.astype(np.int64)),
            "ratio": pa.array(ratio, mask=~is_split),
            "amount": pa.array(amount, mask=is_split),
            "source": _texts([SOURCE], np.zeros(len(owner), np.int64)),
            "ingested_at": _stamps(np.full(len(owner), _micros(stamp), np.int64)),
        },
        schema=CORPORATE_ACTION_SCHEMA,
    )
    return table, owner


def _texts(values: list[str], index: np.ndarray) -> pa.Array:
    """A string array of ``values[index]``."""
    codes = pa.array(np.asarray(index, np.int32))
    return pa.DictionaryArray.from_arrays(codes, pa.array(values, pa.string())).dictionary_decode()


def _stamps(micros: np.ndarray) -> pa.Array:
    """A UTC microsecond timestamp array from int64 microseconds since the epoch."""
    buffer = pa.py_buffer(np.ascontiguousarray(micros, np.int64))
    return pa.Array.from_buffers(UTC_US, len(micros), [None, buffer])


def _micros(stamp: datetime) -> int:
    return (stamp.astimezone(UTC) - _EPOCH) // timedelta(microseconds=1)


def _csv_rows(table: pa.Table, columns: list[str]) -> list[str]:
    """Each row of ``table[columns]`` as the inside of a JSON array (the first column a date)."""
    import polars as pl

    frame = pl.from_arrow(table.select(columns))
    assert isinstance(frame, pl.DataFrame)
    if frame.is_empty():
        return []
    text = frame.with_columns(pl.col(columns[0]).dt.date()).write_csv(
        include_header=False, quote_style="non_numeric", null_value="null"
    )
    return text.splitlines()


def _raw_json(symbol: str, seed: int, bar_rows: list[str], action_rows: list[str]) -> bytes:
    """The generated records as compact JSON: column names once, then one array per row."""
    return (
        f'{{"source":"{SOURCE}","seed":{int(seed)},"symbol":"{symbol}",'
        f'"bar_columns":{_json_list(_BAR_FIELDS)},"bars":[{_json_rows(bar_rows)}],'
        f'"action_columns":{_json_list(_ACTION_FIELDS)},"actions":[{_json_rows(action_rows)}]}}'
    ).encode()


def _json_rows(rows: list[str]) -> str:
    return "[" + "],[".join(rows) + "]" if rows else ""


def _json_list(names: list[str]) -> str:
    return "[" + ",".join(f'"{n}"' for n in names) + "]"


def _streams(seed: int, symbol: str) -> tuple[np.random.Generator, np.random.Generator]:
    """Two random streams of one symbol (normals, uniforms), derived from ``(seed, symbol)``."""
    digest = hashlib.sha256(f"marketlake-sim:{seed}:{symbol}".encode()).digest()
    entropy = int.from_bytes(digest, "big")
    return (
        np.random.Generator(np.random.PCG64(np.random.SeedSequence([entropy, 0]))),
        np.random.Generator(np.random.PCG64(np.random.SeedSequence([entropy, 1]))),
    )


def _simulate(names: Sequence[str], days: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Simulate ``names`` over ``days`` (from the origin); arrays are (symbols, sessions).

    Draws come in whole blocks of sessions, block after block, so the draws of a session do
    not depend on how many sessions are simulated.
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
    prev_close = np.concatenate([np.exp(log_start), close[:, :-1]], axis=1) / splits
    open_ = prev_close * np.exp(gap + log_div)
    reach = vol * 1.2
    high = np.maximum(open_, close) * (1.0 + uniform[1] * reach)
    low = np.minimum(open_, close) / (1.0 + uniform[2] * reach)
    surprise = np.abs(move) / np.sqrt(daily_var)
    shares = 2e5 * np.exp(5.0 * p["liquidity"]) * (0.3 + 0.7 * surprise)
    volume = np.round(shares * (0.7 + 0.6 * draw) * factor)
    return {
        "open": _price(open_),
        "high": _price(high),
        "low": _price(low),
        "close": _price(close),
        "volume": volume,
        "split": splits,
        "dividend": np.round(quarterly_yield * prev_close * ex_dates, 4),
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
