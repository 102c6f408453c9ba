"""The nightly runner: named steps in order under one lock, each timed and recorded in the ledger.

A step is `Step(name, action)`; the action receives the `NightlyRun` and raises to fail the run.
Checks record findings instead of raising: an error-level finding (a data-quality error) skips
the steps after it (publish above all) except those marked `after_data_error`, so the night is
still measured and recorded. Whatever happens, the run ends with its record written, the alert
sent and the `ops` schema refreshed, and returns an exit code that says which outcome it was.

`run_night` runs a whole night in one process (cron). An orchestrator that runs each step as its
own task (Airflow) drives the same night in three calls instead: `begin_night` opens the record,
`run_steps` runs some steps in this process under the lock (the record reloaded from the ledger
and written back), and `finish_night` closes it exactly as `run_night` does. Between steps the
ledger's open record, not the lock, keeps a second night out.
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
from extract.pipeline import ExtractionSummary, VerifiedExtraction
from nightly import alerts, ops_tables
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
    open_orchestrated_night,
    utc_now,
)
from nightly.settings import NightConfig, NightlySettings

log = logging.getLogger("moovitamix.nightly")

EXIT_SUCCESS = 0  # published (warnings allowed)
EXIT_FAILED = 1  # a step failed or the run was interrupted: nothing published
EXIT_DATA_QUALITY = 2  # a dbt test or an anomaly check found an error: nothing published
EXIT_LOCKED = 75  # another run holds the lock (sysexits' EX_TEMPFAIL: try again later)


class StepFailed(Exception):
    """A step could not do its job; the message says what and is the run record's error."""


class NightRefused(Exception):
    """Another night holds the lock or is open: this one was recorded as refused and did nothing."""


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
    ledger = Ledger(paths.runs_dir)
    record = RunRecord.start()
    try:
        with lock.exclusive(paths.lock_file) as descriptor:
            run = _open(record, config, ledger, descriptor)
            with _terminate_raises():
                exit_code = _run_steps(run, steps)
            _finish(run, exit_code)
            return NightOutcome(exit_code, record, run.build)
    except lock.LockHeld as exc:
        _refuse(record, ledger, config.nightly, exc)
        return NightOutcome(EXIT_LOCKED, record)


def begin_night(config: NightConfig, orchestrator_run_id: str) -> RunRecord:
    """Open a night that an orchestrator runs step by step; returns its record (its `run_id` is
    what `run_steps` and `finish_night` take). When another night holds the lock or is open, the
    refusal is recorded and alerted as `run_night`'s is, then raised as `NightRefused`."""
    ledger = Ledger(config.paths.runs_dir)
    record = RunRecord.start(orchestrator_run_id)
    try:
        with lock.exclusive(config.paths.lock_file) as descriptor:
            _open(record, config, ledger, descriptor)
            ledger.write(record)
            return record
    except lock.LockHeld as exc:
        _refuse(record, ledger, config.nightly, exc)
        raise NightRefused(record.error_message) from exc


def run_steps(run_id: str, steps: Sequence[Step], config: NightConfig) -> RunRecord:
    """Run `steps` of the open night `run_id` in this process, under the run lock, as `run_night`
    runs them; returns the record as written back to the ledger (a failed step is its
    `failing_step`). Running a step again (a retry) replaces the earlier attempt, which a finding
    notes. Raises `lock.LockHeld` when another process holds the lock, and `StepFailed` when the
    night is not open or already failed at another step."""
    with lock.exclusive(config.paths.lock_file) as descriptor:
        run = _reopen(run_id, config, descriptor)
        record, names = run.record, [step.name for step in steps]
        if record.status != RUNNING:
            raise StepFailed(f"night {run_id} is already {record.status}: {names} not run")
        if record.failing_step and record.failing_step not in names:
            raise StepFailed(f"night {run_id} already failed at step {record.failing_step}")
        _forget_earlier_attempt(run, names)
        with _terminate_raises():
            _run_steps(run, steps)
        record.current_step = None
        run.ledger.write(record)
        return record


def finish_night(run_id: str, steps: Sequence[Step], config: NightConfig) -> NightOutcome:
    """Close the night `run_id` as `run_night` closes a night: outcome, record, alert, `ops`.
    A step of `steps` that never ran, or whose process died, fails the night. A night already
    closed is returned as it is (the orchestrator ran this twice)."""
    with lock.exclusive(config.paths.lock_file) as descriptor:
        run = _reopen(run_id, config, descriptor)
        record = run.record
        if record.status != RUNNING:
            return NightOutcome(
                record.exit_code if record.exit_code is not None else EXIT_FAILED, record
            )
        ran = {timing.step for timing in record.steps}
        missing = [step.name for step in steps if step.name not in ran]
        if record.current_step:
            record.failing_step = record.current_step
            record.error_message = (
                f"the task running step {record.current_step} ended without recording an "
                "outcome (killed or timed out)"
            )
        elif missing and not record.failing_step:
            record.failing_step = missing[0]
            record.error_message = (
                f"step {missing[0]} never ran: the orchestrator stopped the night before it "
                f"(see run {record.orchestrator_run_id})"
            )
        exit_code = (
            EXIT_FAILED
            if record.failing_step
            else EXIT_DATA_QUALITY
            if run.has_data_error
            else EXIT_SUCCESS
        )
        _finish(run, exit_code)
        return NightOutcome(exit_code, record)


def _open(record: RunRecord, config: NightConfig, ledger: Ledger, descriptor: int) -> NightlyRun:
    """Start `record` under the lock: refuse while an orchestrated night is open, record it as
    running, close the runs that were killed, note a missed night."""
    earlier = ledger.records()
    if night := open_orchestrated_night(
        earlier, record.started_at, config.nightly.stale_after_hours
    ):
        raise lock.LockHeld(
            f"night {night.run_id} (orchestrator run {night.orchestrator_run_id}) is still open"
        )
    run = NightlyRun(record, config, ledger, earlier, descriptor)
    ledger.write(record)
    log.info("nightly run %s started", record.run_id)
    _close_interrupted_runs(run)
    _check_freshness(run)
    return run


def _reopen(run_id: str, config: NightConfig, descriptor: int) -> NightlyRun:
    """The night `run_id` from the ledger, with the runs started before it as its history."""
    ledger = Ledger(config.paths.runs_dir)
    records = ledger.records()
    index = next((i for i, r in enumerate(records) if r.run_id == run_id), None)
    if index is None:
        raise StepFailed(f"no run {run_id} in the ledger {ledger.folder}")
    return NightlyRun(records[index], config, ledger, records[:index], descriptor)


def _forget_earlier_attempt(run: NightlyRun, names: Sequence[str]) -> None:
    """Steps about to run again lose their earlier timings, findings and failure."""
    record = run.record
    earlier = [timing for timing in record.steps if timing.step in names]
    if not earlier:
        return
    note = ", ".join(f"{timing.step} {timing.outcome}" for timing in earlier)
    if record.failing_step in names:
        note += f" ({record.error_message})"
        record.failing_step = record.error_message = None
    record.steps = [timing for timing in record.steps if timing.step not in names]
    record.findings = [finding for finding in record.findings if finding.step not in names]
    run.add([Finding("retried_step", INFO, names[0], f"ran again; before: {note}")], "retry")


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
    """Close the record (status, outcome, alert), write it, alert, refresh `ops`."""
    record, settings = run.record, run.settings
    record.finished_at = utc_now()
    record.current_step = None
    if exit_code == EXIT_DATA_QUALITY:
        errors = record.findings_at(ERROR)
        record.failing_step = errors[0].step
        record.error_message = f"{len(errors)} data-quality error(s): {errors[0].message}"
    record.exit_code = exit_code
    record.status = FAILED if exit_code else WARNED if record.findings_at(WARNING) else SUCCESS
    record.alert = alerts.compose(record, settings.alert_on_warning)
    run.ledger.write(record)
    print(
        f"Nightly run {record.run_id}: {record.status} in {record.seconds:.1f} s, exit {exit_code}"
        + ("" if record.published_at else "; nothing published")
    )
    if record.alert:
        alerts.send(record.alert, settings.alert_webhook_url)
    try:
        ops_tables.materialise(run.config.paths.warehouse, run.ledger.records())
    except Exception as exc:  # the ledger holds the record; ops catches up next run
        log.warning("could not refresh the ops schema of the warehouse: %s", exc)


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
            + (f"during step {stale.current_step}" if stale.current_step else "between steps")
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
