"""Reconciliation: incoming bars that contradict stored bars of another origin.

Every bar carries its origin in ``source``: the provider (``yahoo``, ``alphavantage``,
``sim``) or, for an imported file, ``file:<file name>``. The curated ``bars_1d`` table keeps
one bar per (symbol, ts), so the lake writer compares each incoming bar with the stored bar it
would replace. When the two come from different origins and their closes differ by more than
``validation.max_source_diff`` (default 0.001), the stored bar is *contradicted*, and the
contradictions become findings (:mod:`marketlake.quality.conflicts`): one per session, or one
per range when the closes keep a constant ratio (a split-adjusted file over as-traded history
gives one finding with its ratio, not one per session). Findings go to
``quality/reconciliation`` and the warehouse table ``reconciliation``, with ``source_a`` /
``close_a`` the stored bar, ``source_b`` / ``close_b`` the incoming one, the origin ``kept``
and the ``action`` taken, which the setting ``validation.on_conflict`` chooses:

- ``keep`` (default): the stored bar stays; the incoming bar is not written (its close is in
  the finding, its payload under ``raw/``).
- ``replace``: the incoming bar is validated and written in place of the stored one (``kept``
  names the stored origin again if validation rejects the incoming bar).
- ``quarantine``: the stored bar stays and the incoming bar goes to quarantine under the rule
  ``source_conflict``, with the finding in its detail.

A bar from the stored bar's own origin with other values is a revision by that origin and
replaces it; a bar of another origin within the tolerance replaces it too (they agree).

Findings are written before the bars are merged, and are keyed by (symbol, first session,
source_a, source_b), so a writer killed in between and run again writes the same findings
again, not new ones. Bars of several origins for one session in one chunk are reconciled in
turn, origin by origin, in the order they arrived (see :mod:`marketlake.pipeline.ingest`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import polars as pl
import pyarrow as pa

from marketlake.quality.conflicts import describe_finding, find_conflicts
from marketlake.records import quarantine_rows
from marketlake.schemas import BAR_SCHEMA, QUARANTINE_SCHEMA, RECONCILIATION_SCHEMA
from marketlake.settings.sections import ON_CONFLICT_CHOICES

if TYPE_CHECKING:
    from marketlake.settings import Settings

KEEP = "keep"
REPLACE = "replace"
QUARANTINE = "quarantine"
ON_CONFLICT = ON_CONFLICT_CHOICES  # keep, replace, quarantine
SOURCE_CONFLICT = "source_conflict"
_UTC_US = pl.Datetime("us", "UTC")


@dataclass(frozen=True)
class Reconciliation:
    """The outcome of :func:`reconcile_bars`.

    ``compared``: incoming bars that met a stored bar of another origin. ``flagged``: the
    findings (``RECONCILIATION_SCHEMA``). ``bars``: the incoming bars that go on to validation
    (without the contradicting ones unless the action is ``replace``). ``rejects``: quarantine
    rows of the bars the ``quarantine`` action set aside. ``conflicting``: contradicting
    incoming bars.
    """

    compared: int
    flagged: pa.Table
    bars: pa.Table
    rejects: pa.Table = field(default_factory=QUARANTINE_SCHEMA.empty_table)
    conflicting: int = 0
    tolerance: float = 0.0
    findings: pl.DataFrame | None = None  # ``flagged`` with the columns describing it
    covered: pl.DataFrame | None = None  # contradicting bars: symbol, ts, finding_ts, ...

    def settled(self, written: pa.Table) -> pa.Table:
        """``flagged`` with ``kept`` naming the stored origin for ``replace`` findings none of
        whose incoming bars survived validation (``written``: the bars about to be merged)."""
        findings, covered = self.findings, self.covered
        if findings is None or covered is None or findings.height == 0:
            return self.flagged
        if not (findings["action"] == REPLACE).any():
            return self.flagged
        landed = (
            covered.join(
                _frame(written.select(["symbol", "ts", "source"])).rename({"source": "source_b"}),
                on=["symbol", "ts", "source_b"],
            )
            .select("symbol", pl.col("finding_ts").alias("ts"), "source_a", "source_b")
            .unique()
            .with_columns(pl.lit(True).alias("_landed"))
        )
        keys = ["symbol", "ts", "source_a", "source_b"]
        settled = findings.join(landed, on=keys, how="left").with_columns(
            pl.when((pl.col("action") == REPLACE) & pl.col("_landed").is_null())
            .then(pl.col("source_a"))
            .otherwise(pl.col("kept"))
            .alias("kept")
        )
        return _flagged(_with_details(settled.drop("_landed"), self.tolerance))


def max_source_diff(settings: Settings) -> float:
    """The largest relative close difference between origins that is not flagged."""
    return settings.validation.max_source_diff


def on_conflict(settings: Settings) -> str:
    """What the lake writer does with a contradicted stored bar (``keep`` by default)."""
    return settings.validation.on_conflict


def _frame(table: pa.Table) -> pl.DataFrame:
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame


def _flagged(findings: pl.DataFrame) -> pa.Table:
    return findings.select(RECONCILIATION_SCHEMA.names).to_arrow().cast(RECONCILIATION_SCHEMA)


def _with_details(findings: pl.DataFrame, tolerance: float) -> pl.DataFrame:
    details = [describe_finding(row, tolerance) for row in findings.iter_rows(named=True)]
    return findings.with_columns(pl.Series("detail", details, pl.String()))


def reconcile_bars(
    incoming: pa.Table,
    stored: pa.Table | None,
    threshold: float,
    now: datetime,
    policy: str = KEEP,
    corporate_actions: pa.Table | None = None,
) -> Reconciliation:
    """Compare ``incoming`` bars with the ``stored`` bars of the same (symbol, ts) from other
    origins; flag closes that differ by more than ``threshold`` (relative) and apply
    the ``policy`` (``keep``, ``replace`` or ``quarantine``) to the contradicting bars.
    The symbols' ``corporate_actions`` let a finding name the split that explains its ratio."""
    if policy not in ON_CONFLICT:
        raise ValueError(f"unknown on_conflict choice {policy!r}: use one of {ON_CONFLICT}")
    conflicts = find_conflicts(incoming, stored, threshold, corporate_actions)
    if conflicts.findings.height == 0:
        empty = RECONCILIATION_SCHEMA.empty_table()
        return Reconciliation(conflicts.compared, empty, incoming, tolerance=threshold)
    kept = pl.col("source_b") if policy == REPLACE else pl.col("source_a")
    findings = conflicts.findings.with_columns(
        kept.alias("kept"),
        pl.lit(policy).alias("action"),
        pl.lit(now).cast(_UTC_US).alias("flagged_at"),
    )
    findings = _with_details(findings, threshold)
    flagged = _flagged(findings)
    covered = conflicts.bars
    if policy == REPLACE:
        return Reconciliation(
            conflicts.compared,
            flagged,
            incoming,
            conflicting=covered.height,
            tolerance=threshold,
            findings=findings,
            covered=covered,
        )
    bars = _frame(incoming)
    marks = covered.select(
        "symbol",
        "ts",
        pl.col("source_b").alias("source"),
        pl.col("close_b").alias("close"),
        "finding_ts",
        "source_a",
    )
    keys = ["symbol", "ts", "source", "close"]
    rejects = QUARANTINE_SCHEMA.empty_table()
    if policy == QUARANTINE:
        rejects = _quarantine(bars.join(marks, on=keys), findings, now)
    return Reconciliation(
        conflicts.compared,
        flagged,
        bars.join(marks, on=keys, how="anti").to_arrow().cast(BAR_SCHEMA),
        rejects=rejects,
        conflicting=covered.height,
        tolerance=threshold,
        findings=findings,
        covered=covered,
    )


def _quarantine(set_aside: pl.DataFrame, findings: pl.DataFrame, now: datetime) -> pa.Table:
    """Quarantine rows for the incoming bars ``set_aside``, each with its finding's detail."""
    described = set_aside.join(
        findings.select(
            "symbol",
            pl.col("ts").alias("finding_ts"),
            "source_a",
            pl.col("source_b").alias("source"),
            pl.col("detail").alias("_finding"),
        ),
        on=["symbol", "finding_ts", "source_a", "source"],
        how="left",
    ).sort("symbol", "ts")
    details = [
        f"close {close:g} from {source} contradicts the stored bar: {finding}"
        for close, source, finding in described.select("close", "source", "_finding").iter_rows()
    ]
    return quarantine_rows(
        "bars_1d",
        described.select(BAR_SCHEMA.names).to_arrow().cast(BAR_SCHEMA),
        SOURCE_CONFLICT,
        details,
        now=now,
    )
