"""`python -m nightly.status` (`make status`): the last runs and how fresh each source is.

It reads the run ledger only, never the warehouse, so it never needs (or blocks) the writer's lock
and works while a run is in progress, which it shows as running. `--alert-if-stale` makes it the
dead-man's switch for cron: it alerts, and exits 1, when the last successful load or publish is
older than `stale_after_hours`, which also catches the nights when no run happened at all, or
when the data folder has too little free space for the next night (the nightly job's own
preflight check, `nightly.disk`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from core import lock
from core.dbt import failed_and_warned_tests
from core.paths import Paths
from core.warehouse import RAW_SCHEMA
from extract.endpoints import ENDPOINTS
from nightly import alerts, disk
from nightly.ledger import RUNNING, Ledger, RunRecord, open_orchestrated_night, utc_now
from nightly.settings import NightlySettings

RAW_TABLES = tuple(f"{RAW_SCHEMA}.{endpoint.name}" for endpoint in ENDPOINTS)
EXIT_STALE = 1


@dataclass(frozen=True)
class Freshness:
    """When a source last arrived: a raw table's last load, or the analysts' last publish."""

    source: str
    event: str
    at: datetime | None
    stale: bool


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nightly.status", description=__doc__)
    parser.add_argument("--runs", type=int, default=10, help="runs to list (default: %(default)s)")
    parser.add_argument(
        "--alert-if-stale",
        action="store_true",
        help="alert and exit 1 when a source is stale or the disk too full for the next night",
    )
    args = parser.parse_args(argv)
    settings = NightlySettings.from_config()
    # probed on both sides of the read, so a run that starts or ends meanwhile is still running
    paths = Paths.resolve()
    held_before = lock.is_held(paths.lock_file)
    records = Ledger(paths.runs_dir).records()
    now = utc_now()
    run_in_progress = (
        held_before
        or lock.is_held(paths.lock_file)
        or open_orchestrated_night(records, now, settings.stale_after_hours) is not None
    )
    freshness = source_freshness(records, now, settings.stale_after_hours, paths.analytics)
    print(f"Nightly runs, newest first ({paths.runs_dir}):")
    print(render_runs(records[-args.runs :], run_in_progress, now))
    print()
    print(render_freshness(freshness, now, settings.stale_after_hours))
    space = disk.check_space(paths, records, settings)
    print()
    print(f"Disk: {space.describe()}: {'ok' if space.ok else 'TOO LITTLE for the next night'}")
    stale = [entry for entry in freshness if entry.stale]
    problems = [dead_man_alert(stale, now, settings.stale_after_hours)] if stale else []
    if not space.ok:
        problems.append(
            f"MooVitamix nightly: NOT ENOUGH DISK for the next night, which will refuse to "
            f"start (exit 3): {space.describe()}. Free space on that disk."
        )
    if args.alert_if_stale and problems:
        alerts.send("\n".join(problems), settings.alert_webhook_url)
        return EXIT_STALE
    return 0


def source_freshness(
    records: Sequence[RunRecord], now: datetime, stale_after_hours: float, analytics: Path
) -> list[Freshness]:
    """Each raw table's last successful load and the analysts' file's last publish."""
    limit = timedelta(hours=stale_after_hours)

    def entry(source: str, event: str, at: datetime | None) -> Freshness:
        return Freshness(source, event, at, at is None or now - at > limit)

    loads = {
        table: max((r.loaded_at for r in records if r.loaded_at and r.volume(table)), default=None)
        for table in RAW_TABLES
    }
    published = max((r.published_at for r in records if r.published_at), default=None)
    return [entry(table, "loaded", at) for table, at in loads.items()] + [
        entry(str(analytics), "published", published)
    ]


def render_runs(records: Sequence[RunRecord], run_in_progress: bool, now: datetime) -> str:
    """The runs, newest first: one line each."""
    header = ["run", "started (UTC)", "status", "exit", "seconds"]
    header += [table.removeprefix(f"{RAW_SCHEMA}.") for table in RAW_TABLES]
    header += ["tests failed/warned", "failed step: error"]
    live = next((r.run_id for r in reversed(records) if r.status == RUNNING), None)
    lines = [header]
    for record in reversed(records):
        status, seconds = record.status, record.seconds
        if status == RUNNING:
            status = "running" if run_in_progress and record.run_id == live else "killed?"
            seconds = (now - record.started_at).total_seconds()
        failed, warned = failed_and_warned_tests(record.nodes)
        problem = record.failing_step or record.current_step or ""
        if status == "running" and record.current_activity:
            problem = f"{problem}: {_shorten(record.current_activity, 70)}"
        if record.error_message:
            problem = f"{problem}: {_shorten(record.error_message, 70)}"
        lines.append(
            [
                record.run_id,
                f"{record.started_at:%Y-%m-%d %H:%M}",
                status,
                "" if record.exit_code is None else str(record.exit_code),
                "" if seconds is None else f"{seconds:,.0f}",
                *[_read_rows(record, table) for table in RAW_TABLES],
                f"{failed}/{warned}" if record.nodes else "",
                problem,
            ]
        )
    return _columns(lines, right={3, 4, 5, 6, 7})


def render_freshness(
    freshness: Sequence[Freshness], now: datetime, stale_after_hours: float
) -> str:
    lines = [["source", "last", "at (UTC)", "hours ago", ""]]
    for entry in freshness:
        hours = "" if entry.at is None else f"{_hours_ago(now, entry.at):,.1f}"
        at = "never" if entry.at is None else f"{entry.at:%Y-%m-%d %H:%M}"
        lines.append([entry.source, entry.event, at, hours, "STALE" if entry.stale else "ok"])
    return f"Freshness (stale after {stale_after_hours:g} h):\n" + _columns(lines, right={3})


def dead_man_alert(stale: Sequence[Freshness], now: datetime, stale_after_hours: float) -> str:
    """The alert of a night that did not happen, or did not succeed."""
    parts = [
        f"{entry.source} never {entry.event}"
        if entry.at is None
        else f"{entry.source} last {entry.event} {_hours_ago(now, entry.at):,.0f} h ago"
        for entry in stale
    ]
    return (
        f"MooVitamix nightly: STALE, nothing succeeded in the last {stale_after_hours:g} h "
        f"(did the run happen? `make status`): {'; '.join(parts)}"
    )


def _hours_ago(now: datetime, at: datetime) -> float:
    return (now - at).total_seconds() / 3600


def _read_rows(record: RunRecord, table: str) -> str:
    volume = record.volume(table)
    return "" if volume is None or volume.read_rows is None else f"{volume.read_rows:,}"


def _shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _columns(rows: list[list[str]], right: set[int]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  "
        + "  ".join(
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    )


if __name__ == "__main__":
    sys.exit(main())
