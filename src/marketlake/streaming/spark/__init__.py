"""The stream processor on Spark Structured Streaming (``stream process --engine spark``)."""
