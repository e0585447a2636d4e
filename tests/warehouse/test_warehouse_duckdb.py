"""DuckDB specifics: file locking between processes, opening, URLs, key constraints."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from tests.warehouse.conftest import bars

from marketlake.errors import TerminalError, TransientError
from marketlake.warehouse import TABLES, QueryError, WarehouseNotFoundError, open_warehouse
from marketlake.warehouse.duckdb import DuckDBWarehouse

HOLD_WAREHOUSE = """
import sys
from pathlib import Path
from marketlake.warehouse.duckdb import DuckDBWarehouse

with DuckDBWarehouse(Path(sys.argv[1])) as warehouse, warehouse.session():
    warehouse.ensure_tables()
    print("ready", flush=True)
    sys.stdin.read()
"""


@pytest.fixture
def held_by_other_process(tmp_path: Path) -> Iterator[Path]:
    """A warehouse file that another process has open for writing."""
    path = tmp_path / "held.duckdb"
    with subprocess.Popen(
        [sys.executable, "-c", HOLD_WAREHOUSE, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        assert holder.stdin is not None and holder.stdout is not None
        try:
            assert holder.stdout.readline().strip() == "ready"
            yield path
        finally:
            holder.stdin.close()
            holder.wait(timeout=60)


def test_a_file_written_by_another_process_is_a_transient_error(
    held_by_other_process: Path,
) -> None:
    path = held_by_other_process
    for read_only in (False, True):
        with pytest.raises(TransientError, match="in use by another process") as caught:
            DuckDBWarehouse(path, read_only=read_only, lock_wait_s=0.2)
        assert str(path) in str(caught.value)


def test_the_file_opens_again_once_the_other_process_has_finished(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    done = subprocess.run(
        [sys.executable, "-c", HOLD_WAREHOUSE, str(path)], input="", capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    with DuckDBWarehouse(path) as warehouse:
        assert "bars_1d" in warehouse.table_names()


def test_reading_a_missing_file_says_there_is_no_warehouse(tmp_path: Path) -> None:
    path = tmp_path / "absent" / "w.duckdb"
    with pytest.raises(WarehouseNotFoundError, match="no warehouse at"):
        DuckDBWarehouse(path, read_only=True)
    assert not path.parent.exists()


def test_writing_creates_the_folder_and_the_file(tmp_path: Path) -> None:
    path = tmp_path / "new" / "folder" / "w.duckdb"
    with DuckDBWarehouse(path) as warehouse:
        warehouse.ensure_tables()
    assert path.is_file()


def test_a_file_that_is_not_a_database_is_a_terminal_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.duckdb"
    path.write_text("not a database\n" * 1000)
    with pytest.raises(TerminalError, match="cannot open the DuckDB warehouse"):
        DuckDBWarehouse(path)


SHOW_SESSION_DATE = """
from marketlake.warehouse.duckdb import DuckDBWarehouse

with DuckDBWarehouse(":memory:") as warehouse:
    (row,) = warehouse.query(
        "SELECT current_setting('TimeZone') AS tz, "
        "CAST(TIMESTAMPTZ '2024-03-08 23:30:00-05' AS DATE) AS day"
    ).to_pylist()
print(row["tz"], row["day"])
"""


def test_the_session_time_zone_is_utc_whatever_the_machine_uses() -> None:
    shown = subprocess.run(
        [sys.executable, "-c", SHOW_SESSION_DATE],
        env={**os.environ, "TZ": "America/New_York"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stdout.split() == ["UTC", "2024-03-09"]  # 23:30 in New York is 04:30 UTC


@pytest.mark.parametrize(
    ("url", "relative"),
    [("duckdb://{folder}/a.duckdb", "a.duckdb"), ("{folder}/b.duckdb", "b.duckdb")],
)
def test_urls_and_bare_paths_name_the_file(tmp_path: Path, url: str, relative: str) -> None:
    with open_warehouse(url.format(folder=tmp_path)) as warehouse:
        assert isinstance(warehouse, DuckDBWarehouse)
        warehouse.ensure_tables()
    assert (tmp_path / relative).is_file()


def test_an_in_memory_warehouse_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with open_warehouse("duckdb://:memory:") as warehouse:
        warehouse.ensure_tables()
        assert "runs" in warehouse.table_names()
    assert list(tmp_path.iterdir()) == []


def primary_keys(warehouse: DuckDBWarehouse) -> list[str]:
    result = warehouse.query(
        "SELECT table_name FROM duckdb_constraints() WHERE constraint_type = 'PRIMARY KEY'"
    )
    return sorted(result.column(0).to_pylist())


@pytest.mark.parametrize("declared", [False, True])
def test_primary_keys_are_declared_only_when_asked(tmp_path: Path, declared: bool) -> None:
    with DuckDBWarehouse(tmp_path / "w.duckdb", primary_keys=declared) as warehouse:
        warehouse.ensure_tables()
        assert warehouse.capabilities.enforces_keys is declared
        tables = sorted(name for name, spec in TABLES.items() if spec.view is None)
        assert primary_keys(warehouse) == (tables if declared else [])


def test_declared_keys_reject_a_duplicate_written_by_hand(
    tmp_path: Path, make_bars: Callable[..., pa.Table]
) -> None:
    with DuckDBWarehouse(tmp_path / "w.duckdb", primary_keys=True) as warehouse:
        warehouse.upsert("bars_1d", make_bars(["AAPL"], days=1))
        with pytest.raises(QueryError, match="statement failed"):
            warehouse.execute("INSERT INTO bars_1d SELECT * FROM bars_1d")
        assert warehouse.query("SELECT count(*) AS n FROM bars_1d").to_pylist() == [{"n": 1}]


WRITE_THEN_WAIT = """
import sys
from pathlib import Path
from marketlake.warehouse.duckdb import DuckDBWarehouse

warehouse = DuckDBWarehouse(Path(sys.argv[1]))  # kept open, as a run or a stream keeps it
warehouse.execute("CREATE TABLE notes AS SELECT 1 AS n")
print("written", flush=True)
sys.stdin.read()
warehouse.close()
"""

WRITE_WITHOUT_PAUSE = """
import sys
from pathlib import Path
from marketlake.warehouse.duckdb import DuckDBWarehouse

warehouse = DuckDBWarehouse(Path(sys.argv[1]))
warehouse.execute("CREATE TABLE notes (n BIGINT)")
print("writing", flush=True)
n = 0
while not Path(sys.argv[2]).exists():  # write after write, never idle
    n += 1
    warehouse.execute("INSERT INTO notes VALUES (?)", [n])
warehouse.close()
"""


def test_a_writer_lets_readers_in_once_idle(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    with subprocess.Popen(
        [sys.executable, "-c", WRITE_THEN_WAIT, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as writer:
        assert writer.stdin is not None and writer.stdout is not None
        assert writer.stdout.readline().strip() == "written"
        with DuckDBWarehouse(path, read_only=True) as reader:  # the writer is still open
            assert reader.query("SELECT n FROM notes").to_pylist() == [{"n": 1}]
        writer.stdin.close()
        assert writer.wait(timeout=60) == 0


def read_while_writing(script: str, tmp_path: Path, query: str) -> list[dict[str, Any]]:
    """Run ``script`` (a writer that writes without pause until a stop file appears) on a new
    file and ``query`` it three times meanwhile from a reader; the three answers."""
    path, stop = tmp_path / "w.duckdb", tmp_path / "stop"
    with subprocess.Popen(
        [sys.executable, "-c", script, str(path), str(stop)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[2],
    ) as writer:
        assert writer.stdout is not None
        try:
            assert writer.stdout.readline().strip() == "writing"
            with DuckDBWarehouse(path, read_only=True) as reader:
                seen = [reader.query(query).to_pylist()[0] for _ in range(3)]
        finally:
            stop.touch()
        assert writer.wait(timeout=60) == 0
    return seen


def test_a_writer_busy_writing_lets_a_waiting_reader_in_between_writes(tmp_path: Path) -> None:
    query = "SELECT count(*) AS n, max(n) AS top FROM notes"
    seen = read_while_writing(WRITE_WITHOUT_PAUSE, tmp_path, query)
    assert all(row["n"] == (row["top"] or 0) for row in seen)  # each write whole
    assert [row["n"] for row in seen] == sorted(row["n"] for row in seen)


READ_THEN_WAIT = """
import sys
from pathlib import Path
from marketlake.warehouse.duckdb import DuckDBWarehouse

reader = DuckDBWarehouse(Path(sys.argv[1]), read_only=True)  # kept open, as the API keeps it
print(reader.query("SELECT count(*) AS n FROM notes").to_pylist()[0]["n"], flush=True)
sys.stdin.read()
print(reader.query("SELECT count(*) AS n FROM notes").to_pylist()[0]["n"], flush=True)
reader.close()
"""


def test_a_reader_kept_open_lets_a_writer_in_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    with DuckDBWarehouse(path) as warehouse:
        warehouse.execute("CREATE TABLE notes AS SELECT 1 AS n")
    with subprocess.Popen(
        [sys.executable, "-c", READ_THEN_WAIT, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as reader:
        assert reader.stdin is not None and reader.stdout is not None
        assert reader.stdout.readline().strip() == "1"
        with DuckDBWarehouse(path, lock_wait_s=60) as writer:  # IDLE_RELEASE_S is 5 s
            writer.execute("INSERT INTO notes VALUES (2)")
        reader.stdin.close()
        assert reader.stdout.readline().strip() == "2"
        assert reader.wait(timeout=60) == 0
    assert not (tmp_path / "w.duckdb.wanted").exists()


def memory_limit(warehouse: DuckDBWarehouse) -> str:
    """The ``memory_limit`` DuckDB reports for the warehouse's connection."""
    (row,) = warehouse.query("SELECT current_setting('memory_limit') AS limit_").to_pylist()
    return str(row["limit_"])


def test_a_writer_caps_duckdb_memory_and_a_reader_keeps_the_default(tmp_path: Path) -> None:
    import duckdb

    from marketlake.warehouse.duckdb.connection import WRITER_MEMORY_LIMIT

    with duckdb.connect() as plain:
        capped = (
            plain.execute(f"SET memory_limit = '{WRITER_MEMORY_LIMIT}'")
            .execute("SELECT current_setting('memory_limit')")
            .fetchall()[0][0]
        )
        default = duckdb.connect().execute("SELECT current_setting('memory_limit')").fetchall()
    path = tmp_path / "warehouse.duckdb"
    with DuckDBWarehouse(path) as writer:
        writer.ensure_tables()
        assert memory_limit(writer) == capped
    with DuckDBWarehouse(path, read_only=True) as reader:
        assert memory_limit(reader) == default[0][0] != capped


def metrics(symbols: list[str], sessions: int) -> pa.Table:
    """``daily_metrics`` rows of ``symbols``, ``sessions`` each, with values that do not
    repeat (so DuckDB stores them at full size)."""
    import numpy as np

    from marketlake.catalogue import DAILY_METRICS

    schema = DAILY_METRICS.schema
    rows = len(symbols) * sessions
    values = np.random.default_rng(len(symbols)).random((len(schema) - 2, rows))
    start = int(np.datetime64("2000-01-03", "us").astype("int64"))
    days = np.tile(np.arange(sessions, dtype="int64") * 86_400_000_000 + start, len(symbols))
    return pa.Table.from_arrays(
        [
            pa.array(np.repeat(symbols, sessions), pa.string()),
            pa.array(days, pa.timestamp("us", tz="UTC")),
            *(pa.array(column) for column in values),
        ],
        schema=schema,
    )


def block_counts(warehouse: DuckDBWarehouse) -> tuple[int, int]:
    """The file's blocks in use and free (written once, then left behind by a rewrite)."""
    (row,) = warehouse.query("PRAGMA database_size").to_pylist()
    return int(row["used_blocks"]), int(row["free_blocks"])


def test_a_bulk_load_ends_checkpointed_and_none_of_it_is_written_twice(tmp_path: Path) -> None:
    # three buckets of 150,000 rows: each leaves a partly filled row group (122,880 rows a
    # group), which DuckDB would otherwise merge at a checkpoint, rewriting the rows around
    # them (54 of 137 blocks left free here)
    path = tmp_path / "w.duckdb"
    buckets = [[f"S{b}{i:02d}" for i in range(50)] for b in range(3)]
    with DuckDBWarehouse(path) as warehouse:
        warehouse.ensure_tables()
        with warehouse.bulk_load():
            for bucket in buckets:
                warehouse.replace_where("daily_metrics", metrics(bucket, 3_000), bucket)
        wal = path.with_name(path.name + ".wal")
        assert not wal.exists() or wal.stat().st_size < 64 * 1024
        warehouse.upsert("bars_1d", bars(["AAPL"], days=2))  # a later write, then the close
    with DuckDBWarehouse(path, read_only=True) as reader:
        used, free = block_counts(reader)
        assert used > 50 and free == 0
        assert reader.count_rows("daily_metrics") == 450_000


def vacuum_tasks(warehouse: DuckDBWarehouse) -> int:
    (row,) = warehouse.query("SELECT current_setting('max_vacuum_tasks') AS n").to_pylist()
    return int(row["n"])


def test_a_connection_opened_again_during_a_bulk_load_keeps_its_settings(
    tmp_path: Path,
) -> None:
    with DuckDBWarehouse(tmp_path / "w.duckdb") as warehouse:
        warehouse.ensure_tables()
        default = vacuum_tasks(warehouse)
        with warehouse.bulk_load():
            assert vacuum_tasks(warehouse) == 0
            warehouse.close()  # let go, as for a process that asked for the file
            assert vacuum_tasks(warehouse) == 0
        warehouse.close()
        assert vacuum_tasks(warehouse) == default > 0


def test_writes_from_several_threads_each_land_whole(tmp_path: Path) -> None:
    """A bulk load writes a bucket's tables from several threads at once (the capability
    says how many); each write is its own transaction on its own cursor."""
    from concurrent.futures import ThreadPoolExecutor

    buckets = [[f"S{b}{i:02d}" for i in range(20)] for b in range(4)]
    with DuckDBWarehouse(tmp_path / "w.duckdb") as warehouse:
        assert warehouse.capabilities.parallel_writes == min(os.cpu_count() or 1, 4) >= 1
        warehouse.ensure_tables()
        with warehouse.bulk_load(), ThreadPoolExecutor(max_workers=2) as pool:
            for bucket in buckets:
                writes = [
                    pool.submit(
                        warehouse.replace_where, "daily_metrics", metrics(bucket, 500), bucket
                    ),
                    pool.submit(warehouse.replace_where, "bars_1d", bars(bucket, days=50), bucket),
                    pool.submit(warehouse.upsert, "bars_1d", bars(["AAPL"], days=5)),
                ]
                assert [w.result() for w in writes] == [20 * 500, 20 * 50, 5]
            again = pool.submit(
                warehouse.replace_where, "bars_1d", bars(buckets[0], days=10), buckets[0]
            )
            assert again.result() == 20 * 10
        assert warehouse.count_rows("daily_metrics") == 4 * 20 * 500
        assert warehouse.count_rows("bars_1d") == 3 * 20 * 50 + 20 * 10 + 5
        assert warehouse.symbol_counts("bars_1d", ["S000", "S100"]) == {"S000": 10, "S100": 50}


WRITE_IN_ROUNDS = """
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from marketlake.warehouse.duckdb import DuckDBWarehouse
from tests.warehouse.conftest import bars

warehouse = DuckDBWarehouse(Path(sys.argv[1]))
warehouse.ensure_tables()
print("writing", flush=True)
n = 0
with warehouse.bulk_load(), ThreadPoolExecutor(max_workers=2) as pool:
    while not Path(sys.argv[2]).exists():  # rounds of two writes at once, never idle
        n += 1
        names = [[f"A{n}"], [f"B{n}"]]
        write = warehouse.replace_where
        rounds = [pool.submit(write, "bars_1d", bars(s, days=7), s) for s in names]
        for done in rounds:
            done.result()
warehouse.close()
"""


def test_writers_on_several_threads_let_a_waiting_reader_in(tmp_path: Path) -> None:
    answers = read_while_writing(WRITE_IN_ROUNDS, tmp_path, "SELECT count(*) AS n FROM bars_1d")
    seen = [row["n"] for row in answers]
    assert all(n % 7 == 0 for n in seen)  # each write whole
    assert seen == sorted(seen)
