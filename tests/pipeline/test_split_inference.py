"""Series without split information keep their history, through `marketlake run`.

Alpha Vantage's raw daily files have prices as traded and no split events. Every bar is kept;
the splits are inferred from price gaps that match a split ratio with the inverse volume
change, and adjusted prices are continuous across them. A special distribution (GOOGL's Class C
shares, paid as a $567.97 dividend) is kept. Quarantine rows of an older lake that a later run
stores after all are marked resolved and no longer count as current; splits the source reports
later replace the inferred ones.
"""

from __future__ import annotations

import hashlib
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from marketlake.catalogue import BARS_1D
from marketlake.lake import LakeStorage, LakeTables
from marketlake.records import record_json
from marketlake.schemas import BAR_KEYS, CORPORATE_ACTION_SCHEMA, QUARANTINE_KEYS, UTC_US
from tests.pipeline.cli import marketlake, sql_json

AAPL = "AAPL_daily_raw_av_1999-2025.csv"
NVDA = "NVDA_daily_raw_av_1999-2024.csv"
INFERRED = [
    ("AAPL", "2000-06-21", 2.0),
    ("AAPL", "2005-02-28", 2.0),
    ("AAPL", "2014-06-09", 7.0),
    ("AAPL", "2020-08-31", 4.0),
    ("NVDA", "2000-06-27", 2.0),
    ("NVDA", "2006-04-07", 2.0),
    ("NVDA", "2007-09-11", 1.5),
    ("NVDA", "2021-07-20", 4.0),
]
OLD = datetime(2025, 6, 1, 12, tzinfo=UTC)


def _run(home: Path, path: Path) -> str:
    proc = marketlake("run", "--home", str(home), "--source", "csv", "--path", str(path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return " ".join(proc.stdout.split())


def _closes(home: Path, table: str, symbol: str, first: str, last: str) -> list[float]:
    rows = sql_json(
        home,
        f"SELECT close FROM {table} WHERE symbol = '{symbol}' "
        f"AND ts BETWEEN '{first}' AND '{last}' ORDER BY ts",
    )
    return [r["close"] for r in rows]


@pytest.fixture(scope="module")
def raw_run(real_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("av_raw")
    for name in (AAPL, NVDA):
        shutil.copy(real_data / "daily" / "alphavantage_raw" / name, folder / name)
    home = tmp_path_factory.mktemp("home")
    return home, _run(home, folder)


def test_every_bar_is_kept_and_the_splits_are_inferred(raw_run: tuple[Path, str]) -> None:
    home, summary = raw_run
    counts = sql_json(home, "SELECT symbol, count(*) AS n FROM bars_1d GROUP BY 1 ORDER BY 1")
    assert counts == [{"symbol": "AAPL", "n": 6381}, {"symbol": "NVDA", "n": 6190}]
    assert sql_json(home, "SELECT count(*) AS n FROM quarantine") == [{"n": 0}]
    actions = sql_json(
        home,
        "SELECT symbol, CAST(ex_date AS DATE) AS day, kind, ratio, source, inferred "
        "FROM corporate_actions ORDER BY symbol, ex_date",
    )
    assert [(a["symbol"], a["day"], a["ratio"]) for a in actions] == INFERRED
    assert {(a["kind"], a["source"], a["inferred"]) for a in actions} == {
        ("split", f"file:{AAPL}", True),  # inferred from the bars of that file
        ("split", f"file:{NVDA}", True),
    }
    assert "8 splits inferred from the bars" in summary


def test_adjusted_prices_are_continuous_across_an_inferred_7_for_1_split(
    raw_run: tuple[Path, str],
) -> None:
    home, _ = raw_run
    traded = _closes(home, "bars_1d", "AAPL", "2014-06-06", "2014-06-09")
    adjusted = _closes(home, "bars_1d_adjusted", "AAPL", "2014-06-06", "2014-06-09")
    assert traded == [645.57, 93.7]
    assert abs(adjusted[1] / adjusted[0] - 1.0) < 0.02


def test_a_special_distribution_is_kept_with_the_history_before_it(
    real_data: Path, tmp_path: Path
) -> None:
    name = "GOOGL_daily_adjusted_av_to-2020-12-04.csv"
    csv = tmp_path / name
    shutil.copy(real_data / "daily" / "alphavantage_adjusted" / name, csv)
    home = tmp_path / "h"
    _run(home, csv)
    assert sql_json(home, "SELECT count(*) AS n FROM bars_1d") == [{"n": 4104}]
    assert sql_json(home, "SELECT rule, count(*) AS n FROM quarantine GROUP BY 1") == []
    (paid,) = sql_json(
        home,
        "SELECT amount, inferred FROM corporate_actions "
        "WHERE kind = 'dividend' AND ex_date = '2014-04-03'",
    )
    assert paid == {"amount": 567.9717, "inferred": False}
    assert sql_json(home, "SELECT count(*) AS n FROM corporate_actions WHERE inferred") == [
        {"n": 0}
    ]
    adjusted = _closes(home, "bars_1d_adjusted", "GOOGL", "2014-04-02", "2014-04-03")
    assert abs(adjusted[1] / adjusted[0] - 1.0) < 0.02  # as traded: 1135.10, then 571.50


def _make_it_old(home: Path) -> int:
    """Turn the lake under ``home`` into what an older version left: AAPL's bars before its
    last split quarantined as ``unadjusted_split`` (ids hashing ``ingested_at``, no
    ``resolved_at``/``resolution`` columns) and a corporate-actions table without
    ``inferred``. Returns the number of bars quarantined."""
    tables = LakeTables(LakeStorage.from_url((home / "lake").as_uri()))
    bars = tables.read(BARS_1D)
    before = pc.less(bars.column("ts"), pa.scalar(datetime(2020, 8, 31, tzinfo=UTC), UTC_US))
    lost = bars.filter(before).to_pylist()
    records = [record_json({**row, "ingested_at": OLD}) for row in lost]
    tables.merge(
        "quarantine/bars_1d",
        pa.table(
            {
                "dataset": ["bars_1d"] * len(lost),
                "record_id": [hashlib.sha1(f"bars_1d\n{r}".encode()).hexdigest() for r in records],
                "rule": ["unadjusted_split"] * len(lost),
                "detail": ["prices before 2020-08-31 are ~4x those after, with no split event"]
                * len(lost),
                "symbol": [row["symbol"] for row in lost],
                "ts": pa.array([row["ts"] for row in lost], UTC_US),
                "record": records,
                "source": [row["source"] for row in lost],
                "quarantined_at": pa.array([OLD] * len(lost), UTC_US),
            }
        ),
        QUARANTINE_KEYS,
    )
    tables.replace_symbols(BARS_1D, bars.filter(pc.invert(before)), ["AAPL"], BAR_KEYS)
    shutil.rmtree(home / "lake" / "curated" / "corporate_actions")
    dividend = {
        "symbol": "AAPL",
        "ex_date": datetime(2020, 8, 7, tzinfo=UTC),
        "kind": "dividend",
        "ratio": None,
        "amount": 0.82,
        "source": "csv",
        "ingested_at": OLD,
    }
    old_actions = pa.Table.from_pylist([dividend], schema=CORPORATE_ACTION_SCHEMA)
    tables.merge("curated/corporate_actions", old_actions, ("symbol", "ex_date", "kind"))
    return len(lost)


def test_an_older_lake_is_read_and_its_quarantine_resolved(real_data: Path, tmp_path: Path) -> None:
    csv = tmp_path / AAPL
    shutil.copy(real_data / "daily" / "alphavantage_raw" / AAPL, csv)
    home = tmp_path / "h"
    _run(home, csv)
    lost = _make_it_old(home)
    assert lost == 5241  # what the older version quarantined on this file

    summary = _run(home, csv)
    assert f"{lost} quarantined records resolved" in summary
    assert sql_json(home, "SELECT count(*) AS n FROM bars_1d") == [{"n": 6381}]
    rows = sql_json(
        home,
        "SELECT rule, resolution, count(*) AS n, count(resolved_at) AS resolved "
        "FROM quarantine GROUP BY 1, 2",
    )
    assert rows == [
        {
            "rule": "unadjusted_split",
            "resolution": "a later run stored the record",
            "n": lost,
            "resolved": lost,
        }
    ]
    (last,) = sql_json(
        home,
        "SELECT quarantined FROM runs WHERE stage = 'load_warehouse' "
        "ORDER BY started_at DESC LIMIT 1",
    )
    assert last == {"quarantined": 0}  # resolved rows no longer count as current
    actions = sql_json(
        home,
        "SELECT CAST(ex_date AS DATE) AS day, kind, inferred FROM corporate_actions "
        "ORDER BY ex_date",
    )
    assert {"day": "2020-08-07", "kind": "dividend", "inferred": None} in actions
    assert sum(1 for a in actions if a["inferred"]) == 4

    again = _run(home, csv)  # nothing left to resolve; nothing quarantined twice
    assert "quarantined records resolved" not in again
    assert sql_json(home, "SELECT count(*) AS n FROM quarantine") == [{"n": lost}]

    # The splits arrive: Alpha Vantage's adjusted file reports them, replacing the inferred ones.
    adjusted = tmp_path / "adjusted" / "AAPL_daily_adjusted_av_to-2020-12-04.csv"
    adjusted.parent.mkdir()
    shutil.copy(real_data / "daily" / "alphavantage_adjusted" / adjusted.name, adjusted)
    _run(home, adjusted)
    splits = sql_json(
        home,
        "SELECT CAST(ex_date AS DATE) AS day, ratio, inferred FROM corporate_actions "
        "WHERE kind = 'split' ORDER BY ex_date",
    )
    assert splits == [
        {"day": day, "ratio": ratio, "inferred": False}
        for symbol, day, ratio in INFERRED
        if symbol == "AAPL"
    ]
