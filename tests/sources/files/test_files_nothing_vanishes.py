"""Nothing vanishes: offset dates, text encodings, unreadable files, symbols without rows."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from marketlake.errors import SourceError
from marketlake.sources.files import FileSource

WIDE = (date(1900, 1, 1), date(2100, 12, 31))


def _days(source: FileSource) -> list[str]:
    [batch] = source.fetch_history(source.available_symbols(), *WIDE)
    return [r["ts"].date().isoformat() for r in batch.bars.to_pylist()]


@pytest.mark.parametrize(
    "stamp",
    [
        "2019-01-02 00:00:00+01:00",
        "2019-01-02 00:00:00-05:00",
        "2019-01-02T00:00:00+0530",
        "2019-01-02 00:00:00+00:00",
        "2019-01-02 00:00Z",
        "2019-01-02 00:00:00 GMT",
    ],
)
def test_a_midnight_with_any_offset_is_the_session_written(tmp_path: Path, stamp: str) -> None:
    path = tmp_path / "VOD.L.csv"
    path.write_text(f"Date,Open,High,Low,Close,Volume\n{stamp},1,2,0.5,1.5,10\n")
    assert _days(FileSource(path)) == ["2019-01-02"]


def test_a_time_of_day_is_not_a_daily_date(tmp_path: Path) -> None:
    path = tmp_path / "EA.csv"
    path.write_text(
        "Datetime,Close\n2026-05-26 00:00:00-04:00,199.8\n2026-05-26 04:45:00-04:00,203.9\n"
    )
    [batch] = FileSource(path).fetch_history(["EA"], *WIDE)
    assert batch.bars.num_rows == 1
    [reject] = batch.rejects.to_pylist()
    assert reject["detail"] == "EA.csv line 3: bad date '2026-05-26 04:45:00-04:00'"


def test_a_zoned_parquet_timestamp_is_the_date_in_its_zone(tmp_path: Path) -> None:
    london = timezone(timedelta(hours=1))
    stamps = [datetime(2022, 6, d, tzinfo=london) for d in (1, 6)]
    table = pa.table(
        {
            "Date": pa.array(stamps, pa.timestamp("ns", "Europe/London")),
            "Close": [14.55, 14.6],
        }
    )
    pq.write_table(table, tmp_path / "AET.L.parquet")
    assert _days(FileSource(tmp_path / "AET.L.parquet")) == ["2022-06-01", "2022-06-06"]


@pytest.mark.parametrize(
    "encode",
    [
        lambda text: text.encode("latin-1"),
        lambda text: text.encode("cp1252"),
        lambda text: b"\xef\xbb\xbf" + text.encode("utf-8"),
        lambda text: text.encode("utf-16"),
    ],
    ids=["latin-1", "cp1252", "utf-8-bom", "utf-16"],
)
def test_text_encodings_are_read(tmp_path: Path, encode: object) -> None:
    text = "symbol,name,date,close\nGLE.PA,Société Générale,2021-01-04,17.09\n"
    path = tmp_path / "europe.csv"
    path.write_bytes(encode(text))  # type: ignore[operator]
    source = FileSource(path)
    assert source.available_symbols() == ["GLE.PA"]
    assert _days(source) == ["2021-01-04"]


def test_a_file_with_no_usable_row_is_an_error(tmp_path: Path) -> None:
    header_only = tmp_path / "AAPL.csv"
    header_only.write_text("Date,Close\n")
    with pytest.raises(SourceError, match=r"AAPL.csv: no usable row \(no data rows\)"):
        FileSource(header_only).available_symbols()
    bad = tmp_path / "MSFT.csv"
    bad.write_text("Date,Close\n2021-13-01,1\n2021-01-04,n/a\n")
    with pytest.raises(SourceError, match=r"all 2 rows rejected, the first as MSFT.csv line 2"):
        FileSource(bad).available_symbols()


def test_a_folder_skips_what_it_cannot_read_and_names_it(tmp_path: Path) -> None:
    (tmp_path / "JPM.csv").write_text("Date,Close\n2021-01-04,120.5\n")
    (tmp_path / "notes.txt").write_text("downloaded by hand\n")
    (tmp_path / "KO.csv").write_text("Date,Close\n2021-13-01,1\n")
    (tmp_path / "logo.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    (tmp_path / "data.json").write_text("{}")
    (tmp_path / ".DS_Store").write_bytes(b"\x00")
    source = FileSource(tmp_path, fmt="csv")
    assert source.available_symbols() == ["JPM"]
    assert _days(source) == ["2021-01-04"]
    skipped = source.skipped()
    assert [s.split(":")[0] for s in skipped] == ["data.json", "KO.csv", "logo.csv", "notes.txt"]
    assert "not a csv file" in skipped[0] and "no usable row" in skipped[1]
    assert "not a text CSV file" in skipped[2] and "no date and close columns" in skipped[3]


def test_a_single_unreadable_file_is_an_error_not_a_skip(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("downloaded by hand\n")
    with pytest.raises(SourceError, match=r"notes\.txt: no date and close columns"):
        FileSource(path, fmt="csv").available_symbols()


def test_a_symbol_whose_every_row_failed_is_kept_for_its_rejects(tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    path.write_text(
        "symbol,date,close\nAAPL,2021-01-04,1.5\nKO,2021/13/01,51.2\nKO,2021-01-05,n/a\n"
    )
    source = FileSource(path)
    assert source.available_symbols() == ["AAPL", "KO"]
    [batch] = source.fetch_history(source.available_symbols(), *WIDE)
    assert batch.bars.column("symbol").to_pylist() == ["AAPL"]
    assert batch.rejects.column("symbol").to_pylist() == ["KO", "KO"]


def test_symbols_asked_for_that_no_file_holds_are_an_error(tmp_path: Path) -> None:
    (tmp_path / "JPM.csv").write_text("Date,Close\n2021-01-04,120.5\n")
    with pytest.raises(SourceError, match=r"symbols AAPL, MSFT not found in .*\['JPM'\]"):
        list(FileSource(tmp_path).fetch_history(["JPM", "MSFT", "AAPL"], *WIDE))
