"""What the simulator emits: canonical Arrow tables and the raw JSON record of a batch.

The tables are built straight from the simulated arrays (one row per symbol and session, or
per corporate action), each row carrying the index of its symbol in the group so that a
group's tables can be sliced per symbol. The raw record lists the generated rows as compact
JSON: column names once, then one array per row.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa

from marketlake.schemas import BAR_SCHEMA, CORPORATE_ACTION_SCHEMA, DIVIDEND, SPLIT, UTC_US

SOURCE = "sim"
BAR_FIELDS = ["ts", "open", "high", "low", "close", "volume"]
ACTION_FIELDS = ["ex_date", "kind", "ratio", "amount"]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def bar_table(
    group: list[str], days: np.ndarray, paths: dict[str, np.ndarray], stamp: datetime
) -> tuple[pa.Table, np.ndarray]:
    """The bars of ``group`` on ``days`` (the sessions ``paths`` cover), and each row's index
    in ``group``."""
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
    return pa.table(columns, schema=BAR_SCHEMA), owner


def action_table(
    group: list[str], days: np.ndarray, paths: dict[str, np.ndarray], stamp: datetime
) -> tuple[pa.Table, np.ndarray]:
    """The splits and dividends of ``group`` on ``days`` (the sessions ``paths`` cover), and
    each row's index in ``group``.

    Rows are sorted by owner, then ex-date, a dividend before a split on the same day.
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


class RowTexts:
    """The rows of a table as the insides of JSON arrays, in one text sliced by row range.

    The whole group is formatted at once (Polars' CSV writer: numbers as numbers, strings
    quoted) and each symbol's rows are cut out by their line ends, which costs a fraction of
    splitting the text into one Python string per row.
    """

    def __init__(self, table: pa.Table, columns: list[str]) -> None:
        import io

        import polars as pl

        frame = pl.from_arrow(table.select(columns))
        assert isinstance(frame, pl.DataFrame)
        buffer = io.BytesIO()
        if not frame.is_empty():
            frame.with_columns(pl.col(columns[0]).dt.date()).write_csv(
                buffer, include_header=False, quote_style="non_numeric", null_value="null"
            )
        # each line end becomes "],[" here, once for the group: a symbol's rows are then one
        # slice of the text (each line end moves two bytes further per line end before it)
        text = buffer.getvalue()
        ends = np.flatnonzero(np.frombuffer(text, np.uint8) == ord("\n"))
        self._text = text.replace(b"\n", b"],[")
        self._ends = ends + 2 * np.arange(len(ends))

    def json_rows(self, lo: int, hi: int) -> bytes:
        """Rows ``lo`` to ``hi`` (exclusive) as ``[..],[..]`` (empty for no rows)."""
        if hi <= lo:
            return b""
        begin = 0 if lo == 0 else int(self._ends[lo - 1]) + 3
        return b"".join((b"[", self._text[begin : int(self._ends[hi - 1])], b"]"))


def raw_json(symbol: str, seed: int, bar_rows: bytes, action_rows: bytes) -> bytes:
    """The generated records as compact JSON: column names once, then one array per row."""
    return b"".join(
        [
            f'{{"source":"{SOURCE}","seed":{int(seed)},"symbol":"{symbol}",'
            f'"bar_columns":{_json_list(BAR_FIELDS)},"bars":['.encode(),
            bar_rows,
            f'],"action_columns":{_json_list(ACTION_FIELDS)},"actions":['.encode(),
            action_rows,
            b"]}",
        ]
    )


def _json_list(names: list[str]) -> str:
    return "[" + ",".join(f'"{n}"' for n in names) + "]"
