import pytest

from marketlake.errors import SymbolError
from marketlake.symbols import validate_symbol, validate_symbols


@pytest.mark.parametrize("symbol", ["AAPL", "brk.b", "BRK-B", "^GSPC", "EURUSD=X", "A" * 15])
def test_valid_symbols_are_normalised(symbol: str) -> None:
    assert validate_symbol(symbol) == symbol.upper()


@pytest.mark.parametrize(
    "symbol", ["", "A" * 16, "../etc", "AAPL;DROP", "a b", "AA/PL", "'; --", ".HIDDEN"]
)
def test_invalid_symbols_are_rejected(symbol: str) -> None:
    with pytest.raises(SymbolError, match="invalid symbol"):
        validate_symbol(symbol)


def test_validate_symbols_deduplicates_in_order() -> None:
    assert validate_symbols(["msft", "AAPL", "MSFT"]) == ["MSFT", "AAPL"]
