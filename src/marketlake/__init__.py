"""marketlake: market data from sources through a bus into a Delta lakehouse and a SQL warehouse."""

__version__ = "0.1.0"
