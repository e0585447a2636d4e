"""Opening a warehouse by URL: schemes, optional drivers and secrets kept out of errors."""

from __future__ import annotations

import re

import pytest

from marketlake.errors import ConfigError, MarketlakeError, MissingExtraError
from marketlake.warehouse import open_warehouse, redact_url
from marketlake.warehouse.registry import ADAPTERS, Adapter


def test_an_unknown_scheme_lists_the_valid_ones_without_the_password() -> None:
    with pytest.raises(ConfigError) as caught:
        open_warehouse("mysql://analyst:hunter2@db.example:3306/market")
    message = str(caught.value)
    assert "hunter2" not in message
    for scheme in ADAPTERS:
        assert f"{scheme}://" in message


def test_an_adapter_whose_driver_is_missing_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(
        ADAPTERS,
        "exampledb",
        Adapter(
            "marketlake.warehouse.exampledb",
            "ExampleWarehouse",
            "exampledb",
            "exampledb-driver",
            "exampledb",
        ),
    )
    with pytest.raises(MissingExtraError) as caught:
        open_warehouse("exampledb://analyst:hunter2@host/db")
    assert "pip install 'marketlake[exampledb]'" in str(caught.value)
    assert "exampledb-driver" in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_a_server_warehouse_that_cannot_be_reached_keeps_its_password_secret() -> None:
    # Port 1 on the loopback refuses connections: with or without the driver this must fail
    # with a marketlake error that does not repeat the password.
    with pytest.raises(MarketlakeError) as caught:
        open_warehouse("postgresql://analyst:hunter2@127.0.0.1:1/market")
    assert "hunter2" not in str(caught.value)


def test_only_working_warehouses_are_registered() -> None:
    assert list(ADAPTERS) == ["duckdb", "postgresql", "postgres", "snowflake"]
    with pytest.raises(ConfigError, match="duckdb://, postgresql://, postgres://, snowflake://"):
        open_warehouse("mysql://analyst:hunter2@127.0.0.1:1/market")


def test_a_duckdb_url_without_a_path_is_rejected() -> None:
    with pytest.raises(MarketlakeError, match=re.escape("duckdb:///path.duckdb")):
        open_warehouse("duckdb://")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://analyst:hunter2@db:5432/market", "postgresql://analyst:***@db:5432/market"),
        (
            "postgresql://db/market?user=a&password=hunter2",
            "postgresql://db/market?user=a&password=***",
        ),
        ("snowflake://analyst@acct/db?token=hunter2", "snowflake://analyst@acct/db?token=***"),
        ("duckdb:///data/warehouse.duckdb", "duckdb:///data/warehouse.duckdb"),
    ],
)
def test_redact_url_hides_passwords_and_tokens(url: str, expected: str) -> None:
    assert redact_url(url) == expected
