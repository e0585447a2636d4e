"""S3 settings of the lake: resolved from options and the standard AWS_* environment variables.

One :class:`S3Location` builds both clients the lake uses: a ``pyarrow.fs.S3FileSystem`` for
plain objects and the ``storage_options`` that delta-rs needs for Delta tables. Secrets live
only in this object; :meth:`S3Location.describe` and every error message leave them out.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from marketlake.errors import ConfigError

if TYPE_CHECKING:
    import pyarrow.fs as pafs

BUCKET_PATTERN = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")

# Accepted option names (case-insensitive) and the setting each one fills.
_OPTION_NAMES: dict[str, str] = {
    "aws_access_key_id": "access_key",
    "access_key_id": "access_key",
    "aws_secret_access_key": "secret_key",
    "secret_access_key": "secret_key",
    "aws_session_token": "session_token",
    "session_token": "session_token",
    "aws_endpoint_url": "endpoint",
    "aws_endpoint_url_s3": "endpoint",
    "endpoint_url": "endpoint",
    "endpoint": "endpoint",
    "aws_region": "region",
    "aws_default_region": "region",
    "region": "region",
    "aws_allow_http": "allow_http",
    "allow_http": "allow_http",
}
# Environment variables read when an option is not given, first match wins.
_ENV_NAMES: dict[str, tuple[str, ...]] = {
    "access_key": ("AWS_ACCESS_KEY_ID",),
    "secret_key": ("AWS_SECRET_ACCESS_KEY",),
    "session_token": ("AWS_SESSION_TOKEN",),
    "endpoint": ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
    "region": ("AWS_REGION", "AWS_DEFAULT_REGION"),
    "allow_http": ("AWS_ALLOW_HTTP",),
}
_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class S3Location:
    """A bucket and key prefix on an S3-compatible store, with how to reach it."""

    bucket: str
    prefix: str
    endpoint: str | None = None  # scheme://host[:port], None for AWS itself
    region: str | None = None
    access_key: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)

    @property
    def allow_http(self) -> bool:
        """True when the endpoint is plain http."""
        return bool(self.endpoint and self.endpoint.startswith("http://"))

    @property
    def url(self) -> str:
        """``s3://bucket/prefix`` without a trailing slash."""
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    @property
    def base_path(self) -> str:
        """``bucket/prefix`` as pyarrow.fs addresses it."""
        return f"{self.bucket}/{self.prefix}".rstrip("/")

    def describe(self) -> str:
        """The URL and endpoint, for messages (never a secret)."""
        return f"{self.url} (endpoint {self.endpoint or 'AWS default'})"

    def secrets(self) -> list[str]:
        """The secret values, so messages can be scrubbed of them."""
        return [s for s in (self.secret_key, self.session_token) if s]

    def filesystem(self) -> pafs.S3FileSystem:
        """A pyarrow S3 filesystem with path-style addressing."""
        import pyarrow.fs as pafs

        kwargs: dict[str, object] = {
            "access_key": self.access_key,
            "secret_key": self.secret_key,
            "session_token": self.session_token,
            "region": self.region,
            "force_virtual_addressing": False,
            "connect_timeout": 5.0,
            "request_timeout": 60.0,
        }
        if self.endpoint:
            scheme, _, host = self.endpoint.partition("://")
            kwargs["endpoint_override"] = host
            kwargs["scheme"] = scheme
        return pafs.S3FileSystem(**{k: v for k, v in kwargs.items() if v is not None})

    def storage_options(self) -> dict[str, str]:
        """What delta-rs needs: endpoint, region, keys, http, and safe concurrent commits.

        ``conditional_put=etag`` makes delta-rs commit each log entry with a put-if-absent
        (``If-None-Match: *``), which AWS S3, MinIO and SeaweedFS honour, so concurrent
        writers cannot overwrite each other's commit without a DynamoDB lock.
        """
        options = {
            "conditional_put": "etag",
            "AWS_VIRTUAL_HOSTED_STYLE_REQUEST": "false",
        }
        values = {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_SESSION_TOKEN": self.session_token,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": self.region,
        }
        options.update({k: v for k, v in values.items() if v})
        if self.allow_http:
            options["AWS_ALLOW_HTTP"] = "true"
        return options


def parse_s3_url(url: str, options: Mapping[str, str] | None = None) -> S3Location:
    """Resolve ``s3://bucket/prefix`` plus ``options`` (over AWS_* env vars) to a location."""
    rest = url[len("s3://") :]
    bucket, _, prefix = rest.partition("/")
    if not BUCKET_PATTERN.match(bucket):
        raise ConfigError(
            f"invalid S3 lake URL {url!r}: the bucket must be 3-63 lower-case letters, digits, "
            "'.' or '-' (s3://bucket/prefix)"
        )
    prefix = prefix.strip("/")
    if any(part in ("", ".", "..") for part in prefix.split("/")) and prefix:
        raise ConfigError(f"invalid S3 lake URL {url!r}: empty, '.' or '..' segment in prefix")
    settings = _resolve(options or {})
    endpoint = _normalise_endpoint(settings.get("endpoint"), settings.get("allow_http"))
    region = settings.get("region") or ("us-east-1" if endpoint else None)
    return S3Location(
        bucket=bucket,
        prefix=prefix,
        endpoint=endpoint,
        region=region,
        access_key=settings.get("access_key"),
        secret_key=settings.get("secret_key"),
        session_token=settings.get("session_token"),
    )


def _resolve(options: Mapping[str, str]) -> dict[str, str]:
    settings: dict[str, str] = {}
    for key, value in options.items():
        target = _OPTION_NAMES.get(key.lower())
        if target is None:
            allowed = ", ".join(sorted({k.upper() for k in _OPTION_NAMES if k.startswith("aws")}))
            raise ConfigError(f"unknown S3 lake option {key!r}; allowed: {allowed}")
        settings[target] = str(value)
    for target, names in _ENV_NAMES.items():
        if target not in settings:
            for name in names:
                if os.environ.get(name):
                    settings[target] = os.environ[name]
                    break
    return settings


def _normalise_endpoint(endpoint: str | None, allow_http: str | None) -> str | None:
    if not endpoint:
        return None
    endpoint = endpoint.rstrip("/")
    if "://" not in endpoint:
        scheme = "http" if (allow_http or "").lower() in _TRUE else "https"
        endpoint = f"{scheme}://{endpoint}"
    if not endpoint.startswith(("http://", "https://")):
        raise ConfigError(f"invalid S3 endpoint {endpoint!r}: use http://host:port or https://")
    return endpoint
