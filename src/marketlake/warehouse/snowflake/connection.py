"""Snowflake connections: URLs, credentials from the environment, one-line errors.

``snowflake://user:password@account/database/schema[?warehouse=WH&role=ROLE]``. A password
left out of the URL is read from ``SNOWFLAKE_PASSWORD``; a key pair is used instead when
``?private_key_file=PATH`` or ``SNOWFLAKE_PRIVATE_KEY_FILE`` names a PKCS#8 key (its
passphrase in ``SNOWFLAKE_PRIVATE_KEY_FILE_PWD``). Credentials are never printed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import snowflake.connector

from marketlake.errors import ConfigError
from marketlake.redaction import redact_url
from marketlake.warehouse.connection import connect_with_retry, first_line

# connector error numbers of refused credentials: retrying cannot help
_AUTH_ERRORS = {390100, 390101, 390102, 390144}
_OPTIONS = ("warehouse", "role", "private_key_file")


@dataclass(frozen=True)
class SnowflakeTarget:
    """Where a Snowflake warehouse lives and how to log in (``repr`` hides the secrets)."""

    account: str
    user: str
    database: str
    schema: str
    options: dict[str, str] = field(default_factory=dict)
    password: str = field(default="", repr=False)
    key_passphrase: str = field(default="", repr=False)

    @property
    def location(self) -> str:
        """``account/database/schema``: safe to print."""
        return f"{self.account}/{self.database}/{self.schema}"

    def connect_arguments(self) -> dict[str, Any]:
        """Keyword arguments of ``snowflake.connector.connect``."""
        arguments: dict[str, Any] = {
            "account": self.account,
            "user": self.user,
            "database": self.database,
            "schema": self.schema,
            "paramstyle": "qmark",
            "session_parameters": {"TIMEZONE": "UTC", "QUERY_TAG": "marketlake"},
            "login_timeout": 30,
        }
        key_file = self.options.get("private_key_file", "")
        if key_file:
            arguments["private_key_file"] = key_file
            if self.key_passphrase:
                arguments["private_key_file_pwd"] = self.key_passphrase
        else:
            arguments["password"] = self.password
        arguments.update(
            {name: value for name, value in self.options.items() if name != "private_key_file"}
        )
        return arguments


def parse_snowflake_url(url: str) -> SnowflakeTarget:
    """The target of ``snowflake://user:password@account/database/schema[?warehouse=&role=]``."""
    parts = urlsplit(url)
    path = [unquote(part) for part in parts.path.split("/") if part]
    if parts.scheme != "snowflake" or not parts.hostname or not parts.username or len(path) != 2:
        raise ConfigError(
            f"bad Snowflake warehouse URL {redact_url(url)!r}: use "
            "snowflake://user:password@account/database/schema[?warehouse=WH&role=ROLE]"
        )
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    unknown = sorted(set(query) - set(_OPTIONS))
    if unknown:
        raise ConfigError(
            f"unknown option {', '.join(unknown)} in Snowflake warehouse URL {redact_url(url)!r}; "
            f"allowed: {', '.join(_OPTIONS)}"
        )
    if "private_key_file" not in query and os.environ.get("SNOWFLAKE_PRIVATE_KEY_FILE"):
        query["private_key_file"] = os.environ["SNOWFLAKE_PRIVATE_KEY_FILE"]
    return SnowflakeTarget(
        account=parts.hostname,
        user=unquote(parts.username),
        database=path[0],
        schema=path[1],
        options=query,
        password=unquote(parts.password or "") or os.environ.get("SNOWFLAKE_PASSWORD", ""),
        key_passphrase=os.environ.get("SNOWFLAKE_PRIVATE_KEY_FILE_PWD", ""),
    )


def is_transient(error: Exception) -> bool:
    """True for network failures and timeouts; refused credentials and SQL errors are final."""
    errno = getattr(error, "errno", None)
    if errno in _AUTH_ERRORS:
        return False
    return isinstance(
        error,
        snowflake.connector.errors.OperationalError | snowflake.connector.errors.InterfaceError,
    )


def connect(target: SnowflakeTarget) -> Any:
    """A connection to ``target``, retried while Snowflake cannot be reached."""
    secrets = (target.password, target.key_passphrase)

    def describe(exc: Exception) -> str:
        reason = first_line(str(exc), secrets)
        return f"cannot connect to the Snowflake warehouse at {target.location}: {reason}"

    arguments = target.connect_arguments()
    return connect_with_retry(
        lambda: snowflake.connector.connect(**arguments), is_transient, describe
    )
