"""Engine fixtures: the S3 server for the Spark engine's S3 lake test."""

from tests.services.seaweedfs import seaweedfs  # noqa: F401 - fixture re-exported
