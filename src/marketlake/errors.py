"""The exception tree: one base, split into transient (retry) and terminal (do not retry)."""

from __future__ import annotations


class MarketlakeError(Exception):
    """Base of every error marketlake raises on purpose."""


class TransientError(MarketlakeError):
    """A failure that may succeed if retried (throttling, timeouts, an outage)."""


class TerminalError(MarketlakeError):
    """A failure that retrying cannot fix (bad input, bad configuration)."""


class ConfigError(TerminalError):
    """Configuration is invalid or names something that does not exist."""


class SymbolError(TerminalError):
    """A symbol does not match the allowed pattern."""


class SourceError(TerminalError):
    """A source could not produce data (bad file, unknown symbol, provider error)."""


class MissingExtraError(TerminalError):
    """An optional dependency is needed; the message names the pip extra."""

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(
            f"{package} is not installed; install it with: pip install 'marketlake[{extra}]'"
        )
