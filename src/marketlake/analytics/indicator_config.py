"""Checking ``[indicators]`` entries against TA-Lib and resolving them into a set.

:func:`resolve_indicators` checks every entry against TA-Lib's own description of its
function (inputs, parameters, outputs) and runs it once on a few synthetic bars, so an
unknown function, parameter, input or output, or a value TA-Lib refuses, is a one-line
:class:`~marketlake.errors.ConfigError` before a run starts. :func:`configured_indicators`
also gives the catalogue's ``indicators_1d`` the set's columns.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from marketlake.analytics.indicator_set import (
    DEFAULT_INDICATORS,
    DEFAULT_TABLES,
    PRICE_INPUTS,
    Indicator,
    IndicatorSet,
    call_indicator,
)
from marketlake.errors import ConfigError

_COLUMN = re.compile(r"^[a-z_][a-z0-9_]*$")
_RESERVED = ("symbol", "ts")


_RESOLVED: dict[str, IndicatorSet] = {}


def configured_indicators(tables: Mapping[str, Mapping[str, Any]]) -> IndicatorSet:
    """The indicator set of the settings' ``indicators`` tables (resolved once per distinct
    configuration), also made the columns of the catalogue's ``indicators_1d``."""
    from marketlake.catalogue import use_indicator_schema

    key = _plain(tables)
    if key not in _RESOLVED:
        _RESOLVED[key] = resolve_indicators(tables)
    resolved = _RESOLVED[key]
    use_indicator_schema(resolved.schema)
    return resolved


def resolve_indicators(tables: Mapping[str, Mapping[str, Any]]) -> IndicatorSet:
    """The indicator set ``tables`` (``[indicators]`` entries) describe, checked with TA-Lib.

    Raise ConfigError (one line, naming what is allowed) for an unknown function, a function
    that needs an input bars do not have, an unknown parameter or one of the wrong type, a
    value TA-Lib refuses, an unknown output, or a bad or repeated column name.
    """
    if _plain(tables) == _plain(DEFAULT_TABLES):
        return DEFAULT_INDICATORS
    return resolve_with_talib(tables)


def resolve_with_talib(tables: Mapping[str, Mapping[str, Any]]) -> IndicatorSet:
    """:func:`resolve_indicators` without the shortcut for the defaults (imports TA-Lib)."""
    if not tables:
        raise ConfigError(
            "indicators: the set is empty; list at least one, e.g. "
            'rsi_14 = {fn = "RSI", timeperiod = 14}'
        )
    indicators = tuple(_resolve(name, entry) for name, entry in tables.items())
    resolved = IndicatorSet(indicators)
    seen: set[str] = set()
    for indicator in indicators:
        for column in indicator.columns:
            if column in seen or column in _RESERVED:
                raise ConfigError(
                    f"indicators.{indicator.name}: column {column!r} is already taken; every "
                    "column needs its own name (symbol and ts are the keys)"
                )
            seen.add(column)
    return resolved


def _plain(value: Any) -> Any:
    """``value`` with mappings as sorted plain data, for comparing configurations."""
    return json.dumps(value, sort_keys=True, default=str)


def _resolve(name: str, entry: Any) -> Indicator:
    from talib import abstract, get_functions

    where = f"indicators.{name}"
    if not _COLUMN.match(name):
        raise ConfigError(f"{where}: names are lowercase letters, digits and _ (got {name!r})")
    if not isinstance(entry, Mapping):
        raise ConfigError(f'{where}: expected a table like {{fn = "RSI", timeperiod = 14}}')
    entry = dict(entry)  # a copy: the keys are taken off as they are read
    function = entry.pop("fn", None)
    if not isinstance(function, str):
        raise ConfigError(f'{where}: fn (the TA-Lib function name, e.g. fn = "RSI") is required')
    function = function.strip().upper()
    known = get_functions()
    if function not in known:
        raise ConfigError(
            f"{where}: unknown TA-Lib function {function!r}; TA-Lib functions: "
            + ", ".join(sorted(known))
        )
    info = abstract.Function(function).info  # type: ignore[attr-defined]
    inputs = _inputs(where, function, info["input_names"], entry.pop("inputs", {}))
    outputs_named = entry.pop("outputs", {})
    parameters = _parameters(where, function, info["parameters"], entry)
    outputs = _outputs(where, name, function, list(info["output_names"]), outputs_named)
    indicator = Indicator(name, function, inputs, parameters, outputs)
    _try(where, indicator)
    return indicator


def _inputs(where: str, function: str, names: Mapping[str, Any], chosen: Any) -> tuple[str, ...]:
    """The bar columns of ``function``'s inputs, in order; ``chosen`` (the entry's ``inputs``
    table) replaces TA-Lib's default column of an input, e.g. ``{price = "high"}``."""
    if not isinstance(chosen, Mapping) or sorted(set(chosen) - set(names)):
        raise ConfigError(
            f"{where}: inputs is a table of input = column; {function}'s inputs: "
            + ", ".join(f"{key} (default {value})" for key, value in names.items())
        )
    inputs: list[str] = []
    for key, default in names.items():
        value = chosen.get(key, default)
        many = not isinstance(default, str)
        if many and (isinstance(value, str) or len(value) != len(default)):
            raise ConfigError(
                f"{where}: {function} input {key} is {len(default)} columns (default {default})"
            )
        inputs.extend(list(value) if many else [value])
    other = [str(name) for name in inputs if name not in PRICE_INPUTS]
    if other:
        raise ConfigError(
            f"{where}: {function} needs input {', '.join(other)}, which bars do not have; "
            f"inputs are bar columns: {', '.join(PRICE_INPUTS)}"
        )
    return tuple(inputs)


def _parameters(
    where: str, function: str, defaults: Mapping[str, Any], given: Mapping[str, Any]
) -> tuple[tuple[str, int | float], ...]:
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        allowed = ", ".join([*defaults, "inputs", "outputs"])
        raise ConfigError(
            f"{where}: {function} has no parameter {', '.join(unknown)}; its parameters: {allowed}"
        )
    parameters: list[tuple[str, int | float]] = []
    for key, default in defaults.items():
        value = given.get(key, default)
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if isinstance(default, int) and not (number and float(value).is_integer()):
            raise ConfigError(
                f"{where}: {function} parameter {key} is a whole number (got {value!r})"
            )
        if not number:
            raise ConfigError(f"{where}: {function} parameter {key} is a number (got {value!r})")
        parameters.append((key, int(value) if isinstance(default, int) else float(value)))
    return tuple(parameters)


def _outputs(
    where: str, name: str, function: str, names: list[str], named: Any
) -> tuple[tuple[str, str], ...]:
    if not isinstance(named, Mapping):
        raise ConfigError(f"{where}: outputs is a table of output = column (e.g. {{real = 'x'}})")
    unknown = sorted(set(named) - set(names))
    if unknown:
        raise ConfigError(
            f"{where}: {function} has no output {', '.join(unknown)}; its outputs: "
            + ", ".join(names)
        )
    outputs = []
    for output in names:
        default = name if len(names) == 1 else f"{name}_{output}"
        column = named.get(output, default)
        if not isinstance(column, str) or not _COLUMN.match(column):
            raise ConfigError(
                f"{where}: column names are lowercase letters, digits and _ (got {column!r})"
            )
        outputs.append((output, column))
    return tuple(outputs)


def _try(where: str, indicator: Indicator) -> None:
    """Run the indicator on a few synthetic bars: TA-Lib refuses bad values here."""
    import numpy as np

    rng = np.random.default_rng(0)
    close = 100.0 + np.cumsum(rng.normal(0.0, 1.0, 64))
    bars = {
        "open": close + 0.1,
        "high": close + 1.0,
        "low": close - 1.0,
        "close": close,
        "volume": rng.uniform(1e3, 1e5, 64),
    }
    try:
        call_indicator(indicator, bars)
    except Exception as exc:  # TA-Lib raises bare Exceptions for bad parameters
        values = ", ".join(f"{key} = {value}" for key, value in indicator.parameters)
        raise ConfigError(
            f"{where}: TA-Lib refuses {indicator.function}({values}): {exc}"
        ) from None
