"""Symbol validation: a symbol is checked before it reaches a path, a URL or a query."""

from __future__ import annotations

import re
from collections.abc import Iterable

from marketlake.errors import SymbolError

SYMBOL_PATTERN = re.compile(r"^[A-Z0-9^][A-Z0-9.\-^=]{0,14}$")
DEFAULT_SYMBOLS: tuple[str, ...] = (
    "AAPL",
    "MSFT",
    "GOOGL",
    "AMZN",
    "META",
    "TSLA",
    "NVDA",
    "INTC",
    "JPM",
    "V",
)


def is_valid_symbol(symbol: str) -> bool:
    """Return True when ``symbol`` matches the allowed pattern (already upper-cased)."""
    return bool(SYMBOL_PATTERN.match(symbol))


def validate_symbol(symbol: str) -> str:
    """Normalise ``symbol`` to upper case and check it; raise SymbolError if it is not allowed."""
    if not isinstance(symbol, str):
        raise SymbolError(f"symbol must be a string, got {type(symbol).__name__}")
    normalised = symbol.strip().upper()
    if not is_valid_symbol(normalised):
        raise SymbolError(
            f"invalid symbol {symbol!r}: use letters, digits, '.', '-', '^' or '=', "
            "at most 15 characters"
        )
    return normalised


def validate_symbols(symbols: Iterable[str]) -> list[str]:
    """Validate and de-duplicate ``symbols``, keeping their order."""
    seen: dict[str, None] = {}
    for symbol in symbols:
        seen.setdefault(validate_symbol(symbol), None)
    return list(seen)
