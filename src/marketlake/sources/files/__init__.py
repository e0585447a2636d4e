"""Provider files (CSV, Parquet): reading (``source``), cells, rows and rejects."""

from marketlake.sources.files.source import FileSource

__all__ = ["FileSource"]
