"""The batch pipeline: fetch_history → consume_history → process → load_warehouse → success."""
