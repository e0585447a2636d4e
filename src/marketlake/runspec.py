"""The facts of one run, resolved once and carried as data: the run spec.

A :class:`RunSpec` fixes what a run does (its id, source, symbols, date range, bus, lake,
warehouse and engine) at the moment it is planned. It is stored with the run (as JSON under
the lake's ``_runs/`` folder) so that each stage can run in its own process, on its own
machine, and do exactly what the other stages of the same run do. URLs are stored with their
secrets masked; a process supplies the secret through its own configuration.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from marketlake.errors import ConfigError
from marketlake.redaction import redact_url
from marketlake.symbols import Symbol, parse_symbols

if TYPE_CHECKING:
    from marketlake.settings import Settings

RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:+\-]{0,127}$")
SPEC_FOLDER = "_runs"
STAGE_NAMES = ("fetch_history", "consume_history", "process", "load_warehouse", "success")
"""The batch stages of a run, in order."""
_MASK = "***"


def check_run_id(run_id: str) -> str:
    """``run_id`` if it is a safe name (letters, digits, ``_.:+-``, at most 128 characters)."""
    if not isinstance(run_id, str) or not RUN_ID.match(run_id):
        raise ConfigError(
            f"invalid run id {run_id!r}: use letters, digits and _ . : + - (at most 128)"
        )
    return run_id


@dataclass(frozen=True)
class RunSpec:
    """What one run does, resolved once.

    ``start``/``end`` are the resolved range; ``requested_start``/``requested_end`` what was
    asked for (``None``: the default range), which decides, for file sources, whether the
    expected sessions end at the range's end or at each symbol's last bar. ``symbols`` are
    parsed when the spec is made (planned or read back), so every stage holds Symbols.
    """

    run_id: str
    created_at: datetime
    source: str
    symbols: tuple[Symbol, ...]
    start: date
    end: date
    requested_start: date | None
    requested_end: date | None
    bus: str
    lake: str
    warehouse: str
    engine: str
    calendar: str
    source_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "symbols", tuple(parse_symbols(self.symbols)))

    def path(self) -> str:
        """Where the spec is stored, relative to the lake root."""
        return spec_path(self.run_id)

    def to_json(self) -> str:
        """The spec as JSON text (dates in ISO format)."""
        data = asdict(self)
        data["symbols"] = list(self.symbols)
        return json.dumps(data, default=_iso, sort_keys=True, indent=1)

    @classmethod
    def from_json(cls, text: str) -> RunSpec:
        """The spec stored as ``text`` by :meth:`to_json`."""
        try:
            data = json.loads(text)
            data["created_at"] = datetime.fromisoformat(data["created_at"])
            for name in ("start", "end", "requested_start", "requested_end"):
                value = data.get(name)
                data[name] = date.fromisoformat(value) if value else None
            data["symbols"] = tuple(data["symbols"])
            return cls(**data)
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"the stored run spec cannot be read: {exc}") from exc

    def settings(self, settings: Settings) -> Settings:
        """``settings`` with the run's choices applied (source, symbols, dates, components).

        A URL stored with a masked secret is taken from ``settings`` when the two agree once
        masked; otherwise this process is configured for another run and that is an error.
        """
        sources = settings.sources
        if "seed" in self.source_options:
            sources = sources.model_copy(
                update={"sim": sources.sim.model_copy(update={"seed": self.source_options["seed"]})}
            )
        if "path" in self.source_options:
            path = Path(self.source_options["path"])
            sources = sources.model_copy(
                update={"files": sources.files.model_copy(update={"path": path})}
            )
        return settings.model_copy(
            update={
                "source": self.source,
                "symbols": self.symbols,
                "start": self.requested_start,
                "end": self.requested_end,
                "bus": _unmask(self.bus, settings.bus_url, "bus", self.run_id),
                "lake": _unmask(self.lake, settings.lake_url, "lake", self.run_id),
                "warehouse": _unmask(
                    self.warehouse, settings.warehouse_url, "warehouse", self.run_id
                ),
                "engine": self.engine,
                "calendar": self.calendar,
                "sources": sources,
            }
        )


def spec_path(run_id: str) -> str:
    """The lake path of run ``run_id``'s spec."""
    return f"{SPEC_FOLDER}/{check_run_id(run_id)}.json"


def stored_url(url: str) -> str:
    """``url`` as a spec stores it: with any secret masked."""
    return redact_url(url)


def _unmask(stored: str, configured: str, what: str, run_id: str) -> str:
    if _MASK not in stored:
        return stored
    if redact_url(configured) == stored:
        return configured
    raise ConfigError(
        f"run {run_id} uses the {what} {stored}; this process is configured with "
        f"{redact_url(configured)}: pass the run's {what} with its credentials"
    )


def _iso(value: object) -> str:
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in a run spec")
