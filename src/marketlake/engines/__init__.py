"""Batch analytics engines: each reads the curated lake, computes and writes the derived data."""
