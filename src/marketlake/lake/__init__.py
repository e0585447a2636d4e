"""The lake: raw payloads, curated and analytics Delta tables, and quarantine, on disk or S3."""

from __future__ import annotations

from marketlake.lake.commits import MergeStats
from marketlake.lake.exceptions import LakeNotFoundError
from marketlake.lake.storage import LakeStorage
from marketlake.lake.tables import LakeTables
from marketlake.retry import RetryPolicy

__all__ = ["LakeNotFoundError", "LakeStorage", "LakeTables", "MergeStats", "RetryPolicy"]
