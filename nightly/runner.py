"""The nightly runner: named steps in order under one lock, each timed and recorded in the ledger.

A step is `Step(name, action)`; the action receives the `NightlyRun` and raises to fail the run.
Checks record findings instead of raising: an error-level finding (a data-quality error) skips
the steps after it (publish above all) except those marked `after_data_error`, so the night is
still measured and recorded. Whatever happens, the run ends with its record written, the alert
sent and the `ops` schema refreshed, and returns an exit code that says which outcome it was.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta

from core import lock
from core.dbt import DbtRun
from core.paths import DataDirError
from extract.pipeline import ExtractionSummary, VerifiedExtraction
from nightly import alerts, ops_tables, report
from nightly.ledger import (
    ERROR,
    FAILED,
    INFO,
    REFUSED,
    RUNNING,
    SUCCESS,
    WARNED,
    WARNING,
    Finding,
    Ledger,
    RunRecord,
    StepTiming,
    last_successes,
    utc_now,
)
from nightly.privacy import ErasureLog
from nightly.settings import NightConfig, NightlySettings

log = logging.getLogger("moovitamix.nightly")

EXIT_SUCCESS = 0  # published (warnings allowed)
EXIT_FAILED = 1  # a step failed or the run was interrupted: nothing published
EXIT_DATA_QUALITY = 2  # a dbt test or an anomaly check found an error: nothing published
EXIT_LOCKED = 75  # another run holds the lock (sysexits' EX_TEMPFAIL: try again later)
EXIT_UNSAFE = 78  # the data folder is open to other accounts: nothing written (EX_CONFIG)


class StepFailed(Exception):
    """A step could not do its job; the message says what and is the run record's error."""


class Interrupted(BaseException):
    """SIGTERM (a scheduler's timeout, a shutdown): fail the current step and record it."""


@dataclass
class NightlyRun:
    """The run in progress, handed to every step; each step's result is a typed field that the
    steps after it read."""

    record: RunRecord
    config: NightConfig
    ledger: Ledger
    earlier: list[RunRecord]  # every earlier run, oldest first
    lock_descriptor: int  # for child processes that must hold the run lock while they work
    extraction: VerifiedExtraction | None = None  # extract: tonight's verified package
    loaded: ExtractionSummary | None = None  # load: what raw gained and lost
    build: DbtRun | None = None  # dbt_build: every node's result

    @property
    def settings(self) -> NightlySettings:
        return self.config.nightly

    def add(self, findings: Iterable[Finding | None], step: str | None = None) -> None:
        """Record findings, stamped with the step that made them."""
        for finding in findings:
            if finding is not None:
                finding.step = step or self.record.current_step or ""
                self.record.findings.append(finding)
                log.log(_LOG_LEVELS[finding.level], "%s: %s", finding.check, finding.message)

    @property
    def has_data_error(self) -> bool:
        return bool(self.record.findings_at(ERROR))

    def data_error_summary(self) -> str | None:
        """Why tonight's data is refused (the first data-quality error), or None."""
        errors = self.record.findings_at(ERROR)
        if not errors:
            return None
        return f"{len(errors)} data-quality error(s) tonight, first: {errors[0].message}"

    def history(self) -> list[RunRecord]:
        """The trailing successful runs the checks compare with."""
        return last_successes(self.earlier, self.settings.history_runs)

    def records_as_published(self) -> list[RunRecord]:
        """Every record, this run's marked with the outcome it has if publishing succeeds; it has
        not finished yet, so its `finished_at` stays null in the analysts' copy."""
        outcome = WARNED if self.record.findings_at(WARNING) else SUCCESS
        published = replace(
            self.record, status=outcome, published_at=utc_now(), exit_code=EXIT_SUCCESS
        )
        return [*self.earlier, published]


@dataclass(frozen=True)
class Step:
    name: str
    action: Callable[[NightlyRun], None]
    after_data_error: bool = False  # run even after a data-quality error (to measure, not publish)


_LOG_LEVELS = {INFO: logging.INFO, WARNING: logging.WARNING, ERROR: logging.ERROR}


@dataclass(frozen=True)
class NightOutcome:
    """How a night ended: its exit code, its run record (also in the ledger), and dbt's results
    when the night got as far as its build."""

    exit_code: int
    record: RunRecord
    build: DbtRun | None = None


def run_night(steps: Sequence[Step], config: NightConfig) -> NightOutcome:
    """Run `steps` once under the run lock, recorded in the ledger; the one way to run a night
    (the job, the tests' fixtures and the benchmarks all call it)."""
    paths = config.paths
    record = RunRecord.start()
    try:
        paths.prepare()
    except DataDirError as exc:  # nothing may be written: refuse, say why, alert
        record.status, record.exit_code, record.failing_step = FAILED, EXIT_UNSAFE, "start"
        record.error_message, record.finished_at = str(exc), utc_now()
        log.error("%s", exc)
        record.alert = alerts.compose(record, config.nightly.alert_on_warning)
        if record.alert:
            alerts.send(record.alert, config.nightly.alert_webhook_url)
        return NightOutcome(EXIT_UNSAFE, record)
    ledger = Ledger(paths.runs_dir)
    try:
        with lock.exclusive(paths.lock_file) as descriptor:
            run = NightlyRun(record, config, ledger, ledger.records(), descriptor)
            ledger.write(record)
            log.info("nightly run %s started", record.run_id)
            _close_interrupted_runs(run)
            _check_freshness(run)
            with _terminate_raises():
                exit_code = _run_steps(run, steps)
            _finish(run, exit_code)
            return NightOutcome(exit_code, record, run.build)
    except lock.LockHeld as exc:
        _refuse(record, ledger, config.nightly, exc)
        return NightOutcome(EXIT_LOCKED, record)


def _run_steps(run: NightlyRun, steps: Sequence[Step]) -> int:
    record = run.record
    for step in steps:
        started_at, clock = utc_now(), time.monotonic()
        if run.has_data_error and not step.after_data_error:
            record.steps.append(StepTiming(step.name, started_at, 0.0, "skipped"))
            log.warning("step %s skipped: a data-quality error was found", step.name)
            continue
        record.current_step = step.name
        run.ledger.write(record)
        log.info("step %s started", step.name)
        try:
            step.action(run)
        except BaseException as exc:  # Ctrl-C and SIGTERM too: the record must say so
            seconds = round(time.monotonic() - clock, 3)
            record.steps.append(StepTiming(step.name, started_at, seconds, "failed"))
            record.failing_step = step.name
            record.error_message = str(exc) if isinstance(exc, StepFailed) else _describe(exc)
            log.error(
                "step %s failed: %s",
                step.name,
                record.error_message,
                exc_info=not isinstance(exc, (StepFailed, Interrupted, KeyboardInterrupt)),
            )
            return EXIT_FAILED
        seconds = round(time.monotonic() - clock, 3)
        record.steps.append(StepTiming(step.name, started_at, seconds, "ok"))
        log.info("step %s done in %.1f s", step.name, seconds)
    return EXIT_DATA_QUALITY if run.has_data_error else EXIT_SUCCESS


def _finish(run: NightlyRun, exit_code: int) -> None:
    """Close the record (status, outcome, alert), write it, alert, refresh `ops`, then write
    the run report (best effort: a report that cannot be written never fails the night)."""
    record, settings, paths = run.record, run.settings, run.config.paths
    record.finished_at = utc_now()
    record.current_step = None
    if exit_code == EXIT_DATA_QUALITY:
        errors = record.findings_at(ERROR)
        record.failing_step = errors[0].step
        record.error_message = f"{len(errors)} data-quality error(s): {errors[0].message}"
    record.exit_code = exit_code
    record.status = FAILED if exit_code else WARNED if record.findings_at(WARNING) else SUCCESS
    record.alert = alerts.compose(record, settings.alert_on_warning, paths.report)
    run.ledger.write(record)
    print(
        f"Nightly run {record.run_id}: {record.status} in {record.seconds:.1f} s, exit {exit_code}"
        + ("" if record.published_at else "; nothing published")
    )
    if record.alert:
        alerts.send(record.alert, settings.alert_webhook_url)
    try:
        erasures = ErasureLog(paths).table()
        ops_tables.materialise(paths.warehouse, run.ledger.records(), erasures)
    except Exception as exc:  # the ledger holds the record; ops catches up next run
        log.warning("could not refresh the ops schema of the warehouse: %s", exc)
    try:
        log.info("run report: %s", report.write(paths, settings))
    except Exception as exc:  # the ledger holds the record; `make report` can redo it
        log.warning("could not write the run report %s: %s", paths.report, exc)


def _refuse(
    record: RunRecord, ledger: Ledger, settings: NightlySettings, exc: lock.LockHeld
) -> None:
    """Record and report a run that found another one running."""
    record.status, record.exit_code, record.failing_step = REFUSED, EXIT_LOCKED, "lock"
    record.error_message = f"{exc}: this run did nothing"
    record.finished_at = utc_now()
    record.alert = alerts.compose(record, settings.alert_on_warning)
    ledger.write(record)
    log.error("%s; exiting with %d", record.error_message, EXIT_LOCKED)
    if record.alert:
        alerts.send(record.alert, settings.alert_webhook_url)


def _close_interrupted_runs(run: NightlyRun) -> None:
    """Runs still `running` while this one holds the lock were killed: record them as failed."""
    for stale in (r for r in run.earlier if r.status == RUNNING):
        stale.status, stale.failing_step = FAILED, stale.current_step
        stale.error_message = (
            "the run ended without recording an outcome (killed, or the machine stopped) "
            f"during step {stale.current_step}"
        )
        stale.current_step = None
        run.ledger.write(stale)
        run.add(
            [
                Finding(
                    "interrupted_run",
                    WARNING,
                    stale.run_id,
                    f"run {stale.run_id}: {stale.error_message}",
                )
            ],
            "start",
        )


def _check_freshness(run: NightlyRun) -> None:
    """Notice the nights that did not load (the dead-man's switch, seen from the next run)."""
    loads = [r.loaded_at for r in run.earlier if r.loaded_at is not None]
    if not loads:
        run.add([Finding("freshness", INFO, "raw", "no earlier successful load")], "start")
        return
    age = run.record.started_at - max(loads)
    if age > timedelta(hours=run.settings.stale_after_hours):
        message = (
            f"the last successful load was {age.total_seconds() / 3600:,.0f} h before this run "
            f"(stale after {run.settings.stale_after_hours:g} h)"
        )
        run.add([Finding("freshness", WARNING, "raw", message)], "start")


@contextlib.contextmanager
def _terminate_raises() -> Iterator[None]:
    """Turn SIGTERM into an `Interrupted` exception in the running step, for the record."""

    def interrupt(signum: int, frame: object) -> None:
        raise Interrupted("terminated by SIGTERM")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
