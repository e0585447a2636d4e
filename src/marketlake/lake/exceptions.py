"""Errors of the lake, and the translation of filesystem / S3 / delta-rs failures into them."""

from __future__ import annotations

import errno
import re
from collections.abc import Sequence

from marketlake.errors import MarketlakeError, TerminalError, TransientError


class LakeNotFoundError(TerminalError, FileNotFoundError):
    """A file or table that was asked for does not exist in the lake."""


_CREDENTIALS = (
    "access_denied",
    "accessdenied",
    "signature_does_not_match",
    "signaturedoesnotmatch",
    "invalid_access_key_id",
    "invalidaccesskeyid",
    "lacked the necessary privileges",
    "403 forbidden",
    "401 unauthorized",
    "unauthenticated",
    "no credentials",
    "missing credentials",
)
_NO_BUCKET = ("no_such_bucket", "nosuchbucket", "specified bucket does not exist")
_TRANSIENT = (
    "network_connection",
    "could not connect",
    "couldn't connect",
    "error sending request",
    "tcp connect error",
    "connection refused",
    "connection reset",
    "broken pipe",
    "timed out",
    "timeout",
    "slow_down",
    "slowdown",
    "service_unavailable",
    "503 service unavailable",
    "500 internal server error",
    "internal_failure",
    "throttl",
    "commit failed",
    "transaction failed",
    "version already exists",
    "concurrent",
)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def clean_message(message: str, secrets: Sequence[str] = ()) -> str:
    """One line of a driver message: colours, repeated whitespace and secrets removed."""
    text = _ANSI.sub("", message)
    text = " ".join(text.replace("↳", " ").split())
    for secret in secrets:
        text = text.replace(secret, "***")
    return text if len(text) <= 400 else text[:397] + "..."


def translate_error(
    exc: BaseException, *, action: str, where: str, secrets: Sequence[str] = ()
) -> MarketlakeError:
    """The marketlake error for driver exception ``exc`` raised while doing ``action``.

    ``where`` names the lake URL and endpoint; the result names both and never a secret.
    Missing credentials or bucket and unknown failures are terminal; an unreachable endpoint,
    throttling, timeouts and commit conflicts are transient.
    """
    if isinstance(exc, MarketlakeError):
        return exc
    detail = clean_message(str(exc), secrets)
    lowered = detail.lower()
    name = type(exc).__name__
    if any(marker in lowered for marker in _CREDENTIALS):
        return TerminalError(
            f"{action} at {where} was refused: the credentials were rejected or lack permission "
            f"(check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the lake options): {detail}"
        )
    if any(marker in lowered for marker in _NO_BUCKET):
        return TerminalError(f"{action} at {where} failed: the bucket does not exist: {detail}")
    if name == "TableNotFoundError" or isinstance(exc, FileNotFoundError):
        return LakeNotFoundError(f"{action} at {where} failed: not found: {detail}")
    if name == "CommitFailedError" or any(marker in lowered for marker in _TRANSIENT):
        return TransientError(f"{action} at {where} failed (may succeed on retry): {detail}")
    if isinstance(exc, OSError) and exc.errno in (errno.EAGAIN, errno.EINTR, errno.EBUSY):
        return TransientError(f"{action} at {where} failed (may succeed on retry): {detail}")
    return TerminalError(f"{action} at {where} failed: {name}: {detail}")
