"""What the simulator emits: canonical Arrow tables and the raw JSON record of a group.

The tables are built straight from the simulated arrays (one row per symbol and session, or
per corporate action), each symbol's rows together, in the group's order. The raw record of
a group lists its generated rows as compact JSON: column names once, then one array per row.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa

from marketlake.schemas import BAR_SCHEMA, CORPORATE_ACTION_SCHEMA, DIVIDEND, SPLIT, UTC_US

SOURCE = "sim"
BAR_FIELDS = ["symbol", "ts", "open", "high", "low", "close", "volume"]
ACTION_FIELDS = ["symbol", "ex_date", "kind", "ratio", "amount"]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ROW_END = b"],["


def bar_table(
    group: list[str], days: np.ndarray, paths: dict[str, np.ndarray], stamp: datetime
) -> pa.Table:
    """The bars of ``group`` on ``days`` (the sessions ``paths`` cover), symbol by symbol."""
    rows = len(days)
    owner = np.repeat(np.arange(len(group)), rows)
    columns = {
        "symbol": _texts(group, owner),
        "ts": _stamps(np.tile(days.astype("datetime64[us]").view(np.int64), len(group))),
    }
    for name in ("open", "high", "low", "close", "volume"):
        columns[name] = pa.array(paths[name].ravel())
    columns["source"] = _texts([SOURCE], np.zeros(len(owner), np.int64))
    columns["ingested_at"] = _stamps(np.full(len(owner), _micros(stamp), np.int64))
    return pa.table(columns, schema=BAR_SCHEMA)


def action_table(
    group: list[str], days: np.ndarray, paths: dict[str, np.ndarray], stamp: datetime
) -> pa.Table:
    """The splits and dividends of ``group`` on ``days`` (the sessions ``paths`` cover).

    Rows are in the group's order of symbols, then by ex-date, a dividend before a split on
    the same day.
    """
    split_i, split_t = np.nonzero(paths["split"] != 1.0)
    paid_i, paid_t = np.nonzero(paths["dividend"] > 0.0)
    owner = np.concatenate([paid_i, split_i])
    at = np.concatenate([paid_t, split_t])
    is_split = np.concatenate([np.zeros(len(paid_t), bool), np.ones(len(split_t), bool)])
    order = np.lexsort((is_split, at, owner))
    owner, at, is_split = owner[order], at[order], is_split[order]
    ratio = paths["split"][owner, at]
    amount = paths["dividend"][owner, at]
    kinds = [DIVIDEND, SPLIT]
    return pa.table(
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


def json_rows(table: pa.Table, columns: list[str]) -> memoryview:
    """The rows of ``table``'s ``columns`` as the insides of JSON arrays joined by ``],[``
    (``1,2],[3,4``; empty for no rows): numbers as numbers, texts quoted, timestamps as
    dates, nulls as ``null``.

    Polars' CSV writer formats the whole group in one pass, ``],[`` ending each row.
    """
    import io

    import polars as pl

    buffer = io.BytesIO()
    if table.num_rows:
        frame = pl.from_arrow(table.select(columns))
        assert isinstance(frame, pl.DataFrame)
        dated = [pl.col(c).dt.date() for c in columns if frame.schema[c] == pl.Datetime]
        frame.with_columns(dated).write_csv(
            buffer,
            include_header=False,
            quote_style="non_numeric",
            null_value="null",
            line_terminator=_ROW_END.decode(),
        )
    return buffer.getbuffer()[: -len(_ROW_END)]  # empty stays empty


def raw_json(
    symbols: list[str], seed: int, bar_rows: memoryview | bytes, action_rows: memoryview | bytes
) -> bytes:
    """The generated records of ``symbols`` as compact JSON: column names once, then one
    array per row (rows as :func:`json_rows` gives them)."""
    return b"".join(
        [
            f'{{"source":"{SOURCE}","seed":{int(seed)},"symbols":{_json_list(symbols)},'
            f'"bar_columns":{_json_list(BAR_FIELDS)},"bars":['.encode(),
            *_arrays(bar_rows),
            f'],"action_columns":{_json_list(ACTION_FIELDS)},"actions":['.encode(),
            *_arrays(action_rows),
            b"]}",
        ]
    )


def _arrays(rows: memoryview | bytes) -> tuple[memoryview | bytes, ...]:
    return (b"[", rows, b"]") if len(rows) else ()


def _json_list(names: list[str]) -> str:
    return "[" + ",".join(f'"{n}"' for n in names) + "]"
