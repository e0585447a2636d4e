"""What a run kept under ``raw/``: the symbols each of the simulator's raw records holds."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.services.seaweedfs import SeaweedFS


def payload_symbols(stored: bytes) -> list[str]:
    """The symbols a stored (gzipped) raw record of the simulator lists."""
    symbols = json.loads(gzip.decompress(stored))["symbols"]
    assert isinstance(symbols, list)
    return symbols


def symbols_kept(files: Iterable[Path]) -> Counter[str]:
    """How many of ``files`` (the simulator's raw records) list each symbol."""
    return Counter(s for path in files for s in payload_symbols(path.read_bytes()))


def symbols_kept_in_bucket(server: SeaweedFS, keys: Iterable[str]) -> Counter[str]:
    """How many of the objects ``keys`` (the simulator's raw records in ``server``'s bucket)
    list each symbol."""
    client = server.client()
    return Counter(
        symbol
        for key in keys
        for symbol in payload_symbols(
            client.get_object(Bucket=server.bucket, Key=key)["Body"].read()
        )
    )
