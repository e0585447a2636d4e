"""The [indicators] configuration: column names, parameters, fingerprints and clear errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from marketlake.analytics.indicator_config import resolve_indicators, resolve_with_talib
from marketlake.analytics.indicator_set import (
    DEFAULT_INDICATORS,
    DEFAULT_TABLES,
)
from marketlake.catalogue import INDICATORS_1D
from marketlake.errors import ConfigError
from marketlake.settings import load_settings
from marketlake.warehouse.tables import TABLES


def test_the_defaults_are_what_talib_makes_of_the_default_tables() -> None:
    assert resolve_with_talib(DEFAULT_TABLES) == DEFAULT_INDICATORS
    assert load_settings().indicators == DEFAULT_TABLES
    assert INDICATORS_1D.schema.names == ["symbol", "ts", *DEFAULT_INDICATORS.columns]


def test_column_names() -> None:
    indicators = resolve_indicators(
        {
            "rsi_9": {"fn": "rsi", "timeperiod": 9},
            "stoch": {"fn": "STOCH", "outputs": {"slowk": "k"}},
            "aroon": {"fn": "AROON"},
            "doji": {"fn": "CDLDOJI", "outputs": {"integer": "is_doji"}},
        }
    )
    assert indicators.columns == (
        "rsi_9",
        "k",
        "stoch_slowd",
        "aroon_aroondown",
        "aroon_aroonup",
        "is_doji",
    )
    (rsi, stoch, _, _) = indicators.indicators
    assert rsi.function == "RSI" and rsi.parameters == (("timeperiod", 9),)
    assert dict(stoch.parameters)["fastk_period"] == 5  # TA-Lib's default where none is given


def test_parameters_take_talibs_types_and_change_the_fingerprint() -> None:
    bands = resolve_indicators({"bb": {"fn": "BBANDS", "nbdevup": 3, "matype": 1.0}})
    assert dict(bands.indicators[0].parameters)["nbdevup"] == 3.0
    assert dict(bands.indicators[0].parameters)["matype"] == 1
    other = resolve_indicators({"bb": {"fn": "BBANDS", "nbdevup": 2, "matype": 1}})
    assert bands.columns == other.columns
    assert bands.fingerprint != other.fingerprint
    assert (
        bands.fingerprint
        == resolve_indicators({"bb": {"fn": "BBANDS", "nbdevup": 3.0, "matype": 1}}).fingerprint
    )


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"fn": "RSX"}, "unknown TA-Lib function 'RSX'; TA-Lib functions: .*RSI, "),
        ({"fn": "RSI", "period": 3}, "RSI has no parameter period; its parameters: timeperiod, "),
        ({"fn": "RSI", "timeperiod": 2.5}, "timeperiod is a whole number"),
        ({"fn": "RSI", "timeperiod": "14"}, "timeperiod is a whole number"),
        ({"fn": "BBANDS", "nbdevup": True}, "nbdevup is a number"),
        ({"fn": "RSI", "timeperiod": -3}, "TA-Lib refuses RSI\\(timeperiod = -3\\)"),
        ({"fn": "MAVP"}, "needs input periods, which bars do not have"),
        ({"fn": "MACD", "outputs": {"signal": "s"}}, "no output signal; its outputs: macd, "),
        ({"fn": "MAX", "inputs": {"prices": "high"}}, "MAX's inputs: price \\(default close\\)"),
        ({"fn": "MAX", "inputs": {"price": "vwap"}}, "needs input vwap, which bars do not have"),
        ({"fn": "SMA", "outputs": {"real": "Bad Name"}}, "lowercase letters"),
        ({"timeperiod": 3}, "fn \\(the TA-Lib function name"),
    ],
)
def test_bad_entries_are_one_line_errors(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=f"^indicators\\.x: .*{message}") as caught:
        resolve_indicators({"x": entry})
    assert "\n" not in str(caught.value)


def test_repeated_and_reserved_columns_are_errors() -> None:
    with pytest.raises(ConfigError, match=r"indicators\.y: column 'x' is already taken"):
        resolve_indicators({"x": {"fn": "SMA"}, "y": {"fn": "EMA", "outputs": {"real": "x"}}})
    with pytest.raises(ConfigError, match="column 'ts' is already taken"):
        resolve_indicators({"ts": {"fn": "SMA"}})
    with pytest.raises(ConfigError, match="the set is empty"):
        resolve_indicators({})
    with pytest.raises(ConfigError, match=r"indicators\.x: expected a table like"):
        resolve_indicators({"x": 5})  # type: ignore[dict-item]


def test_the_toml_set_replaces_the_defaults_and_the_catalogue_follows(tmp_path: Path) -> None:
    config = tmp_path / "marketlake.toml"
    config.write_text(
        '[indicators]\nrsi_7 = {fn = "RSI", timeperiod = 7}\n'
        'macd = {fn = "MACD", outputs = {macd = "macd_line"}}\n'
    )
    settings = load_settings(config=config)
    assert set(settings.indicators) == {"rsi_7", "macd"}
    columns = ["symbol", "ts", "rsi_7", "macd_line", "macd_macdsignal", "macd_macdhist"]
    assert INDICATORS_1D.columns == columns
    assert TABLES["indicators_1d"].columns == columns


def test_the_environment_adds_entries_as_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "marketlake.toml"
    config.write_text('[indicators]\nrsi_7 = {fn = "RSI", timeperiod = 7}\n')
    monkeypatch.setenv(
        "MARKETLAKE_INDICATORS",
        json.dumps({"rsi_7": {"fn": "RSI", "timeperiod": 9}, "obv": {"fn": "OBV"}}),
    )
    settings = load_settings(config=config)
    assert settings.indicators == {"rsi_7": {"fn": "RSI", "timeperiod": 9}, "obv": {"fn": "OBV"}}


def test_a_bad_set_fails_loading_the_settings(tmp_path: Path) -> None:
    config = tmp_path / "marketlake.toml"
    config.write_text('[indicators]\nx = {fn = "NOPE"}\n')
    with pytest.raises(ConfigError, match=r"indicators\.x: unknown TA-Lib function 'NOPE'"):
        load_settings(config=config)
