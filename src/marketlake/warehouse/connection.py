"""Connecting to a warehouse server: retries on transient failures, one-line errors.

A server warehouse (PostgreSQL, Snowflake) connects through :func:`connect_with_retry`: a
failure the adapter classifies as transient (server down, starting up, timed out) is retried
with :mod:`marketlake.retry`; a terminal one (wrong password, unknown database) is raised at
once. Messages name the warehouse by its redacted location, never its password.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from marketlake.errors import TerminalError, TransientError
from marketlake.retry import RetryPolicy, call_with_retry

T = TypeVar("T")

CONNECT_RETRY = RetryPolicy(max_attempts=4, backoff_s=0.5, max_backoff_s=4.0)
QUERY_RETRY = RetryPolicy(max_attempts=3, backoff_s=0.5, max_backoff_s=4.0)


def first_line(message: str, secrets: tuple[str, ...] = ()) -> str:
    """The first non-empty line of a driver's message, with every secret in ``secrets`` hidden."""
    line = next((part.strip() for part in message.splitlines() if part.strip()), "")
    for secret in secrets:
        if secret:
            line = line.replace(secret, "***")
    return line


def connect_with_retry(
    connect: Callable[[], T],
    classify: Callable[[Exception], bool],
    describe: Callable[[Exception], str],
    policy: RetryPolicy = CONNECT_RETRY,
) -> T:
    """Call ``connect``; retry while ``classify(error)`` says the failure is transient.

    ``describe(error)`` is the one-line message (naming the host, never the password); the
    final error is a TransientError (server unreachable) or a TerminalError.
    """

    def attempt() -> T:
        try:
            return connect()
        except Exception as exc:
            if isinstance(exc, TerminalError | TransientError):
                raise
            if classify(exc):
                raise TransientError(describe(exc)) from exc
            raise TerminalError(describe(exc)) from exc

    return call_with_retry(policy, attempt)
