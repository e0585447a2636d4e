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


def run(home: Path, source: str, path: Path, *options: str, **env: str) -> None:
    proc = marketlake(
        "run", "--home", str(home), "--source", source, "--path", str(path), *options, env=env
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def to_parquet(text: str, path: Path) -> Path:
    pq.write_table(pacsv.read_csv(io.BytesIO(text.encode())), path)
    return path


def two_files(tmp_path: Path) -> tuple[Path, Path]:
    """AAPL.csv, and AAPL.parquet with the same bars but 2024-01-04's close 181.91 -> 182.51."""
    first = tmp_path / "AAPL.csv"
    first.write_text(HEADER + "\n".join(ROWS) + "\n")
    changed = list(ROWS)
    changed[2] = "2024-01-04,182.15,183.09,180.88,182.51,71983600"
    return first, to_parquet(HEADER + "\n".join(changed) + "\n", tmp_path / "AAPL.parquet")


def test_two_file_imports_flag_the_close_that_differs(tmp_path: Path) -> None:
    first, second = two_files(tmp_path)
    home = tmp_path / "home"
    run(home, "csv", first)
    run(home, "parquet", second)

    rows = sql_json(
        home,
        "SELECT symbol, CAST(ts AS DATE) AS day, source_a, source_b, close_a, close_b, rel_diff, "
        "kind, sessions, kept, action FROM reconciliation",
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
            "kind": "value",
            "sessions": 1,
            "kept": "file:AAPL.csv",
            "action": "keep",
        }
    ]
    lake = DeltaTable(str(home / "lake" / "quality" / "reconciliation")).to_pyarrow_table()
    assert lake.num_rows == 1
    stored = sql_json(home, "SELECT ts, close, source FROM bars_1d ORDER BY ts")
    assert [(r["close"], r["source"]) for r in stored] == [
        (185.64, "file:AAPL.parquet"),  # the other sessions agree: the newer origin is written
        (184.25, "file:AAPL.parquet"),
        (181.91, "file:AAPL.csv"),  # contradicted: the stored bar is kept (on_conflict keep)
        (181.18, "file:AAPL.parquet"),
    ]
    detail = sql_json(
        home, "SELECT detail FROM runs WHERE stage = 'consume_history' ORDER BY started_at"
    )
    counts = [json.loads(d["detail"])["reconciliation_flags"] for d in detail]
    assert counts == [0, 1]

    run(home, "parquet", second)  # the same file again: the same finding, not a second one
    assert len(sql_json(home, "SELECT * FROM reconciliation")) == 1
    assert len(sql_json(home, "SELECT * FROM quarantine")) == 0


def test_on_conflict_replace_writes_the_incoming_bar_and_says_so(tmp_path: Path) -> None:
    first, second = two_files(tmp_path)
    home = tmp_path / "home"
    run(home, "csv", first)
    run(home, "parquet", second, "--on-conflict", "replace")
    (latest,) = sql_json(home, "SELECT source, close FROM bars_1d WHERE ts = '2024-01-04'")
    assert latest == {"source": "file:AAPL.parquet", "close": 182.51}  # the last origin wins
    (finding,) = sql_json(home, "SELECT close_a, close_b, kept, action FROM reconciliation")
    assert finding == {
        "close_a": 181.91,
        "close_b": 182.51,
        "kept": "file:AAPL.parquet",
        "action": "replace",
    }


def test_on_conflict_quarantine_keeps_the_stored_bar_and_quarantines_the_new(
    tmp_path: Path,
) -> None:
    first, second = two_files(tmp_path)
    home = tmp_path / "home"
    run(home, "csv", first)
    run(home, "parquet", second, MARKETLAKE_VALIDATION__ON_CONFLICT="quarantine")
    (kept,) = sql_json(home, "SELECT source, close FROM bars_1d WHERE ts = '2024-01-04'")
    assert kept == {"source": "file:AAPL.csv", "close": 181.91}
    (row,) = sql_json(home, "SELECT rule, source, record, detail FROM quarantine")
    assert row["rule"] == "source_conflict" and row["source"] == "file:AAPL.parquet"
    assert json.loads(row["record"])["close"] == 182.51
    assert "stored close 181.91 from file:AAPL.csv" in row["detail"]
    (finding,) = sql_json(home, "SELECT kept, action FROM reconciliation")
    assert finding == {"kept": "file:AAPL.csv", "action": "quarantine"}
    (consume,) = sql_json(
        home,
        "SELECT quarantined, detail FROM runs WHERE stage = 'consume_history' "
        "ORDER BY started_at DESC LIMIT 1",
    )
    assert consume["quarantined"] == 1
    assert json.loads(consume["detail"])["source_conflict"] == 1


def test_an_unknown_on_conflict_choice_is_refused(tmp_path: Path) -> None:
    first, _ = two_files(tmp_path)
    proc = marketlake(
        "run",
        "--home",
        str(tmp_path / "home"),
        "--source",
        "csv",
        "--path",
        str(first),
        env={"MARKETLAKE_VALIDATION__ON_CONFLICT": "overwrite"},
    )
    assert proc.returncode == 2
    assert "validation.on_conflict" in proc.stderr and "'keep'" in proc.stderr
    assert "Traceback" not in proc.stderr


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


def test_findings_recorded_before_the_finding_columns_still_load(tmp_path: Path) -> None:
    """A lake whose reconciliation table predates kind, kept, action... loads as before."""
    from deltalake import write_deltalake

    first, _ = two_files(tmp_path)
    home = tmp_path / "home"
    old = pa.table(
        {
            "symbol": ["AAPL"],
            "ts": pa.array([datetime(2024, 1, 2, tzinfo=UTC)], pa.timestamp("us", tz="UTC")),
            "source_a": ["csv"],
            "source_b": ["parquet"],
            "close_a": [185.64],
            "close_b": [186.64],
            "rel_diff": [1.0 / 185.64],
            "flagged_at": pa.array([NOW], pa.timestamp("us", tz="UTC")),
        }
    )
    write_deltalake(str(home / "lake" / "quality" / "reconciliation"), old)
    run(home, "csv", first)
    (row,) = sql_json(home, "SELECT source_a, source_b, close_b, kind, kept FROM reconciliation")
    assert row == {
        "source_a": "csv",
        "source_b": "parquet",
        "close_b": 186.64,
        "kind": None,
        "kept": None,
    }


def test_on_conflict_applies_to_the_process_that_runs_consume_history(tmp_path: Path) -> None:
    first, second = two_files(tmp_path)
    home = tmp_path / "home"
    run(home, "csv", first)
    plan = marketlake(
        "run", "--plan", "--home", str(home), "--source", "parquet", "--path", str(second)
    )
    assert plan.returncode == 0, plan.stderr
    run_id = plan.stdout.strip()
    for stage in ("fetch_history", "consume_history", "process", "load_warehouse", "success"):
        extra = ("--on-conflict", "replace") if stage == "consume_history" else ()
        proc = marketlake("run", "--home", str(home), "--run-id", run_id, "--stage", stage, *extra)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    (latest,) = sql_json(home, "SELECT source, close FROM bars_1d WHERE ts = '2024-01-04'")
    assert latest == {"source": "file:AAPL.parquet", "close": 182.51}
    (finding,) = sql_json(home, "SELECT kept, action FROM reconciliation")
    assert finding == {"kept": "file:AAPL.parquet", "action": "replace"}
