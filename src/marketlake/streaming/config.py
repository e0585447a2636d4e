"""Configuration of the stream processor: lateness, windows, moving averages, alerts.

The defaults are those of the ``[stream]`` settings section
(:class:`~marketlake.settings.StreamSettings`); :meth:`StreamConfig.from_settings` builds the
configuration a command runs with.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from marketlake.errors import ConfigError
from marketlake.settings import Settings, StreamSettings

MINUTE = timedelta(minutes=1)
_DEFAULTS = StreamSettings()


def to_us(span: timedelta) -> int:
    """Whole microseconds in ``span``."""
    return span // timedelta(microseconds=1)


def format_span(span: timedelta) -> str:
    """A short name for a whole number of minutes: ``15m``, ``1h``, ``90m``, ``1d``."""
    minutes = int(span / MINUTE)
    if minutes % 1440 == 0:
        return f"{minutes // 1440}d"
    if minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m"


def _check_minutes(name: str, span: timedelta) -> None:
    if span <= timedelta(0) or span % MINUTE != timedelta(0):
        raise ConfigError(f"{name} must be a positive whole number of minutes, got {span}")


@dataclass(frozen=True)
class SlidingWindow:
    """Windows of length ``period`` starting every ``every``, aligned to the Unix epoch (UTC)."""

    period: timedelta = _DEFAULTS.sliding_window
    every: timedelta = _DEFAULTS.sliding_step

    def __post_init__(self) -> None:
        _check_minutes("sliding window period", self.period)
        _check_minutes("sliding window step", self.every)

    @property
    def kind(self) -> str:
        """The ``kind`` column value of these windows, e.g. ``sliding_15m_5m``."""
        return f"sliding_{format_span(self.period)}_{format_span(self.every)}"


def ma_kind(horizon: timedelta) -> str:
    """The ``kind`` of the trailing moving-average rows over ``horizon``, e.g. ``ma_1h``."""
    return f"ma_{format_span(horizon)}"


@dataclass(frozen=True)
class StreamConfig:
    """What the processor computes and how long it waits for late ticks.

    - ``allowed_lateness``: the watermark of a symbol is its largest event time minus this.
    - ``sliding``: sliding (or tumbling, when period == every) windows.
    - ``ma_horizons``: trailing horizons of the per-minute moving-average rows.
    - ``alert_pct``: an alert fires when a final window moved more than this many percent
      from its first to its last price; ``alert_kinds`` picks the window kinds checked
      (None: the sliding kinds).
    - ``late_retention``: how far behind the watermark a late tick still corrects its bars and
      windows; older ticks go to the late output with reason ``beyond_retention`` only.
    - ``emit_provisional``: also emit not-yet-final sliding windows touched by each batch.
    - ``calendar``: the exchange calendar used to close idle symbols at the session close.
    """

    allowed_lateness: timedelta = _DEFAULTS.lateness
    sliding: tuple[SlidingWindow, ...] = field(default_factory=lambda: (SlidingWindow(),))
    ma_horizons: tuple[timedelta, ...] = _DEFAULTS.ma_windows
    alert_pct: float = _DEFAULTS.alert_pct
    alert_kinds: tuple[str, ...] | None = None
    late_retention: timedelta = _DEFAULTS.late_retention
    emit_provisional: bool = True
    calendar: str = Settings.model_fields["calendar"].default

    def __post_init__(self) -> None:
        if self.allowed_lateness < timedelta(0):
            raise ConfigError(f"allowed_lateness must be >= 0, got {self.allowed_lateness}")
        if self.late_retention < timedelta(0):
            raise ConfigError(f"late_retention must be >= 0, got {self.late_retention}")
        for horizon in self.ma_horizons:
            _check_minutes("moving-average horizon", horizon)
        if not self.alert_pct > 0:
            raise ConfigError(f"alert_pct must be a positive percentage, got {self.alert_pct}")
        kinds = self.kinds
        if len(set(kinds)) != len(kinds):
            raise ConfigError(f"window kinds must be distinct, got {kinds}")
        unknown = set(self.alert_kinds or ()) - set(kinds)
        if unknown:
            raise ConfigError(f"alert_kinds {sorted(unknown)} are not among {kinds}")

    @classmethod
    def from_settings(cls, stream: StreamSettings, calendar: str) -> StreamConfig:
        """The configuration of the ``[stream]`` section, closing sessions on ``calendar``."""
        return cls(
            allowed_lateness=stream.lateness,
            sliding=(SlidingWindow(stream.sliding_window, stream.sliding_step),),
            ma_horizons=stream.ma_windows,
            alert_pct=stream.alert_pct,
            late_retention=stream.late_retention,
            calendar=calendar,
        )

    @property
    def kinds(self) -> tuple[str, ...]:
        """Every window kind this configuration emits."""
        return tuple(s.kind for s in self.sliding) + tuple(ma_kind(h) for h in self.ma_horizons)

    @property
    def alerted_kinds(self) -> tuple[str, ...]:
        """The window kinds whose final rows are checked for alerts."""
        if self.alert_kinds is not None:
            return self.alert_kinds
        return tuple(s.kind for s in self.sliding)

    @property
    def longest_span(self) -> timedelta:
        """The longest window or horizon: how much history a correction may need."""
        spans = [s.period for s in self.sliding] + list(self.ma_horizons)
        return max(spans, default=MINUTE)

    def fingerprint(self) -> str:
        """A text identifying the settings a checkpoint depends on."""
        return repr(
            (
                self.allowed_lateness,
                tuple((s.period, s.every) for s in self.sliding),
                self.ma_horizons,
                self.late_retention,
                self.calendar,
            )
        )
