"""Conflicting history on real files: Alpha Vantage's as-traded AAPL, then a Nasdaq export
split-adjusted for the 7-for-1 split of 2014-06-09, imported through the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.pipeline.cli import marketlake, sql_json

AV = "AAPL_daily_adjusted_av_to-2020-12-04.csv"
NASDAQ = "AAPL_2008-11-24_2018-11-23.csv"


def load(home: Path, path: Path, *options: str) -> None:
    proc = marketlake(
        "run", "--home", str(home), "--source", "csv", "--path", str(path), "--quiet", *options
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def both(real_data: Path, home: Path, *options: str) -> None:
    """Alpha Vantage's file, then the Nasdaq file (with ``options``)."""
    load(home, real_data / "daily" / "alphavantage_adjusted" / AV)
    load(home, real_data / "daily" / "nasdaq_format" / NASDAQ, *options)


def findings(home: Path) -> list[dict[str, Any]]:
    return sql_json(
        home,
        "SELECT CAST(ts AS DATE) AS day, CAST(ts_end AS DATE) AS last, sessions, kind, "
        "source_a, source_b, close_a, close_b, ratio, kept, action, detail "
        "FROM reconciliation ORDER BY ts",
    )


def closes(home: Path, *days: str) -> dict[str, tuple[float, str]]:
    listed = ", ".join(f"'{day}'" for day in days)
    rows = sql_json(
        home,
        f"SELECT CAST(ts AS DATE) AS day, close, source FROM bars_1d WHERE ts IN ({listed})",
    )
    return {r["day"]: (r["close"], r["source"]) for r in rows}


def test_a_split_adjusted_file_does_not_replace_as_traded_history(
    real_data: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    load(home, real_data / "daily" / "alphavantage_adjusted" / AV)
    before = sql_json(
        home,
        "SELECT CAST(ts AS DATE) AS day, change_pct FROM daily_metrics "
        "WHERE ts BETWEEN '2008-11-24' AND '2014-06-06' ORDER BY ts",
    )
    load(home, real_data / "daily" / "nasdaq_format" / NASDAQ)

    found = findings(home)
    assert [(f["day"], f["last"], f["sessions"], f["kind"]) for f in found] == [
        ("2008-11-24", "2014-06-06", 1392, "ratio"),  # one finding, not 1,392 replacements
        ("2009-03-24", "2009-03-24", 1, "value"),  # off the range's ratio by 0.3 %
        ("2015-09-30", "2015-09-30", 1, "value"),
    ]
    ratio, odd, late = found
    assert ratio["ratio"] == pytest.approx(1 / 7, rel=1e-5)
    assert ratio["detail"].startswith(
        f"closes from file:{NASDAQ} are the stored closes from file:{AV} times 1/7 over 1392 "
        f"sessions, 2008-11-24 to 2014-06-06 (file:{NASDAQ} looks adjusted for the later split "
        "(7:1 on 2014-06-09)); kept"
    )
    assert {(f["source_a"], f["source_b"]) for f in found} == {(f"file:{AV}", f"file:{NASDAQ}")}
    assert {(f["kept"], f["action"]) for f in found} == {(f"file:{AV}", "keep")}
    assert (odd["close_a"], odd["close_b"]) == (106.83, pytest.approx(15.2144))
    assert (late["close_a"], late["close_b"]) == (109.95, pytest.approx(110.30))

    assert closes(home, "2008-11-24", "2010-01-04", "2015-09-30") == {
        "2008-11-24": (92.95, f"file:{AV}"),  # as traded, not 13.28
        "2010-01-04": (214.01, f"file:{AV}"),
        "2015-09-30": (109.95, f"file:{AV}"),
    }
    after = sql_json(
        home,
        "SELECT CAST(ts AS DATE) AS day, change_pct FROM daily_metrics "
        "WHERE ts BETWEEN '2008-11-24' AND '2014-06-06' ORDER BY ts",
    )
    assert [r["day"] for r in after] == [r["day"] for r in before]
    # the kept range's metrics are unchanged (but for the rounding of later adjustments)
    assert [r["change_pct"] for r in after] == pytest.approx(
        [r["change_pct"] for r in before], abs=1e-6
    )
    (extremes,) = sql_json(
        home, "SELECT min(change_pct) AS low, max(change_pct) AS high FROM daily_metrics"
    )
    # AAPL's real extremes (2000-09-29 and 2008-10-13), not the -86 % / +611 % of a 7x mix
    assert extremes["low"] == pytest.approx(-51.87, abs=0.01)
    assert extremes["high"] == pytest.approx(13.90, abs=0.01)
    assert sql_json(home, "SELECT count(*) AS n FROM quarantine") == [{"n": 0}]

    (consume,) = sql_json(
        home,
        "SELECT detail FROM runs WHERE stage = 'consume_history' ORDER BY started_at DESC LIMIT 1",
    )
    detail = json.loads(consume["detail"])
    assert (detail["reconciliation_flags"], detail["conflicting_bars"]) == (3, 1393)
    assert "3 reconciliation flags (1393 stored bars contradicted" in detail["summary"]


def test_replace_takes_the_new_origin_and_records_what_it_replaced(
    real_data: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    both(real_data, home, "--on-conflict", "replace")
    found = findings(home)
    assert [(f["day"], f["kind"], f["action"]) for f in found] == [
        ("2008-11-24", "ratio", "replace"),
        ("2009-03-24", "value", "replace"),
        ("2015-09-30", "value", "replace"),
    ]
    assert {f["kept"] for f in found} == {f"file:{NASDAQ}"}
    assert closes(home, "2010-01-04", "2015-09-30") == {
        "2010-01-04": (pytest.approx(30.5728), f"file:{NASDAQ}"),
        "2015-09-30": (pytest.approx(110.30), f"file:{NASDAQ}"),
    }


def test_quarantine_sets_every_contradicting_bar_aside(real_data: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    both(real_data, home, "--on-conflict", "quarantine")
    assert [(f["kind"], f["kept"], f["action"]) for f in findings(home)] == [
        ("ratio", f"file:{AV}", "quarantine"),
        ("value", f"file:{AV}", "quarantine"),
        ("value", f"file:{AV}", "quarantine"),
    ]
    (held,) = sql_json(
        home,
        "SELECT count(*) AS n, min(CAST(ts AS DATE)) AS first, max(CAST(ts AS DATE)) AS last, "
        "count(DISTINCT source) AS origins FROM quarantine WHERE rule = 'source_conflict'",
    )
    assert held == {"n": 1393, "first": "2008-11-24", "last": "2015-09-30", "origins": 1}
    assert closes(home, "2010-01-04") == {"2010-01-04": (214.01, f"file:{AV}")}


def test_each_split_basis_of_an_adjusted_file_is_one_range(real_data: Path, tmp_path: Path) -> None:
    """Yahoo's CSV export is adjusted for the 2:1 split of 2005 and the 7:1 of 2014."""
    home = tmp_path / "home"
    load(home, real_data / "daily" / "alphavantage_adjusted" / AV)
    load(home, real_data / "daily" / "yahoo_csv" / "yahoofinance-AAPL-20040819-20180120.csv")
    ranges = [f for f in findings(home) if f["kind"] == "ratio"]
    assert [(f["day"], f["last"], f["sessions"]) for f in ranges] == [
        ("2004-08-19", "2005-02-25", 132),
        ("2005-02-28", "2014-06-06", 2335),
    ]
    assert [f["ratio"] for f in ranges] == [
        pytest.approx(1 / 14, rel=1e-4),
        pytest.approx(1 / 7, rel=1e-4),
    ]
    assert "(2:1 on 2005-02-28, 7:1 on 2014-06-09)" in ranges[0]["detail"]
    # 5 findings for 3,379 compared bars: the two ranges and three single sessions
    assert [f["day"] for f in findings(home) if f["kind"] == "value"] == [
        "2006-06-09",
        "2009-03-24",
        "2015-09-30",
    ]
