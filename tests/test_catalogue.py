"""The catalogue is the one declaration of every dataset: lake and warehouse agree with it."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from marketlake.catalogue import DATASETS, get_dataset, lake_datasets, warehouse_tables
from marketlake.errors import ConfigError
from marketlake.lake import LakeStorage, LakeTables
from pipeline.cli import marketlake

# Written only when there is something to report: a price move past the alert threshold,
# two sources disagreeing on a close, a session without a bar.
ONLY_WHEN_FLAGGED = ("stream_alerts", "reconciliation", "missing_sessions", "dead_letters")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home after a batch run and a short stream, so every dataset has been written."""
    path = tmp_path_factory.mktemp("catalogue") / "home"
    for args in (
        ("run", "--symbols", "AAPL,MSFT", "--quiet"),
        (
            "stream",
            "--count",
            "20000",
            "--symbols",
            "AAPL,MSFT",
            "--late-fraction",
            "0.05",
            "--late-by",
            "30",
            # one message per poll: the watermark stands before the late ticks come, however
            # far the producer is ahead (a poll that took every message had none late)
            "--max-messages",
            "1",
        ),
    ):
        proc = marketlake(*args, "--home", str(path))
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return path


def test_every_lake_table_has_its_catalogue_schema(home: Path) -> None:
    tables = LakeTables(LakeStorage.from_url((home / "lake").resolve().as_uri()))
    found = tables.list_tables()
    for dataset in lake_datasets():
        if dataset.name in ONLY_WHEN_FLAGGED and dataset.lake not in found:
            continue
        assert dataset.lake in found, dataset.name
        stored = tables.dataset(dataset).schema
        assert stored.names == dataset.schema.names, dataset.name
        for field in dataset.schema:
            assert stored.field(field.name).type == field.type, (dataset.name, field.name)
    quarantined = [name for name in found if name.startswith("quarantine/")]
    for name in quarantined:
        assert tables.dataset(name).schema.names == DATASETS["quarantine"].schema.names


def test_every_warehouse_table_has_its_catalogue_columns(home: Path) -> None:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute(
            "SELECT table_name, column_name, is_nullable FROM information_schema.columns "
            "ORDER BY table_name, ordinal_position"
        ).fetchall()
    columns: dict[str, list[tuple[str, bool]]] = {}
    for table, column, nullable in rows:
        columns.setdefault(table, []).append((column, nullable == "YES"))
    assert set(columns) == set(warehouse_tables())
    for name, dataset in warehouse_tables().items():
        # a view's columns are as nullable as the database infers: only their names count
        view = dataset.view is not None
        expected = [(field.name, field.nullable or view) for field in dataset.schema]
        assert [(column, nullable or view) for column, nullable in columns[name]] == expected


def test_keys_are_required_columns_of_every_dataset() -> None:
    for dataset in DATASETS.values():
        for key in dataset.keys:
            assert not dataset.schema.field(key).nullable, (dataset.name, key)


def test_conform_names_the_dataset_and_the_problem() -> None:
    bars = get_dataset("bars_1d")
    with pytest.raises(Exception, match="bars_1d: data lacks column"):
        bars.conform(pa.table({"symbol": ["A"]}))
    with pytest.raises(ConfigError, match=r"valid datasets: .*bars_1d"):
        get_dataset("bars_5m")


def test_a_declared_encoding_must_name_a_column_and_a_known_encoding() -> None:
    from marketlake.catalogue import TICKS, Dataset

    for encodings in ((("when", "delta"),), (("ts", "gorilla"),)):
        with pytest.raises(ConfigError, match="encoding"):
            Dataset("t", TICKS.schema, TICKS.keys, "test", encodings=encodings)
    assert dict(TICKS.encodings)["ts"] == "delta"
