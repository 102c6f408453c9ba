"""Health checks that compare tonight with history: row volumes, listens, duration, dbt warnings.

Pure functions from numbers to findings, so each rule is tested without running a night. The
history is the trailing successful runs; a failed night never becomes the yardstick.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median

from core.dbt import SKIPPED
from nightly.ledger import ERROR, INFO, WARNING, Finding, NodeResult, RunRecord
from nightly.settings import NightlySettings

# The median absolute deviation times this estimates a standard deviation (normal data).
MAD_TO_SIGMA = 1.4826


def volume_findings(
    tonight: dict[str, int], history: Sequence[RunRecord], settings: NightlySettings
) -> list[Finding]:
    """Each table's row count against the median and spread of the same table in `history`.

    Error: a drop of more than `volume_error_drop` below the median, or zero rows where there
    used to be some. Warning: further from the median than the band. Silent, and saying so,
    until `min_history_runs` successful runs exist.
    """
    findings = []
    for table, rows in tonight.items():
        past = table_history(table, history)
        if rows == 0 and any(past):
            findings.append(_volume(ERROR, table, rows, median(past), "is empty", settings))
        elif len(past) >= settings.min_history_runs:
            findings += _against_history(table, rows, past, settings)
    if len(history) < settings.min_history_runs:
        findings.append(
            Finding(
                "volume",
                INFO,
                "history",
                f"volume checks wait for {settings.min_history_runs} successful runs of history "
                f"({len(history)} so far): only empty tables are errors until then",
            )
        )
    return findings


@dataclass(frozen=True)
class VolumeBand:
    """What the volume check expects of a table tonight: the median of its history, the band
    around it that passes, and the floor below which the night is an error."""

    usual: float
    width: float  # rows either side of `usual` that pass; further is a warning
    error_below: float  # fewer rows than this is an error

    @property
    def low(self) -> float:
        return self.usual - self.width

    @property
    def high(self) -> float:
        return self.usual + self.width


def table_history(table: str, history: Sequence[RunRecord]) -> list[int]:
    """The row counts of `table` in `history` (the runs that measured it)."""
    return [
        volume.table_rows
        for record in history
        if (volume := record.volume(table)) and volume.table_rows is not None
    ]


def volume_band(past: Sequence[int], settings: NightlySettings) -> VolumeBand:
    """The band of a table whose past row counts are `past` (not empty)."""
    usual = median(past)
    spread = MAD_TO_SIGMA * median(abs(count - usual) for count in past)
    width = max(settings.volume_warn_sigmas * spread, settings.volume_warn_min_share * usual)
    return VolumeBand(usual, width, usual * (1 - settings.volume_error_drop))


def _against_history(
    table: str, rows: int, past: list[int], settings: NightlySettings
) -> list[Finding]:
    band = volume_band(past, settings)
    if rows < band.error_below:
        limit = f"more than {settings.volume_error_drop:.0%} below the median"
        return [_volume(ERROR, table, rows, band.usual, limit, settings)]
    if abs(rows - band.usual) > band.width:
        why = f"outside the usual ±{band.width:,.0f}"
        return [_volume(WARNING, table, rows, band.usual, why, settings)]
    return []


def _volume(
    level: str, table: str, rows: int, usual: float, why: str, settings: NightlySettings
) -> Finding:
    change = f" ({rows / usual - 1:+.0%})" if usual else ""
    message = f"{table}: {rows:,} rows, usual {usual:,.0f}{change}: {why}"
    if level == ERROR and settings.accept_volume_drop:
        level, message = WARNING, f"{message} (accepted: NIGHTLY__ACCEPT_VOLUME_DROP)"
    return Finding("volume", level, table, message, float(rows), float(usual))


def listens_finding(
    listens: int, listens_of_retired_users: int, previous: int | None
) -> Finding | None:
    """Listen lists only grow: tonight's listens plus those of users retired since the previous
    load must reach the previous count. A shrink beyond the retired users' is an error."""
    if previous is None or listens + listens_of_retired_users >= previous:
        return None
    lost = previous - listens - listens_of_retired_users
    return Finding(
        "listens",
        ERROR,
        "raw.listen_history",
        f"raw.listen_history: {listens:,} listens, {previous:,} at the previous load: {lost:,} "
        f"lost beyond the {listens_of_retired_users:,} of retired users",
        float(listens),
        float(previous),
    )


def duration_finding(
    seconds: float, history: Sequence[RunRecord], settings: NightlySettings
) -> Finding | None:
    """A run much slower than the median successful run is a warning."""
    past = [r.seconds for r in history if r.seconds is not None]
    if len(past) < settings.min_history_runs:
        return None
    usual = median(past)
    slow = seconds > settings.duration_warn_factor * usual
    if not slow or seconds - usual < settings.duration_warn_min_seconds:
        return None
    return Finding(
        "duration",
        WARNING,
        "run",
        f"the run took {seconds:,.0f} s, usual {usual:,.0f} s ({seconds / usual:.1f}x)",
        seconds,
        usual,
    )


def new_test_warnings(nodes: Sequence[NodeResult], earlier: Sequence[RunRecord]) -> list[Finding]:
    """dbt tests that warn tonight but did not the last time they ran (a night that skipped a
    test says nothing of it: the run before does): news, not a known quirk. With no earlier
    build there is no news to tell."""
    last_status: dict[str, str] = {}
    for record in earlier:  # oldest first: a later status replaces an earlier one
        for node in record.nodes:
            if node.status != SKIPPED:
                last_status[node.unique_id] = node.status
    if not last_status:
        return []
    return [
        Finding(
            "dbt_test",
            WARNING,
            node.name,
            f"dbt test {node.name} warns since tonight: {node.message or node.failures}",
            float(node.failures or 0),
        )
        for node in nodes
        if node.status == "warn" and last_status.get(node.unique_id) != "warn"
    ]
