import pytest

from marketlake.settings import load_settings, masked


def test_masked_settings_hide_url_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARKETLAKE_BUS", "kafka://user:sekrit@127.0.0.1:9092")
    monkeypatch.setenv("MARKETLAKE_WAREHOUSE", "postgresql://app:sekrit@db:5432/market")
    shown = masked(load_settings())
    assert "sekrit" not in repr(shown)
    assert shown["bus"] == "kafka://user:***@127.0.0.1:9092"
    assert shown["warehouse_url"] == "postgresql://app:***@db:5432/market"
