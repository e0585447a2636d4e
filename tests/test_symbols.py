import pytest

from marketlake.errors import SymbolError
from marketlake.symbols import Symbol, parse_symbol, parse_symbols


@pytest.mark.parametrize("symbol", ["AAPL", "brk.b", "BRK-B", "^GSPC", "EURUSD=X", "A" * 15])
def test_valid_symbols_are_normalised(symbol: str) -> None:
    assert parse_symbol(symbol) == symbol.upper()


@pytest.mark.parametrize(
    "symbol", ["", "A" * 16, "../etc", "AAPL;DROP", "a b", "AA/PL", "'; --", ".HIDDEN"]
)
def test_invalid_symbols_are_rejected(symbol: str) -> None:
    with pytest.raises(SymbolError, match="invalid symbol"):
        parse_symbol(symbol)
    with pytest.raises(SymbolError, match="invalid symbol"):
        Symbol(symbol)


def test_parse_symbols_deduplicates_in_order() -> None:
    assert parse_symbols(["msft", "AAPL", "MSFT"]) == ["MSFT", "AAPL"]


def test_a_symbol_is_parsed_once_and_stays_a_symbol() -> None:
    symbol = parse_symbol(" brk.b ")
    assert type(symbol) is Symbol and symbol == "BRK.B" and isinstance(symbol, str)
    assert parse_symbol(symbol) is symbol
    assert Symbol.parse("aapl") == Symbol("AAPL") == "AAPL"
    assert all(type(s) is Symbol for s in parse_symbols(["a", "b"]))


def test_only_text_is_a_symbol() -> None:
    with pytest.raises(SymbolError, match="must be a string"):
        parse_symbol(42)  # type: ignore[arg-type]
