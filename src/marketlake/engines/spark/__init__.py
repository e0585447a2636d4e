"""The Spark batch engine: the Polars engine's per-symbol kernels run on a Spark cluster."""
