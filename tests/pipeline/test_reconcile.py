"""Cross-provider reconciliation: two sources' closes of the same session are compared."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from marketlake.pipeline.reconcile import reconcile_bars
from marketlake.schemas import BAR_SCHEMA
from tests.pipeline.cli import marketlake, sql_json

NOW = datetime(2026, 1, 5, tzinfo=UTC)
HEADER = "Date,Open,High,Low,Close,Volume\n"
ROWS = [
    "2024-01-02,187.15,188.44,183.89,185.64,82488700",
    "2024-01-03,184.22,185.88,183.43,184.25,58414500",
    "2024-01-04,182.15,183.09,180.88,181.91,71983600",
    "2024-01-05,181.99,182.76,180.17,181.18,62303300",
]


def bars(rows: list[tuple[str, str, str, float]]) -> pa.Table:
    return pa.Table.from_pylist(
        [
            {
                "symbol": symbol,
                "ts": datetime.fromisoformat(day).replace(tzinfo=UTC),
                "open": close,
                "high": close,
                "low": close,
                "close": close,
                "volume": 1.0,
                "source": source,
                "ingested_at": NOW,
            }
            for symbol, day, source, close in rows
        ],
        schema=BAR_SCHEMA,
    )


def test_only_other_sources_above_the_threshold_are_flagged() -> None:
    stored = bars(
        [
            ("AAPL", "2024-01-02", "csv", 100.0),
            ("AAPL", "2024-01-03", "csv", 100.0),
            ("AAPL", "2024-01-04", "yahoo", 100.0),
            ("MSFT", "2024-01-02", "csv", 50.0),
        ]
    )
    incoming = bars(
        [
            ("AAPL", "2024-01-02", "yahoo", 100.5),  # 0.5 %: flagged
            ("AAPL", "2024-01-03", "yahoo", 100.05),  # 0.05 %: within the threshold
            ("AAPL", "2024-01-04", "yahoo", 120.0),  # same source: a revision, not compared
            ("AAPL", "2024-01-05", "yahoo", 101.0),  # nothing stored
            ("MSFT", "2024-01-02", "yahoo", 49.0),  # 2 %: flagged
        ]
    )
    result = reconcile_bars(incoming, stored, 0.001, NOW)
    assert result.compared == 3
    rows = result.flagged.to_pylist()
    assert [(r["symbol"], r["source_a"], r["source_b"]) for r in rows] == [
        ("AAPL", "csv", "yahoo"),
        ("MSFT", "csv", "yahoo"),
    ]
    assert [(r["close_a"], r["close_b"]) for r in rows] == [(100.0, 100.5), (50.0, 49.0)]
    assert [r["rel_diff"] for r in rows] == pytest.approx([0.005, 0.02])
    assert {r["flagged_at"] for r in rows} == {NOW}
    assert reconcile_bars(incoming, None, 0.001, NOW).flagged.num_rows == 0


def run(home: Path, source: str, path: Path) -> None:
    proc = marketlake("run", "--home", str(home), "--source", source, "--path", str(path))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def to_parquet(text: str, path: Path) -> Path:
    pq.write_table(pacsv.read_csv(io.BytesIO(text.encode())), path)
    return path


def test_two_file_imports_flag_the_close_that_differs(tmp_path: Path) -> None:
    first = tmp_path / "AAPL.csv"
    first.write_text(HEADER + "\n".join(ROWS) + "\n")
    changed = list(ROWS)
    changed[2] = "2024-01-04,182.15,183.09,180.88,182.51,71983600"  # close 181.91 -> 182.51
    second = to_parquet(HEADER + "\n".join(changed) + "\n", tmp_path / "AAPL.parquet")
    home = tmp_path / "home"
    run(home, "csv", first)
    run(home, "parquet", second)

    rows = sql_json(
        home,
        "SELECT symbol, CAST(ts AS DATE) AS day, source_a, source_b, close_a, close_b, rel_diff "
        "FROM reconciliation",
    )
    assert rows == [
        {
            "symbol": "AAPL",
            "day": "2024-01-04",
            "source_a": "file:AAPL.csv",
            "source_b": "file:AAPL.parquet",
            "close_a": 181.91,
            "close_b": 182.51,
            "rel_diff": pytest.approx(abs(182.51 - 181.91) / 181.91),
        }
    ]
    lake = DeltaTable(str(home / "lake" / "quality" / "reconciliation")).to_pyarrow_table()
    assert lake.num_rows == 1
    (latest,) = sql_json(home, "SELECT source FROM bars_1d WHERE ts = '2024-01-04' LIMIT 1")
    assert latest["source"] == "file:AAPL.parquet"  # the last source written wins in bars_1d
    detail = sql_json(
        home, "SELECT detail FROM runs WHERE stage = 'consume_history' ORDER BY started_at"
    )
    counts = [json.loads(d["detail"])["reconciliation_flags"] for d in detail]
    assert counts == [0, 1]

    run(home, "parquet", second)  # same origin again: a re-import, nothing new to compare
    assert len(sql_json(home, "SELECT * FROM reconciliation")) == 1


def window(path: Path, first: str, last: str, date_column: str) -> str:
    """The header and the rows of ``path`` with dates in [first, last], oldest first."""
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        fields = list(reader.fieldnames or [])
        rows = sorted(
            (r for r in reader if first <= r[date_column] <= last), key=lambda r: r[date_column]
        )
    out = io.StringIO()
    writer = csv.DictWriter(out, fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def test_real_providers_disagree_on_aapl_2015_09_30(real_data: Path, tmp_path: Path) -> None:
    daily = real_data / "daily"
    av = window(
        daily / "alphavantage_adjusted" / "AAPL_daily_adjusted_av_to-2020-12-04.csv",
        "2015-09-01",
        "2015-10-30",
        "timestamp",
    )
    yahoo = window(
        daily / "yahoo_csv" / "yahoofinance-AAPL-20040819-20180120.csv",
        "2015-09-01",
        "2015-10-30",
        "Date",
    )
    (tmp_path / "AAPL.csv").write_text(av)
    home = tmp_path / "home"
    run(home, "csv", tmp_path / "AAPL.csv")
    run(home, "parquet", to_parquet(yahoo, tmp_path / "AAPL.parquet"))
    rows = sql_json(
        home,
        "SELECT CAST(ts AS DATE) AS day, source_a, source_b, close_a, close_b FROM reconciliation",
    )
    assert rows == [
        {
            "day": "2015-09-30",
            "source_a": "file:AAPL.csv",
            "source_b": "file:AAPL.parquet",
            "close_a": 109.95,
            "close_b": pytest.approx(110.30, abs=1e-5),
        }
    ]
