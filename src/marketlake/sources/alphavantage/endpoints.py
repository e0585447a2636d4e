"""Which daily series a key is asked for, and what it was refused.

``TIME_SERIES_DAILY_ADJUSTED`` carries splits and dividends but is a premium endpoint for free
keys; ``TIME_SERIES_DAILY`` is free and carries prices as traded only. With the setting
``daily_function = "auto"`` (the default) the adjusted series is asked first; when the key is
refused it (a premium notice, or "Invalid API call" where the free series answers), the free
series is used for the rest of the run, with a warning and a note for the run summary. The
setting can also force either series, and then a refusal is an error.
"""

from __future__ import annotations

import logging

from marketlake.sources.alphavantage.payload import PremiumEndpointError, RefusedCallError

log = logging.getLogger("marketlake.sources.alphavantage")

AUTO = "auto"
DAILY_ADJUSTED = "TIME_SERIES_DAILY_ADJUSTED"
DAILY = "TIME_SERIES_DAILY"
DAILY_FUNCTIONS = (AUTO, DAILY_ADJUSTED, DAILY)
SETTING = "sources.alphavantage.daily_function (MARKETLAKE_SOURCES__ALPHAVANTAGE__DAILY_FUNCTION)"


class DailyEndpoint:
    """The daily series of one key for one run: the setting, then what the key was refused."""

    def __init__(self, setting: str = AUTO) -> None:
        if setting not in DAILY_FUNCTIONS:
            raise ValueError(f"daily_function must be one of {', '.join(DAILY_FUNCTIONS)}")
        self.setting = setting
        self.function = DAILY if setting == DAILY else DAILY_ADJUSTED
        self.note: str | None = None
        self._settled = setting != AUTO

    def __repr__(self) -> str:
        return f"DailyEndpoint(setting={self.setting!r}, function={self.function!r})"

    @property
    def adjusted(self) -> bool:
        """True when the series in use carries splits and dividends."""
        return self.function == DAILY_ADJUSTED

    @property
    def probes(self) -> int:
        """Extra requests a run may spend learning the key's series (0 or 1)."""
        return 0 if self._settled else 1

    def settle(self) -> None:
        """The series in use answered with data: keep it without probing again."""
        self._settled = True

    def alternative(self, error: Exception) -> str | None:
        """The series to ask after ``error``, or None when the error stands.

        Only ``auto`` falls back, only from the adjusted series, and only on a refusal of the
        endpoint (a premium notice, or "Invalid API call" before the series ever answered). A
        forced series' premium notice is raised again with the setting that chooses another.
        """
        premium = isinstance(error, PremiumEndpointError)
        # once the adjusted series has answered, "Invalid API call" is about the symbol
        refused = premium or (isinstance(error, RefusedCallError) and not self._settled)
        if self.setting == AUTO and self.function == DAILY_ADJUSTED and refused:
            return DAILY
        if premium:
            raise PremiumEndpointError(
                f"{error}; set {SETTING} to 'auto' or '{DAILY}', or use a premium key"
            ) from None
        return None

    def fall_back(self, function: str, error: Exception) -> None:
        """Use ``function`` for the rest of the run, because the key was refused: ``error``."""
        self.function, self._settled = function, True
        self.note = (
            f"alphavantage: {DAILY_ADJUSTED} refused for this key, {function} used instead "
            f"(prices as traded; it carries no splits or dividends): {error}"
        )
        log.warning("%s", self.note)
