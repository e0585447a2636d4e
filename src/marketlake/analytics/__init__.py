"""Batch analytics: adjustment, daily metrics, technical indicators."""
