"""CSV and Parquet files in the layouts providers export, with bad rows kept as rejects."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from marketlake.errors import SourceError
from marketlake.schemas import BAR_SCHEMA, QUARANTINE_SCHEMA
from marketlake.sources.base import HistoryBatch
from marketlake.sources.files.source import FileSource, snap_ratio, symbol_from_name

WIDE = (date(1900, 1, 1), date(2100, 12, 31))


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def _fetch(path: Path, symbols: list[str], fmt: str | None = None) -> list[HistoryBatch]:
    return list(FileSource(path, fmt=fmt).fetch_history(symbols, *WIDE))


def _rows(batch: HistoryBatch) -> list[tuple[str, str, float | None, float]]:
    return [
        (r["symbol"], r["ts"].date().isoformat(), r["open"], r["close"])
        for r in batch.bars.to_pylist()
    ]


def test_yahoo_export_takes_symbol_from_name_and_ignores_adj_close(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "yahoofinance-SPY-20200901-20200903.csv",
        "Date,Open,High,Low,Close,Adj Close,Volume\n"
        "2020-09-02,354.67,358.75,353.43,357.70,354.76,69540000\n"
        "2020-09-01,350.21,352.71,349.24,352.60,349.70,54999300\n",
    )
    [batch] = _fetch(path, ["SPY"])
    assert _rows(batch) == [
        ("SPY", "2020-09-01", 350.21, 352.60),
        ("SPY", "2020-09-02", 354.67, 357.70),
    ]
    assert batch.bars.schema.equals(BAR_SCHEMA)
    assert batch.bars.column("volume").to_pylist() == [54999300.0, 69540000.0]
    assert batch.source == "csv"  # the raw payload's area: raw/csv/...
    origin = "file:yahoofinance-SPY-20200901-20200903.csv"  # each bar's origin: the file
    assert set(batch.bars.column("source").to_pylist()) == {origin}
    assert batch.raw == path.read_bytes() and batch.raw_format == "csv"
    assert batch.batch_id.startswith("yahoofinance-SPY-20200901-20200903-")
    assert batch.rejects.num_rows == 0


def test_long_file_with_symbol_column_filters_symbols_and_dates(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "prices.csv",
        "ticker,date,open,high,low,close,volume\n"
        "msft,2021-01-05,10,11,9,10.5,100\n"
        "AAPL,2021-01-04,1,2,0.5,1.5,100\n"
        "AAPL,2021-01-05,1.5,2,1,1.8,100\n"
        "MSFT,2021-01-04,10,11,9,10.2,100\n"
        "AAPL,2021-01-06,1.8,2,1,1.9,100\n",
    )
    source = FileSource(path)
    assert source.available_symbols() == ["AAPL", "MSFT"]
    [batch] = source.fetch_history(["MSFT", "AAPL"], date(2021, 1, 4), date(2021, 1, 5))
    assert _rows(batch) == [
        ("AAPL", "2021-01-04", 1.0, 1.5),
        ("AAPL", "2021-01-05", 1.5, 1.8),
        ("MSFT", "2021-01-04", 10.0, 10.2),
        ("MSFT", "2021-01-05", 10.0, 10.5),
    ]
    [only] = source.fetch_history(["MSFT"], *WIDE)
    assert {r[0] for r in _rows(only)} == {"MSFT"}


def test_alpha_vantage_adjusted_emits_splits_and_dividends(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "IBM_daily_adjusted.csv",
        "timestamp,open,high,low,close,adjusted_close,volume,dividend_amount,split_coefficient\n"
        "2020-08-31,127.58,131.0,126.0,129.04,32.26,225702700,0.0000,4.0\n"
        "2020-08-28,504.05,505.77,498.31,499.23,124.8,46907479,0.0000,1.0\n"
        "2020-08-07,452.82,454.7,441.17,444.45,110.5,49511403,0.8200,1.0\n",
    )
    [batch] = _fetch(path, ["IBM"])
    actions = batch.actions.to_pylist()
    assert [
        (a["ex_date"].date().isoformat(), a["kind"], a["ratio"], a["amount"]) for a in actions
    ] == [
        ("2020-08-07", "dividend", None, 0.82),
        ("2020-08-31", "split", 4.0, None),
    ]
    assert _rows(batch)[1] == ("IBM", "2020-08-28", 504.05, 499.23)  # as traded


def test_alpha_vantage_numbered_columns(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "NVDA.csv",
        "timestamp,1. open,2. high,3. low,4. close,5. volume\n"
        "2024-03-01,800.0,823.0,795.5,822.79,47677000\n",
    )
    [batch] = _fetch(path, ["NVDA"])
    assert batch.bars.to_pylist()[0]["high"] == 823.0
    assert batch.bars.to_pylist()[0]["volume"] == 47677000.0


def test_nasdaq_layout_with_us_dates_and_dollar_prices(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "MSFT_2018.csv",
        "date,close,volume,open,high,low\n"
        "11/23/2018,$103.07,13823100,$102.17,$103.81,$102.00\n"
        "11/21/2018,103.11,28121990,103.6,104.43,102.24\n",
    )
    [batch] = _fetch(path, ["MSFT"])
    assert _rows(batch) == [
        ("MSFT", "2018-11-21", 103.6, 103.11),
        ("MSFT", "2018-11-23", 102.17, 103.07),
    ]


def test_yahoo_web_table_events_and_unadjusted_prices(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "TSLA_history.csv",
        ",Date,Open,High,Low,Close*,Adj Close**,Volume\n"
        '0,"Sep 01, 2020",502.14,502.49,470.51,475.05,475.05,"90,119,400"\n'
        '1,"Aug 31, 2020",5:1 Stock Split,5:1 Stock Split,5:1 Stock Split,5:1 Stock Split,'
        "5:1 Stock Split,5:1 Stock Split\n"
        '2,"Aug 28, 2020",459.02,463.70,437.30,442.68,442.68,"100,406,000"\n'
        '3,"Aug 20, 2020",0.1 Dividend,0.1 Dividend,0.1 Dividend,0.1 Dividend,0.1 Dividend,'
        "0.1 Dividend\n"
        "4,*Close price adjusted for splits.,*x,*x,*x,*x,*x,*x\n",
    )
    [batch] = _fetch(path, ["TSLA"])
    bars = batch.bars.to_pylist()
    assert [b["ts"].date() for b in bars] == [date(2020, 8, 28), date(2020, 9, 1)]
    # before the split the table shows prices divided by 5: as traded they were 5x
    assert bars[0]["close"] == pytest.approx(442.68 * 5)
    assert bars[0]["volume"] == pytest.approx(100_406_000 / 5)
    assert bars[1]["close"] == 475.05 and bars[1]["volume"] == 90_119_400
    actions = {(a["kind"], a["ex_date"].date()): a for a in batch.actions.to_pylist()}
    assert actions[("split", date(2020, 8, 31))]["ratio"] == 5.0
    assert actions[("dividend", date(2020, 8, 20))]["amount"] == pytest.approx(0.5)
    [footnote] = batch.rejects.to_pylist()
    assert footnote["rule"] == "unparseable" and "bad date" in footnote["detail"]


def test_broken_rows_become_rejects_and_good_rows_stay(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "KO.csv",
        "Date,Open,High,Low,Close,Volume\n"
        "2021-01-04,52.3,52.4,50.9,51.2,1000\n"
        "2021-01-05,abc,52.4,50.9,51.3,1000\n"
        "2021-13-45,52.3,52.4,50.9,51.4,1000\n"
        "2021-01-06,52.3,52.4\n"
        "2021-01-07,52.3,52.4,50.9,,1000\n"
        "2021-01-07 00:00:00,52.3,52.4,50.9,51.6,1000\n"
        "2021-01-07,52.3,52.4,50.9,51.9,1000\n"
        "2021-01-08,52.3,52.4,50.9,51.7,\n",
    )
    [batch] = _fetch(path, ["KO"])
    assert _rows(batch) == [
        ("KO", "2021-01-04", 52.3, 51.2),
        ("KO", "2021-01-07", 52.3, 51.6),
        ("KO", "2021-01-08", 52.3, 51.7),
    ]
    assert batch.bars.to_pylist()[-1]["volume"] is None  # an empty cell is a missing value
    assert batch.rejects.schema.equals(QUARANTINE_SCHEMA)
    rejects = batch.rejects.to_pylist()
    by_line = {int(r["detail"].split(":")[0].split()[-1]): r for r in rejects}
    assert sorted(by_line) == [3, 4, 5, 6, 8]
    assert [(by_line[n]["rule"], by_line[n]["detail"]) for n in sorted(by_line)] == [
        ("unparseable", "KO.csv line 3: bad number in column Open: 'abc'"),
        ("unparseable", "KO.csv line 4: bad date '2021-13-45'"),
        ("unparseable", "KO.csv line 5: 3 fields where the header has 6"),
        ("unparseable", "KO.csv line 6: missing close"),
        ("duplicate", "KO.csv line 8: another row has the same symbol and date"),
    ]
    assert json.loads(by_line[3]["record"]) == {
        "Date": "2021-01-05",
        "Open": "abc",
        "High": "52.4",
        "Low": "50.9",
        "Close": "51.3",
        "Volume": "1000",
    }
    assert by_line[3]["ts"] == datetime(2021, 1, 5, tzinfo=UTC)
    assert by_line[3]["symbol"] == "KO"
    assert by_line[4]["ts"] is None
    assert json.loads(by_line[5]["record"]) == {"text": "2021-01-06,52.3,52.4"}
    assert len(rejects) == 5
    assert len({r["record_id"] for r in rejects}) == 5
    assert {r["source"] for r in rejects} == {"file:KO.csv"}


def test_bad_symbol_values_are_rejected(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "long.csv",
        "symbol,date,close\nAAPL,2021-01-04,1.5\nNOT A SYMBOL!,2021-01-04,2\n,2021-01-04,3\n",
    )
    [batch] = _fetch(path, ["AAPL"])
    assert _rows(batch) == [("AAPL", "2021-01-04", None, 1.5)]
    rules = sorted((r["rule"], r["symbol"]) for r in batch.rejects.to_pylist())
    assert rules == [("bad_symbol", None), ("bad_symbol", None)]
    assert "NOT A SYMBOL!" in " ".join(r["detail"] for r in batch.rejects.to_pylist())


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("junk.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00"),
        ("empty.csv", b""),
        ("wide.csv", b"Date,AAPL,MSFT\n2020-01-02,75.1,160.6\n"),
        ("junk.parquet", b"definitely not parquet"),
    ],
)
def test_files_that_are_not_price_tables_raise_a_clear_error(
    tmp_path: Path, name: str, content: bytes
) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(SourceError) as error:
        _fetch(tmp_path / name, ["AAPL"])
    assert name in str(error.value)


def test_missing_column_error_names_the_expected_columns(tmp_path: Path) -> None:
    path = _write(tmp_path, "AAPL.csv", "Date,AAPL,MSFT\n2020-01-02,75.1,160.6\n")
    with pytest.raises(SourceError, match="expected Date, Open, High, Low, Close"):
        _fetch(path, ["AAPL"])


def test_file_without_symbol_anywhere_asks_for_a_symbol_column(tmp_path: Path) -> None:
    path = _write(tmp_path, "prices.csv", "Date,Close\n2020-01-02,75.1\n")
    with pytest.raises(SourceError, match="add a 'symbol' column"):
        _fetch(path, ["AAPL"])
    [batch] = FileSource(path, symbols_hint=["AAPL"]).fetch_history(["AAPL"], *WIDE)
    assert _rows(batch) == [("AAPL", "2020-01-02", None, 75.1)]


@pytest.mark.parametrize(
    ("stem", "symbol"),
    [
        ("AAPL", "AAPL"),
        ("BRK-B", "BRK-B"),
        ("yahoofinance-SPY-20200901-20210113", "SPY"),
        ("MSFT_2008-11-24_2018-11-23", "MSFT"),
        ("TSLA_yahoo_history_page_to-2020-12-24", "TSLA"),
        ("AAPL_daily_adjusted_av_to-2020-12-04", "AAPL"),
        ("prices_2020", None),
        ("spy", None),
    ],
)
def test_symbol_from_file_name(stem: str, symbol: str | None) -> None:
    assert symbol_from_name(stem) == symbol


def test_folder_of_parquet_and_csv_files(tmp_path: Path) -> None:
    table = pa.table(
        {
            "Symbol": ["INTC", "INTC"],
            "Date": pa.array([date(2021, 1, 5), date(2021, 1, 4)], pa.date32()),
            "Open": [50.0, 49.0],
            "High": [51.0, 50.0],
            "Low": [49.5, 48.0],
            "Close": [50.5, 49.5],
            "Volume": [1e6, 2e6],
        }
    )
    pq.write_table(table, tmp_path / "intc.parquet")
    _write(tmp_path, "JPM.csv", "Date,Close\n2021-01-04,120.5\n")
    _write(tmp_path, "notes.md", "not data")
    source = FileSource(tmp_path)
    assert [p.name for p in source.files()] == ["JPM.csv", "intc.parquet"]
    assert source.available_symbols() == ["INTC", "JPM"]
    batches = list(source.fetch_history(["INTC", "JPM"], *WIDE))
    assert [b.source for b in batches] == ["csv", "parquet"]
    assert _rows(batches[1]) == [
        ("INTC", "2021-01-04", 49.0, 49.5),
        ("INTC", "2021-01-05", 50.0, 50.5),
    ]
    assert batches[1].raw_format == "parquet"
    assert batches[1].raw == (tmp_path / "intc.parquet").read_bytes()
    only_parquet = FileSource(tmp_path, fmt="parquet")
    assert [p.name for p in only_parquet.files()] == ["intc.parquet"]


def test_fetch_symbol_and_unknown_symbol(tmp_path: Path) -> None:
    path = _write(tmp_path, "JPM.csv", "Date,Close\n2021-01-04,120.5\n")
    source = FileSource(path)
    assert _rows(source.fetch_symbol("JPM", *WIDE)) == [("JPM", "2021-01-04", None, 120.5)]
    with pytest.raises(SourceError, match="available: \\['JPM'\\]"):
        source.fetch_symbol("AAPL", *WIDE)


def test_missing_path_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no file or folder"):
        FileSource(tmp_path / "absent").available_symbols()


@pytest.mark.parametrize(
    ("value", "expected"),
    [(7.00000700001, 7.0), (4.0, 4.0), (1.5, 1.5), (0.1, 0.1), (1.2345, 1.2345)],
)
def test_split_ratios_snap_to_the_fraction_they_stand_for(value: float, expected: float) -> None:
    assert snap_ratio(value) == expected
