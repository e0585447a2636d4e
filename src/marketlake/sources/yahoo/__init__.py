"""Yahoo Finance: chart transport (``source``), payload checks (``chart``), canonical rows."""

from marketlake.sources.yahoo.source import YahooSource

__all__ = ["YahooSource"]
