"""Contract of LakeStorage, run on local disk and on S3."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from marketlake.errors import ConfigError, TerminalError
from marketlake.lake import LakeNotFoundError, LakeStorage


def test_write_then_read_returns_the_same_bytes(lake_storage: LakeStorage) -> None:
    payload = bytes(range(256)) * 10
    lake_storage.write_bytes("raw/a/b.bin", payload)
    assert lake_storage.read_bytes("raw/a/b.bin") == payload
    assert lake_storage.exists("raw/a/b.bin")
    assert lake_storage.exists("raw/a")


def test_overwrite_replaces_content(lake_storage: LakeStorage) -> None:
    lake_storage.write_bytes("x/file.gz", b"first version")
    lake_storage.write_bytes("x/file.gz", b"second")
    assert lake_storage.read_bytes("x/file.gz") == b"second"
    assert lake_storage.list_files("x") == ["x/file.gz"]


def test_list_files_is_recursive_sorted_and_scoped(lake_storage: LakeStorage) -> None:
    for path in ["b/2.txt", "a/x/1.txt", "a/0.txt", "c.txt"]:
        lake_storage.write_bytes(path, path.encode())
    assert lake_storage.list_files("a") == ["a/0.txt", "a/x/1.txt"]
    assert lake_storage.list_files() == ["a/0.txt", "a/x/1.txt", "b/2.txt", "c.txt"]
    assert lake_storage.list_files("missing/prefix") == []
    assert lake_storage.list_dirs() == ["a", "b"]


def test_delete_file_folder_and_missing_path(lake_storage: LakeStorage) -> None:
    lake_storage.write_bytes("d/1.txt", b"1")
    lake_storage.write_bytes("d/sub/2.txt", b"2")
    lake_storage.write_bytes("keep.txt", b"k")
    lake_storage.delete("d/1.txt")
    assert lake_storage.list_files() == ["d/sub/2.txt", "keep.txt"]
    lake_storage.delete("d")
    assert lake_storage.list_files() == ["keep.txt"]
    assert not lake_storage.exists("d")
    lake_storage.delete("never/was/here.txt")


def test_read_of_missing_file_raises_not_found(lake_storage: LakeStorage) -> None:
    with pytest.raises(LakeNotFoundError, match=r"nothing/here\.bin"):
        lake_storage.read_bytes("nothing/here.bin")
    assert not lake_storage.exists("nothing/here.bin")


@pytest.mark.parametrize(
    "bad", ["../escape", "/etc/passwd", "a/../b", "a//b", "", "./a", "a\\b", "a/b c", "a/\x00"]
)
def test_unsafe_relative_paths_are_rejected(lake_storage: LakeStorage, bad: str) -> None:
    with pytest.raises(TerminalError, match="invalid lake path"):
        lake_storage.write_bytes(bad, b"x")
    with pytest.raises(TerminalError, match="invalid lake path"):
        lake_storage.read_bytes(bad)


def test_overwrite_is_atomic_for_concurrent_readers(lake_storage: LakeStorage) -> None:
    versions = [bytes([65 + i]) * (200_000 + 50_000 * i) for i in range(8)]
    lake_storage.write_bytes("atomic/blob", versions[0])
    seen: list[bytes] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            seen.append(lake_storage.read_bytes("atomic/blob"))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for content in versions[1:]:
            lake_storage.write_bytes("atomic/blob", content)
    finally:
        stop.set()
        thread.join()
    assert seen
    assert all(content in versions for content in seen)
    assert lake_storage.read_bytes("atomic/blob") == versions[-1]
    assert lake_storage.list_files("atomic") == ["atomic/blob"]


def test_uri_and_storage_options_address_the_same_place(lake_storage: LakeStorage) -> None:
    uri = lake_storage.uri("curated/bars_1d")
    assert uri.startswith(lake_storage.url + "/")
    assert uri.endswith("/curated/bars_1d")
    options = lake_storage.storage_options()
    if lake_storage.is_local:
        assert uri.startswith("file:///")
        assert options == {}
    else:
        assert uri.startswith("s3://")
        assert options["conditional_put"] == "etag"
        assert options["AWS_ALLOW_HTTP"] == "true"
        assert options["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")


@pytest.mark.parametrize("name", ["with space", "percent%20sign"])
def test_plain_path_and_file_url_open_the_same_root(tmp_path: Path, name: str) -> None:
    root = tmp_path / name  # the URL's path is decoded once: %2520 is a literal %20
    by_path = LakeStorage.from_url(str(root))
    by_url = LakeStorage.from_url(root.as_uri())
    by_path.write_bytes("f.txt", b"same")
    assert by_url.read_bytes("f.txt") == b"same"
    assert by_path.url == by_url.url == root.resolve().as_uri()


@pytest.mark.parametrize("url", ["ftp://host/x", "s3://Bad_Bucket/x", "file://otherhost/x", ""])
def test_unsupported_urls_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError):
        LakeStorage.from_url(url)


def test_unknown_s3_option_names_the_allowed_ones() -> None:
    with pytest.raises(ConfigError, match="AWS_ENDPOINT_URL"):
        LakeStorage.from_url("s3://bucket/p", {"endpoint_urll": "http://x"})


def test_s3_settings_come_from_environment_unless_options_override(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "env-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    storage = LakeStorage.from_url("s3://bucket/pre/fix/", {"AWS_REGION": "us-west-2"})
    options = storage.storage_options()
    assert options["AWS_ACCESS_KEY_ID"] == "env-key"
    assert options["AWS_SECRET_ACCESS_KEY"] == "env-secret"
    assert options["AWS_REGION"] == "us-west-2"
    assert storage.url == "s3://bucket/pre/fix"
    assert storage.base_path == "bucket/pre/fix"
    assert "env-secret" not in repr(storage) and "env-secret" not in storage.describe()
