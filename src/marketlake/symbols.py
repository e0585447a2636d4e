"""Symbols, parsed once at the edge: a :class:`Symbol` is checked before it exists.

Text that names a symbol (settings, command-line options, a stored run spec, an adapter's
arguments) is turned into a :class:`Symbol` by :func:`parse_symbol`; every layer behind that
edge holds Symbols and does not check them again. Parsing a Symbol returns it unchanged, so
an entry point that may be called with either costs nothing for parsed input.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from marketlake.errors import SymbolError

SYMBOL_PATTERN = re.compile(r"^[A-Z0-9^][A-Z0-9.\-^=]{0,14}$")


class Symbol(str):
    """A ticker symbol: upper case, letters, digits and ``.-^=``, at most 15 characters.

    ``Symbol(text)`` parses ``text`` like :func:`parse_symbol`, so no unchecked Symbol exists.
    """

    __slots__ = ()

    def __new__(cls, text: str) -> Symbol:
        if type(text) is cls:
            return text
        if not isinstance(text, str):
            raise SymbolError(f"symbol must be a string, got {type(text).__name__}")
        normalised = text.strip().upper()
        if not SYMBOL_PATTERN.match(normalised):
            raise SymbolError(
                f"invalid symbol {text!r}: use letters, digits, '.', '-', '^' or '=', "
                "at most 15 characters"
            )
        return super().__new__(cls, normalised)

    @classmethod
    def parse(cls, text: str) -> Symbol:
        """``text`` upper-cased and checked; SymbolError when it is not a valid symbol."""
        return cls(text)


def is_valid_symbol(symbol: str) -> bool:
    """Return True when ``symbol`` matches the allowed pattern (already upper-cased)."""
    return bool(SYMBOL_PATTERN.match(symbol))


def parse_symbol(text: str) -> Symbol:
    """``text`` as a :class:`Symbol` (upper-cased); SymbolError when it is not allowed."""
    return Symbol(text)


def parse_symbols(texts: Iterable[str]) -> list[Symbol]:
    """Parse and de-duplicate ``texts``, keeping their order."""
    seen: dict[Symbol, None] = {}
    for text in texts:
        seen.setdefault(Symbol(text), None)
    return list(seen)


DEFAULT_SYMBOLS: tuple[Symbol, ...] = tuple(
    parse_symbols(["AAPL", "MSFT", "GOOGL", "AMZN", "META", "TSLA", "NVDA", "INTC", "JPM", "V"])
)
