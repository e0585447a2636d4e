"""The Polars engine writes one bucket while it computes the next, so its buckets take half
of the job's ``bucket_rows``: the two in flight hold about ``bucket_rows`` bars."""

from __future__ import annotations

from pathlib import Path

import pyarrow.compute as pc

from marketlake.catalogue import BARS_1D, DAILY_METRICS, INDICATORS_1D
from marketlake.engines.base import EngineJob
from marketlake.engines.local import PolarsEngine, engine_bucket_rows
from marketlake.lake import LakeStorage, LakeTables
from tests.engines.test_engine_contract import NOW, bars_for

SIZES = {"AAPL": 120, "MSFT": 150, "NVDA": 90}


def test_buckets_take_half_the_jobs_bucket_rows(tmp_path: Path) -> None:
    tables = LakeTables(LakeStorage.from_url((tmp_path / "lake").as_uri()))
    tables.merge(BARS_1D, bars_for(SIZES), BARS_1D.keys)
    job = EngineJob(tables=tables, symbols=tuple(SIZES), now=NOW, bucket_rows=300)
    assert engine_bucket_rows(job) == 150
    result = PolarsEngine().process(job)
    assert result.rows_in == sum(SIZES.values())
    for dataset in (DAILY_METRICS, INDICATORS_1D):
        # 300 bars would take AAPL and MSFT together; 150 puts each symbol in a bucket
        assert len(tables.history(dataset)) == 3, dataset.name
        fragments = list(tables.dataset(dataset).get_fragments())
        assert sorted(f.count_rows() for f in fragments) == sorted(SIZES.values())
        counts = pc.value_counts(tables.read(dataset).column("symbol")).to_pylist()
        assert {row["values"]: row["counts"] for row in counts} == SIZES


def test_a_bucket_rows_of_one_still_takes_a_symbol_a_bucket(tmp_path: Path) -> None:
    tables = LakeTables(LakeStorage.from_url((tmp_path / "lake").as_uri()))
    tables.merge(BARS_1D, bars_for({"AAPL": 30, "MSFT": 40}), BARS_1D.keys)
    job = EngineJob(tables=tables, symbols=("AAPL", "MSFT"), now=NOW, bucket_rows=1)
    assert engine_bucket_rows(job) == 1
    PolarsEngine().process(job)
    assert len(tables.history(INDICATORS_1D)) == 2
