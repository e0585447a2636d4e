"""`marketlake run --source csv` on real exports: no file vanishes, no row is lost silently."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

from tests.pipeline.cli import marketlake, sql_json

LONDON = "yfinance_testdata/AET-L-1d-100x-error-fixed.csv"  # dates as 2022-06-06 00:00:00+01:00
NASDAQ = "daily/nasdaq_format/JPM_2008-11-24_2018-11-23.csv"
YAHOO = "daily/yahoo_csv/yahoofinance-SPY-20200901-20210113.csv"


def _dates(path: Path, column: str) -> list[str]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return [row[column][:10] for row in csv.DictReader(handle)]


def _run(home: Path, path: Path, *args: str, env: dict[str, str] | None = None) -> str:
    proc = marketlake(
        "run", "--home", str(home), "--source", "csv", "--path", str(path), *args, env=env
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


def test_dates_with_a_utc_offset_map_to_their_exchange_session(
    real_data: Path, tmp_path: Path
) -> None:
    path = tmp_path / "AET.L.csv"
    shutil.copy(real_data / LONDON, path)
    home = tmp_path / "h"
    _run(home, path, env={"MARKETLAKE_CALENDAR": "XLON"})
    days = sql_json(home, "SELECT CAST(ts AS DATE) AS day FROM bars_1d ORDER BY ts")
    assert [d["day"] for d in days] == sorted(_dates(path, "Date"))
    assert sql_json(home, "SELECT count(*) AS n FROM quarantine") == [{"n": 0}]


def test_a_file_with_no_usable_row_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "KO.csv"
    path.write_text("Date,Close\n2021-13-45,51.2\n2021-01-05 09:30:00,51.3\n")
    proc = marketlake("run", "--home", str(tmp_path / "h"), "--source", "csv", "--path", str(path))
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert "KO.csv: no usable row (all 2 rows rejected" in output
    assert "bad date '2021-13-45'" in output and "Traceback" not in output


def test_a_folder_skips_and_names_unreadable_files_and_loads_the_rest(
    real_data: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "prices"
    folder.mkdir()
    shutil.copy(real_data / NASDAQ, folder / "JPM.csv")
    # the same Yahoo export saved with a byte-order mark, and a long file in Latin-1
    (folder / "SPY.csv").write_bytes(b"\xef\xbb\xbf" + (real_data / YAHOO).read_bytes())
    (folder / "societe.csv").write_bytes(
        "symbol,name,date,open,high,low,close,volume\n"
        "GLE.PA,Société Générale,2021-01-04,16.9,17.2,16.8,17.09,4200000\n".encode("latin-1")
    )
    (folder / "notes.txt").write_text("Prices downloaded by hand, see the provider's terms.\n")
    (folder / "holdings.csv").write_text("account,units\nISA,12\n")
    (folder / "chart.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    home = tmp_path / "h"
    output = _run(home, folder)
    counts = sql_json(home, "SELECT symbol, count(*) AS n FROM bars_1d GROUP BY 1 ORDER BY 1")
    assert counts == [
        {"symbol": "GLE.PA", "n": 1},
        {"symbol": "JPM", "n": len(_dates(real_data / NASDAQ, "date"))},
        {"symbol": "SPY", "n": len(_dates(real_data / YAHOO, "Date"))},
    ]
    [fetch] = sql_json(home, "SELECT detail FROM runs WHERE stage = 'fetch_history'")
    for name in ("notes.txt", "holdings.csv", "chart.png"):
        assert name in fetch["detail"]
        assert f"{name}: " in " ".join(output.split())  # named in the printed summary
    for name in ("JPM.csv", "SPY.csv", "societe.csv"):
        assert name not in fetch["detail"]


def test_a_folder_with_no_usable_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("nothing here\n")
    (tmp_path / "empty.csv").write_text("")
    proc = marketlake(
        "run", "--home", str(tmp_path / "h"), "--source", "csv", "--path", str(tmp_path)
    )
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert "no usable csv file" in output and "notes.txt" in output and "empty.csv" in output


def test_a_symbol_asked_for_that_the_files_lack_is_an_error(
    real_data: Path, tmp_path: Path
) -> None:
    path = tmp_path / "JPM.csv"
    shutil.copy(real_data / NASDAQ, path)
    home = tmp_path / "h"
    proc = marketlake(
        "run", "--home", str(home), "--source", "csv", "--path", str(path), "--symbols", "AAPL"
    )
    assert proc.returncode != 0
    output = " ".join((proc.stdout + proc.stderr).split())
    assert "symbol AAPL not found in" in output and "available: ['JPM']" in output
