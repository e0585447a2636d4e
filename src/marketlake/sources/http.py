"""A small HTTP client for provider APIs: bounded retries with backoff, secrets kept out of text.

Every provider adapter talks HTTP through :class:`HttpClient`. It retries what may succeed
later (HTTP 429 and 5xx, timeouts, a connection dropped mid-request) a bounded number of times
with exponential backoff, and turns the rest into marketlake errors. A server that cannot be
reached at all (connection refused, unknown host, TLS refused) is not a busy server: that fails
at once with :class:`UnreachableError`. When the retries are spent the error is a
:class:`~marketlake.retry.RetriesSpentError`, which the runner does not retry again. Secrets
passed as query parameters (an API key) are replaced by ``***`` in every URL it reports, in
exception text and in the ``httpx`` logger's records.
"""

from __future__ import annotations

import functools
import logging
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from marketlake.errors import SourceError, TransientError
from marketlake.retry import RetriesSpentError, Retry, RetryPolicy, call_with_retry

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)
T = TypeVar("T")

BROWSER_USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MASK = "***"


class UnreachableError(SourceError):
    """The provider's server could not be reached (refused, unknown host): not retried."""


class _SecretRedactor(logging.Filter):
    """Rewrites log records that mention a registered secret."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: dict[str, int] = {}
        self._lock = threading.Lock()

    def add(self, secret: str) -> None:
        with self._lock:
            self._secrets[secret] = self._secrets.get(secret, 0) + 1

    def remove(self, secret: str) -> None:
        with self._lock:
            left = self._secrets.get(secret, 0) - 1
            if left > 0:
                self._secrets[secret] = left
            else:
                self._secrets.pop(secret, None)

    def filter(self, record: logging.LogRecord) -> bool:
        with self._lock:
            secrets = list(self._secrets)
        if not secrets:
            return True
        message = record.getMessage()
        if any(secret in message for secret in secrets):
            record.msg = redact(message, secrets)
            record.args = ()
        return True


_REDACTOR = _SecretRedactor()
for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).addFilter(_REDACTOR)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """One verifying TLS context for every client (building one loads the CA bundle)."""
    import httpx

    return httpx.create_ssl_context()


def _reason(exc: Exception) -> str:
    """The innermost reason of a connection failure ("[Errno 111] Connection refused")."""
    text = str(exc).strip()
    return text or type(exc).__name__


def redact(text: str, secrets: list[str] | tuple[str, ...]) -> str:
    """``text`` with every non-empty secret replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text


class HttpClient:
    """GET with bounded retries; URLs are reported without secret parameters.

    ``before_attempt`` runs before every attempt (a request budget hooks in here);
    ``sleep`` is the wait between attempts (tests pass a fake one).
    """

    def __init__(
        self,
        provider: str,
        *,
        timeout_s: float,
        retries: int = 3,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        headers: Mapping[str, str] | None = None,
        secrets: tuple[str, ...] = (),
        before_attempt: Callable[[], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        self.provider = provider
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._headers = dict(headers or {})
        self._secrets = tuple(s for s in secrets if s)
        self._before_attempt = before_attempt
        self._sleep = sleep
        self._client: httpx.Client | None = None
        for secret in self._secrets:
            _REDACTOR.add(secret)

    def __repr__(self) -> str:
        return f"HttpClient(provider={self.provider!r}, timeout_s={self.timeout_s})"

    @property
    def client(self) -> httpx.Client:
        """The underlying ``httpx.Client`` (created on first use, keeps cookies)."""
        if self._client is None:
            import httpx

            self._client = httpx.Client(
                timeout=self.timeout_s,
                headers=self._headers,
                follow_redirects=True,
                verify=_ssl_context(),
            )
        return self._client

    def close(self) -> None:
        """Close the connection pool; the client can be used again afterwards."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def __del__(self) -> None:
        for secret in getattr(self, "_secrets", ()):
            _REDACTOR.remove(secret)

    def safe_url(self, url: str, params: Mapping[str, Any] | None = None) -> str:
        """``url`` with ``params`` encoded and every secret replaced by ``***``."""
        import httpx

        full = str(httpx.URL(url, params={k: str(v) for k, v in (params or {}).items()}))
        return redact(full, self._secrets)

    @property
    def policy(self) -> RetryPolicy:
        """The retry policy of every request: ``retries`` more attempts, exponential backoff."""
        return RetryPolicy(
            max_attempts=self.retries + 1,
            backoff_s=self.backoff_s,
            max_backoff_s=self.max_backoff_s,
        )

    def retry(
        self,
        operation: Callable[[], T],
        policy: RetryPolicy | None = None,
        give_up: Callable[[BaseException, int], BaseException] | None = None,
    ) -> T:
        """Run ``operation`` under ``policy`` (default :attr:`policy`), logging each retry and
        waiting with this client's ``sleep``."""
        chosen = policy or self.policy

        def log_retry(retry: Retry) -> None:
            log.warning("%s; retry %d of %d", retry.error, retry.attempt, self.retries)

        def exhausted(error: BaseException, attempts: int) -> BaseException:
            return RetriesSpentError(
                f"{error} (gave up after {attempts} attempts; allowed retries: {self.retries})"
            )

        return call_with_retry(
            chosen, operation, sleep=self._sleep, on_retry=log_retry, give_up=give_up or exhausted
        )

    def get_once(self, url: str, params: Mapping[str, Any] | None = None) -> httpx.Response:
        """One GET without retries; a server that cannot be reached is an UnreachableError,
        other transport failures (timeouts, a dropped connection) are TransientError."""
        import httpx

        if self._before_attempt is not None:
            self._before_attempt()
        try:
            return self.client.get(url, params=dict(params or {}))
        except httpx.ConnectError as exc:
            raise UnreachableError(
                f"{self.provider}: cannot connect to {self.safe_url(url)}: "
                f"{redact(_reason(exc), self._secrets)}; check the network and "
                f"sources.{self.provider}.base_url"
            ) from None
        except httpx.TimeoutException as exc:
            raise self._translate(
                f"{self.provider}: request to {self.safe_url(url, params)} timed out after "
                f"{self.timeout_s:g} s",
                exc,
            ) from None
        except httpx.TransportError as exc:
            raise self._translate(
                f"{self.provider}: request to {self.safe_url(url, params)} failed: "
                f"{type(exc).__name__}: {redact(str(exc), self._secrets)}",
                exc,
            ) from None

    def get(self, url: str, params: Mapping[str, Any] | None = None) -> httpx.Response:
        """GET ``url``; retry timeouts, transport errors, 429 and 5xx up to ``retries`` times.

        Returns the response for any other status (the caller interprets 4xx). Raises
        TransientError when every attempt failed.
        """

        def attempt() -> httpx.Response:
            response = self.get_once(url, params)
            if response.status_code in RETRY_STATUSES:
                raise TransientError(
                    f"{self.provider}: {self.safe_url(url, params)} answered HTTP "
                    f"{response.status_code}"
                )
            return response

        return self.retry(attempt)

    def decode_json(self, response: httpx.Response, url: str, params: Mapping[str, Any]) -> Any:
        """The JSON body of ``response``; SourceError naming the (safe) URL when it is not JSON."""
        import json

        try:
            return json.loads(response.content)
        except (ValueError, UnicodeDecodeError) as exc:
            raise SourceError(
                f"{self.provider}: {self.safe_url(url, params)} returned a body that is not "
                f"valid JSON (HTTP {response.status_code}, {len(response.content)} bytes): "
                f"{redact(str(exc), self._secrets)}"
            ) from None

    def _translate(self, message: str, exc: Exception) -> TransientError:
        error = TransientError(message)
        error.__cause__ = None
        log.debug("%s (%s)", message, type(exc).__name__)
        return error
