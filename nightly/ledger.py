"""The run ledger: one JSON file per run in the data folder, replaced atomically at every step.

Why not a table in the warehouse: the run holds the warehouse's write lock, so a record kept there
could not be read during a run (`make status`), nor written by a run that cannot open the file
(refused, or failing to open it). A small file per run, written to a temporary name, fsynced and
renamed over the old one, is readable at any moment without a lock, and a killed run leaves its
last state (running, in step X) for the next run to close. The `ops` schema is rebuilt from it.

A full disk must not cost the night its record: the ledger keeps a small reserve file, created
while there is room, and gives it up to write a record the disk has no room for.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import secrets
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from core.dbt import NodeResult

log = logging.getLogger("moovitamix.nightly")
T = TypeVar("T")

RUNNING, SUCCESS, WARNED, FAILED, REFUSED = "running", "success", "warned", "failed", "refused"
SUCCEEDED = frozenset({SUCCESS, WARNED})  # the runs whose numbers are history to compare with
INFO, WARNING, ERROR = "info", "warning", "error"
RESERVE_BYTES = 1 << 20  # a run record is tens of KB: room for a few of them


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_run_id(started_at: datetime) -> str:
    """Sortable by start time, unique even for two runs started in the same second."""
    return f"{started_at:%Y%m%dT%H%M%SZ}-{secrets.token_hex(2)}"


@dataclass
class StepTiming:
    """One step of a run: when it started, how long it took, and how it ended."""

    step: str
    started_at: datetime
    seconds: float
    outcome: str  # ok, failed, or skipped (after a data-quality error)


@dataclass
class TableVolume:
    """How much data one table moved tonight: extraction counts (raw tables) and its size."""

    table_name: str
    table_rows: int | None = None  # current versions for raw tables, all rows for the others
    announced_rows: int | None = None
    read_rows: int | None = None
    new_rows: int | None = None
    changed_rows: int | None = None
    retired_rows: int | None = None
    quarantined_rows: int | None = None
    retried_requests: int | None = None
    rate_limited_requests: int | None = None
    listens: int | None = None  # listen_history: listens in the current lists
    pages_read: int | None = None  # raw tables: API pages read (the API's pace against usual)


@dataclass
class Finding:
    """What a check concluded: info (recorded), warning (alert) or error (nothing is published)."""

    check: str
    level: str
    subject: str
    message: str
    observed: float | None = None
    usual: float | None = None
    step: str = ""  # the step that found it, stamped by the runner


@dataclass
class RunRecord:
    """Everything one run of the nightly job knows about itself."""

    run_id: str
    started_at: datetime
    status: str = RUNNING
    current_step: str | None = None
    # what the current step is doing now, for long steps (scoring: "scoring: 400,000/1,000,000
    # users ..."), so that `make status` can say what a long night is doing
    current_activity: str | None = None
    finished_at: datetime | None = None
    failing_step: str | None = None
    error_message: str | None = None
    exit_code: int | None = None
    load_id: str | None = None
    published_at: datetime | None = None
    alert: str | None = None
    action: str | None = None  # what the operator should do about a failure
    free_bytes: int | None = None  # free space in the data folder when the run ended
    data_dir_bytes: int | None = None  # the data folder's size when the run ended
    limits: dict[str, Any] = field(default_factory=dict)  # memory, deadlines, disk: as applied
    # the orchestrator's id of the run that drove this night (Airflow's run_id); None under cron
    orchestrator_run_id: str | None = None
    steps: list[StepTiming] = field(default_factory=list)
    volumes: list[TableVolume] = field(default_factory=list)
    nodes: list[NodeResult] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @classmethod
    def start(cls, orchestrator_run_id: str | None = None) -> RunRecord:
        started_at = utc_now()
        return cls(
            run_id=new_run_id(started_at),
            started_at=started_at,
            orchestrator_run_id=orchestrator_run_id,
        )

    @property
    def seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return round((self.finished_at - self.started_at).total_seconds(), 3)

    @property
    def loaded_at(self) -> datetime | None:
        """When tonight's data landed in raw: the end of a completed load step."""
        for timing in self.steps:
            if timing.step == "load" and timing.outcome == "ok":
                return timing.started_at + timedelta(seconds=timing.seconds)
        return None

    def volume(self, table_name: str) -> TableVolume | None:
        return next((v for v in self.volumes if v.table_name == table_name), None)

    def findings_at(self, level: str) -> list[Finding]:
        return [finding for finding in self.findings if finding.level == level]

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=_encode, indent=1)

    @classmethod
    def from_json(cls, text: str) -> RunRecord:
        data = json.loads(text)
        return _known(
            cls,
            {
                **data,
                **_decoded_times(data, "started_at", "finished_at", "published_at"),
                "steps": [
                    _known(StepTiming, {**s, **_decoded_times(s, "started_at")})
                    for s in data["steps"]
                ],
                "volumes": [_known(TableVolume, v) for v in data["volumes"]],
                "nodes": [_known(NodeResult, n) for n in data["nodes"]],
                "findings": [_known(Finding, f) for f in data["findings"]],
                "limits": data.get("limits") or {},
            },
        )


class Ledger:
    """The folder of run records: written atomically, read without any lock."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @property
    def reserve(self) -> Path:
        return self.folder / ".reserve"

    def write(self, record: RunRecord) -> None:
        """Replace the run's file in one rename, so a reader sees the old or the new record. On a
        full disk, give up the reserve and try once more."""
        try:
            self._write(record)
        except OSError as exc:
            if exc.errno != errno.ENOSPC or not self.reserve.exists():
                raise
            log.warning("the disk is full: giving up the ledger's reserve to write the record")
            self.reserve.unlink()
            self._write(record)

    def keep_reserve(self) -> None:
        """Make sure the reserve exists (while there is room; a failure is only logged)."""
        if self.reserve.exists():
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with self.reserve.open("wb") as file:
                os.posix_fallocate(file.fileno(), 0, RESERVE_BYTES)
        except OSError as exc:
            self.reserve.unlink(missing_ok=True)
            log.warning("could not reserve room for the run records in %s: %s", self.folder, exc)

    def _write(self, record: RunRecord) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        final = self.folder / f"{record.run_id}.json"
        temporary = self.folder / f".{record.run_id}.json.tmp"
        try:
            with temporary.open("w") as file:
                file.write(record.to_json())
                file.flush()
                os.fsync(file.fileno())
        except OSError:
            temporary.unlink(missing_ok=True)
            raise
        os.replace(temporary, final)

    def records(self) -> list[RunRecord]:
        """Every run, oldest first. A file that cannot be read is skipped with a warning: one
        damaged record must not stop every night after it."""
        records = []
        for path in sorted(self.folder.glob("*.json")):
            try:
                records.append(RunRecord.from_json(path.read_text()))
            except (OSError, ValueError, TypeError, KeyError) as exc:
                log.warning("skipping the unreadable run record %s: %s", path, exc)
        return sorted(records, key=lambda record: (record.started_at, record.run_id))


def open_orchestrated_night(
    records: list[RunRecord], now: datetime, stale_after_hours: float
) -> RunRecord | None:
    """The night an orchestrator opened and has not finished, if any. Between its steps no
    process holds the run lock, yet it is running; one that started more than `stale_after_hours`
    ago is taken for abandoned (its orchestrator lost it), so it cannot block every later night."""
    return next(
        (
            record
            for record in reversed(records)
            if record.status == RUNNING
            and record.orchestrator_run_id
            and now - record.started_at < timedelta(hours=stale_after_hours)
        ),
        None,
    )


def last_successes(records: list[RunRecord], limit: int) -> list[RunRecord]:
    """The last `limit` successful runs of `records` (oldest first): the history to compare."""
    succeeded = [record for record in records if record.status in SUCCEEDED]
    return succeeded[-limit:] if limit > 0 else []


def _known(kind: type[T], data: dict[str, Any]) -> T:
    """`kind` from the fields it has: a record written by another version of the job still
    reads (a field it lacks takes its default, one it no longer has is dropped)."""
    names = {known.name for known in fields(kind)}  # type: ignore[arg-type]
    return kind(**{name: value for name, value in data.items() if name in names})


def _encode(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot store {type(value).__name__} in the run ledger")


def _decoded_times(data: dict[str, Any], *names: str) -> dict[str, datetime | None]:
    return {name: datetime.fromisoformat(data[name]) if data[name] else None for name in names}
