"""Alpha Vantage: the keyed transport (``source``), payload checks, canonical rows."""

from marketlake.sources.alphavantage.source import AlphaVantageSource

__all__ = ["AlphaVantageSource"]
