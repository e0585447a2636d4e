"""`marketlake run --source csv`: mistakes give clear errors or quarantine, never a traceback."""

from __future__ import annotations

from pathlib import Path

from tests.pipeline.cli import marketlake, sql_json

GOOD = (
    "Date,Open,High,Low,Close,Adj Close,Volume\n"
    "2024-01-02,187.15,188.44,183.89,185.64,185.64,82488700\n"
    "2024-01-03,184.22,185.88,183.43,184.25,184.25,58414500\n"
    "2024-01-04,182.15,183.09,180.88,181.91,181.91,71983600\n"
    "2024-01-05,181.99,182.76,180.17,181.18,181.18,62303300\n"
)


def test_broken_rows_are_quarantined_and_the_rest_loaded(tmp_path: Path) -> None:
    csv = tmp_path / "MSFT.csv"
    csv.write_text(
        GOOD
        + "2024-01-08,not-a-number,185.60,181.50,185.56,185.56,59144500\n"
        + "2024-01-09,183.92,185.15,182.73\n"  # too few fields
        + "2024-01-10,184.35,186.40,183.92,186.19,186.19,46792900\n"
        + "2024-01-11,186.54,187.05,183.62,185.59,185.59,-5\n"  # negative volume
    )
    home = tmp_path / "h"
    proc = marketlake("run", "--home", str(home), "--source", "csv", "--path", str(csv))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    days = sql_json(home, "SELECT CAST(ts AS DATE) AS day FROM bars_1d ORDER BY ts")
    assert [d["day"] for d in days] == [
        "2024-01-02",
        "2024-01-03",
        "2024-01-04",
        "2024-01-05",
        "2024-01-10",
    ]
    rules = sql_json(home, "SELECT rule, count(*) AS n FROM quarantine GROUP BY 1 ORDER BY 1")
    by_rule = {r["rule"]: r["n"] for r in rules}
    assert by_rule.get("negative_volume") == 1
    assert sum(by_rule.values()) == 3, by_rule
    (runs,) = sql_json(
        home, "SELECT sum(quarantined) AS q FROM runs WHERE stage = 'consume_history'"
    )
    assert runs["q"] == 3


def test_a_file_that_is_not_csv_is_a_clear_error(tmp_path: Path) -> None:
    junk = tmp_path / "AAPL.csv"
    junk.write_bytes(bytes(range(256)) * 8)
    proc = marketlake("run", "--home", str(tmp_path / "h"), "--source", "csv", "--path", str(junk))
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert "AAPL.csv" in output
    assert "Traceback" not in output


def test_a_missing_path_is_a_clear_error(tmp_path: Path) -> None:
    proc = marketlake("run", "--home", str(tmp_path / "h"), "--source", "csv")
    assert proc.returncode == 2
    assert "--path" in proc.stderr and "Traceback" not in proc.stderr


def test_an_unknown_source_lists_the_valid_ones(tmp_path: Path) -> None:
    proc = marketlake("run", "--home", str(tmp_path / "h"), "--source", "bloomberg")
    assert proc.returncode == 2
    assert "sim" in proc.stderr and "alphavantage" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_volume_of_1e30_is_quarantined_once_however_often_it_is_read(tmp_path: Path) -> None:
    csv = tmp_path / "MSFT.csv"
    csv.write_text(GOOD + "2024-01-08,182.09,185.60,181.50,185.56,185.56,1e30\n")
    home = tmp_path / "h"
    for _ in range(2):  # a file is read whole on every run: the bad row arrives again
        proc = marketlake("run", "--home", str(home), "--source", "csv", "--path", str(csv))
        assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = sql_json(home, "SELECT rule, CAST(ts AS DATE) AS day, detail FROM quarantine")
    assert rows == [
        {
            "rule": "implausible_volume",
            "day": "2024-01-08",
            "detail": "volume 1e+30 exceeds 1e+12 shares in one session",
        }
    ]
    assert sql_json(home, "SELECT count(*) AS n FROM bars_1d") == [{"n": 4}]
