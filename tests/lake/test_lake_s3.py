"""S3 specifics against a real server (SeaweedFS): independent listing, errors, outages."""

from __future__ import annotations

import threading
import time
import uuid

import pyarrow as pa
import pytest

from marketlake.errors import TerminalError, TransientError
from marketlake.lake import LakeStorage, LakeTables
from marketlake.lake.raw import write_raw
from services.seaweedfs import SeaweedFS, free_ports


def _prefix() -> str:
    return f"s3-{uuid.uuid4().hex[:10]}"


def test_objects_are_visible_to_an_independent_client(seaweedfs: SeaweedFS) -> None:
    prefix = _prefix()
    storage = LakeStorage.from_url(f"s3://{seaweedfs.bucket}/{prefix}", seaweedfs.options())
    path = write_raw(
        storage,
        source="sim",
        dataset="bars_1d",
        batch_id="b1",
        payload=b"[]",
        fmt="json",
        ingest_date=pa.scalar(0, pa.date32()).as_py(),
    )
    LakeTables(storage).merge(
        "curated/bars_1d", pa.table({"symbol": ["A"], "ts": [1], "close": [1.0]}), ["symbol", "ts"]
    )
    listed = seaweedfs.client().list_objects_v2(Bucket=seaweedfs.bucket, Prefix=f"{prefix}/")
    keys = sorted(item["Key"] for item in listed["Contents"])
    assert f"{prefix}/{path}" in keys
    assert f"{prefix}/curated/bars_1d/_delta_log/00000000000000000000.json" in keys
    assert any(k.endswith(".parquet") and "/curated/bars_1d/" in k for k in keys)
    assert [f"{prefix}/{p}" for p in storage.list_files()] == keys


def test_wrong_secret_is_a_terminal_error_without_the_secret(seaweedfs: SeaweedFS) -> None:
    wrong = "definitely-not-the-secret-4242"
    options = seaweedfs.options() | {"AWS_SECRET_ACCESS_KEY": wrong}
    storage = LakeStorage.from_url(f"s3://{seaweedfs.bucket}/{_prefix()}", options)
    for operation in (
        lambda: storage.write_bytes("x.bin", b"x"),
        lambda: storage.list_files(),
        lambda: LakeTables(storage).merge("curated/t", pa.table({"k": [1]}), ["k"]),
    ):
        with pytest.raises(TerminalError) as caught:
            operation()
        message = str(caught.value)
        assert "credentials" in message
        assert seaweedfs.endpoint in message
        assert wrong not in message


def test_missing_bucket_is_named(seaweedfs: SeaweedFS) -> None:
    storage = LakeStorage.from_url("s3://no-such-bucket-here/lake", seaweedfs.options())
    with pytest.raises(TerminalError, match="no-such-bucket-here") as caught:
        storage.check()
    assert "does not exist" in str(caught.value)
    with pytest.raises(TerminalError, match="does not exist"):
        storage.read_bytes("raw/x.json.gz")
    with pytest.raises(TerminalError, match="bucket"):
        storage.write_bytes("raw/x.json.gz", b"x")


def test_unreachable_endpoint_is_transient_and_named() -> None:
    port = free_ports(1)[0]
    options = {
        "AWS_ACCESS_KEY_ID": "k",
        "AWS_SECRET_ACCESS_KEY": "secret-value-0001",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
    }
    storage = LakeStorage.from_url("s3://lake/p", options, max_attempts=2, backoff_s=0.01)
    with pytest.raises(TransientError) as caught:
        storage.read_bytes("a.bin")
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message and "s3://lake/p" in message
    assert "2 attempts" in message
    assert "secret-value-0001" not in message


def test_operations_recover_from_a_server_outage(seaweedfs_to_stop: SeaweedFS) -> None:
    server = seaweedfs_to_stop
    url = f"s3://{server.bucket}/lake-outage-{uuid.uuid4().hex[:10]}"
    tables = LakeTables(LakeStorage.from_url(url, server.options(), backoff_s=0.5))
    first = pa.table({"k": [1, 2], "v": ["a", "b"]})
    tables.merge("curated/t", first, ["k"])
    impatient = LakeStorage.from_url(url, server.options(), max_attempts=1)
    patient = LakeStorage.from_url(url, server.options(), max_attempts=10, backoff_s=0.5)

    server.stop()
    with pytest.raises(TransientError, match=server.endpoint):
        impatient.write_bytes("during/outage.bin", b"lost")

    def restart_later() -> None:
        time.sleep(2.0)
        server.start()

    restart = threading.Thread(target=restart_later)
    restart.start()
    try:
        patient.write_bytes("during/outage.bin", b"kept")
        merged = LakeTables(patient).merge("curated/t", pa.table({"k": [3], "v": ["c"]}), ["k"])
    finally:
        restart.join()
    assert patient.read_bytes("during/outage.bin") == b"kept"
    assert merged.inserted == 1
    assert sorted(tables.read("curated/t").column("k").to_pylist()) == [1, 2, 3]
