"""Names of the lake tables the batch pipeline reads and writes (relative to the lake root)."""

BARS = "curated/bars_1d"
ACTIONS = "curated/corporate_actions"
ADJUSTED = "analytics/bars_1d_adjusted"
METRICS = "analytics/daily_metrics"
INDICATORS = "analytics/indicators_1d"
MISSING = "quality/missing_sessions"
