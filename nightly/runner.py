"""The nightly runner: named steps in order under one lock, each timed and recorded in the ledger.

A step is `Step(name, action)`; the action receives the `NightlyRun` and raises to fail the run.
Checks record findings instead of raising: an error-level finding (a data-quality error) skips
the steps after it (publish above all) except those marked `after_data_error`, so the night is
still measured and recorded. Whatever happens, the run ends with the alert sent (first: it needs
no disk, and the disk may be what failed), then its record written and the `ops` schema
refreshed as far as the machine allows, and returns an exit code that says which outcome it was.

Before the first step the night checks the data folder has room for it (`nightly.disk`); every
step runs under a deadline (its share of the night's, and never past the night's).

`run_night` runs a whole night in one process (cron). An orchestrator that runs each step as its
own task (Airflow) drives the same night in three calls instead: `begin_night` opens the record,
`run_steps` runs some steps in this process under the lock (the record reloaded from the ledger
and written back), and `finish_night` closes it exactly as `run_night` does. Between steps the
ledger's open record, not the lock, keeps a second night out.
"""

from __future__ import annotations

import contextlib
import logging
import math
import signal
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta

from core import lock
from core.dbt import DbtRun
from core.paths import DataDirError
from extract.pipeline import ExtractionSummary, VerifiedExtraction
from nightly import alerts, disk, ops_tables, report
from nightly.failures import (
    EXIT_DATA_QUALITY,
    EXIT_FAILED,
    EXIT_LOCKED,
    EXIT_NO_SPACE,
    EXIT_SUCCESS,
    EXIT_UNSAFE,
    DeadlineExceeded,
    Failure,
    Interrupted,
    diagnose,
)
from nightly.failures import StepFailed as StepFailed  # the steps' way to fail, re-exported
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
from nightly.privacy import ErasureLog
from nightly.settings import NightConfig, NightlySettings

log = logging.getLogger("moovitamix.nightly")


class NightRefused(Exception):
    """Another night holds the lock or is open, or the disk cannot hold one: this one was
    recorded as refused (or failed at its preflight) and did nothing."""


@dataclass
class NightlyRun:
    """The run in progress, handed to every step; each step's result is a typed field that the
    steps after it read."""

    record: RunRecord
    config: NightConfig
    ledger: Ledger
    earlier: list[RunRecord]  # every earlier run, oldest first
    lock_descriptor: int  # for child processes that must hold the run lock while they work
    night_ends: float = math.inf  # time.monotonic() of the night's deadline
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
            run = _open(record, config, ledger, descriptor)
            try:
                with _terminate_raises():
                    return _run(run, steps)
            except BaseException as exc:  # SIGTERM between steps, a bug of the runner: still tell
                log.error("the nightly run failed outside its steps", exc_info=True)
                if record.finished_at is None:
                    _fail(run, exc, record.current_step or "runner")
                    _finish(run, record.exit_code or EXIT_FAILED)
                return NightOutcome(record.exit_code or EXIT_FAILED, record, run.build)
    except lock.LockHeld as exc:
        _refuse(record, ledger, config.nightly, exc)
        return NightOutcome(EXIT_LOCKED, record)


def _run(run: NightlyRun, steps: Sequence[Step]) -> NightOutcome:
    space = _start(run)
    if space.ok:
        run.ledger.keep_reserve()
        exit_code = _run_steps(run, steps)
    else:
        exit_code = _refuse_to_start(run, space)
    _finish(run, exit_code)
    return NightOutcome(exit_code, run.record, run.build)


def _start(run: NightlyRun) -> disk.SpaceCheck:
    """Check the disk, state the limits, record the night as running, close the runs that were
    killed, note a missed night."""
    record = run.record
    space = disk.check_space(run.config.paths, run.earlier, run.settings)
    record.limits = _limits(run, space)
    _save(run.ledger, record)
    log.info("nightly run %s started", record.run_id)
    log.info("limits: %s", ", ".join(f"{name} {value}" for name, value in record.limits.items()))
    _close_interrupted_runs(run)
    _check_freshness(run)
    return space


def _limits(run: NightlyRun, space: disk.SpaceCheck) -> dict[str, object]:
    """What bounds tonight, as applied: stated in the log and the run record."""
    config = run.config
    return {
        "duckdb_memory_limit": config.duckdb.duckdb_memory_limit,
        "duckdb_temp_directory": str(config.duckdb.temp_directory(config.paths.warehouse)),
        "night_deadline_minutes": run.settings.night_deadline_minutes,
        "step_deadline_minutes": _step_minutes(run.settings),
        "free_bytes": space.free_bytes,
        "needed_bytes": space.needed_bytes,
    }


def _step_minutes(settings: NightlySettings) -> float:
    return settings.night_deadline_minutes * settings.step_deadline_share


def _refuse_to_start(run: NightlyRun, space: disk.SpaceCheck) -> int:
    """The preflight's verdict: not enough room for tonight, so nothing is started."""
    record = run.record
    record.failing_step = "preflight"
    record.error_message = f"not enough disk space to start: {space.describe()}"
    record.action = (
        f"free space on the disk of {space.folder} (old logs, other files), move the data "
        "folder (MOOVITAMIX_DATA_DIR) to a bigger disk, or, if the estimate is wrong, lower "
        "NIGHTLY__FREE_SPACE_MARGIN / NIGHTLY__MIN_FREE_MB; nothing was started, raw and the "
        "analysts' file are unchanged"
    )
    record.steps.append(StepTiming("preflight", utc_now(), 0.0, "failed"))
    log.error("%s", record.error_message)
    return EXIT_NO_SPACE


def begin_night(config: NightConfig, orchestrator_run_id: str) -> RunRecord:
    """Open a night that an orchestrator runs step by step; returns its record (its `run_id` is
    what `run_steps` and `finish_night` take). When another night holds the lock or is open, the
    refusal is recorded and alerted as `run_night`'s is, then raised as `NightRefused`."""
    ledger = Ledger(config.paths.runs_dir)
    record = RunRecord.start(orchestrator_run_id)
    try:
        with lock.exclusive(config.paths.lock_file) as descriptor:
            run = _open(record, config, ledger, descriptor)
            space = _start(run)
            if not space.ok:
                _finish(run, _refuse_to_start(run, space))
                raise NightRefused(record.error_message)
            run.ledger.keep_reserve()
            _save(run.ledger, record)
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
            (record.exit_code or EXIT_FAILED)
            if record.failing_step
            else EXIT_DATA_QUALITY
            if run.has_data_error
            else EXIT_SUCCESS
        )
        _finish(run, exit_code)
        return NightOutcome(exit_code, record)


def _open(record: RunRecord, config: NightConfig, ledger: Ledger, descriptor: int) -> NightlyRun:
    """The night of `record`, under the lock: refused while an orchestrated night is open."""
    earlier = ledger.records()
    if night := open_orchestrated_night(
        earlier, record.started_at, config.nightly.stale_after_hours
    ):
        raise lock.LockHeld(
            f"night {night.run_id} (orchestrator run {night.orchestrator_run_id}) is still open"
        )
    run = NightlyRun(record, config, ledger, earlier, descriptor)
    run.night_ends = time.monotonic() + config.nightly.night_deadline_minutes * 60
    return run


def _reopen(run_id: str, config: NightConfig, descriptor: int) -> NightlyRun:
    """The night `run_id` from the ledger, with the runs started before it as its history."""
    ledger = Ledger(config.paths.runs_dir)
    records = ledger.records()
    index = next((i for i, r in enumerate(records) if r.run_id == run_id), None)
    if index is None:
        raise StepFailed(f"no run {run_id} in the ledger {ledger.folder}")
    run = NightlyRun(records[index], config, ledger, records[:index], descriptor)
    elapsed = (utc_now() - run.record.started_at).total_seconds()
    run.night_ends = time.monotonic() + config.nightly.night_deadline_minutes * 60 - elapsed
    return run


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
        record.current_step, record.current_activity = step.name, None
        try:
            _save(run.ledger, record)
            log.info("step %s started", step.name)
            with _deadline(run, step.name):
                step.action(run)
        except BaseException as exc:  # Ctrl-C, SIGTERM and deadlines too: the record must say so
            seconds = round(time.monotonic() - clock, 3)
            record.steps.append(StepTiming(step.name, started_at, seconds, "failed"))
            failure = _fail(run, exc, step.name)
            log.error(
                "step %s failed: %s",
                step.name,
                record.error_message,
                exc_info=failure.action.startswith("an unexpected error"),
            )
            return failure.exit_code
        seconds = round(time.monotonic() - clock, 3)
        record.steps.append(StepTiming(step.name, started_at, seconds, "ok"))
        log.info("step %s done in %.1f s", step.name, seconds)
    return EXIT_DATA_QUALITY if run.has_data_error else EXIT_SUCCESS


def report_activity(run: NightlyRun, activity: str) -> None:
    """Show what the current step is doing in the ledger (`make status`), best effort."""
    run.record.current_activity = activity
    _save(run.ledger, run.record)


def _fail(run: NightlyRun, exc: BaseException, where: str) -> Failure:
    """Record why the night failed at `where`."""
    failure = diagnose(exc, where, run.config.paths.data_dir, run.config.duckdb)
    record = run.record
    record.failing_step = where
    record.error_message, record.action = failure.message, failure.action
    record.exit_code = failure.exit_code
    return failure


def _finish(run: NightlyRun, exit_code: int) -> None:
    """Close the record (status, outcome), alert first (it needs no disk, and the disk may be
    what failed), then write the record, refresh `ops` and the run report as far as the machine
    allows (best effort), and end with one line that says what happened and what to do."""
    record, settings, paths = run.record, run.settings, run.config.paths
    record.finished_at = utc_now()
    record.current_step = record.current_activity = None
    if exit_code == EXIT_DATA_QUALITY:
        errors = record.findings_at(ERROR)
        record.failing_step = errors[0].step
        record.error_message = f"{len(errors)} data-quality error(s): {errors[0].message}"
        record.action = (
            "look at the failed checks (ops.test_results, ops.run_findings); fix the data or "
            "the API, or set NIGHTLY__ACCEPT_VOLUME_DROP=true for one run if a drop is real"
        )
    record.exit_code = exit_code
    record.status = FAILED if exit_code else WARNED if record.findings_at(WARNING) else SUCCESS
    with contextlib.suppress(OSError):
        record.free_bytes = disk.free_bytes(paths.data_dir)
    record.alert = alerts.compose(record, settings.alert_on_warning, paths.report)
    if record.alert:
        alerts.send(record.alert, settings.alert_webhook_url)
    record.data_dir_bytes = disk.folder_bytes(paths.data_dir)
    if _save(run.ledger, record):
        try:
            erasures = ErasureLog(paths).table()
            ops_tables.materialise(paths.warehouse, run.ledger.records(), erasures)
        except Exception as exc:  # the ledger holds the record; ops catches up next run
            log.warning("could not refresh the ops schema of the warehouse: %s", exc)
        try:
            log.info("run report: %s", report.write(paths, settings))
        except Exception as exc:  # the ledger holds the record; `make report` can redo it
            log.warning("could not write the run report %s: %s", paths.report, exc)
    sys.stderr.flush()
    print(
        f"Nightly run {record.run_id}: {record.status}"
        + (f" at step {record.failing_step}" if exit_code else "")
        + f" in {record.seconds:.1f} s, exit {exit_code}"
        + ("" if record.published_at else "; nothing published")
        + (f". {record.error_message}. What to do: {record.action}" if exit_code else ""),
        flush=True,
    )


def _save(ledger: Ledger, record: RunRecord) -> bool:
    """Write the record if the machine lets us; the alert does not depend on it."""
    try:
        ledger.write(record)
        return True
    except OSError as exc:
        log.error("could not write the run record to %s: %s", ledger.folder, exc)
        return False


def _refuse(
    record: RunRecord, ledger: Ledger, settings: NightlySettings, exc: lock.LockHeld
) -> None:
    """Record and report a run that found another one running."""
    record.status, record.exit_code, record.failing_step = REFUSED, EXIT_LOCKED, "lock"
    record.error_message = f"{exc}: this run did nothing"
    record.action = "nothing: the run in progress goes on (`make status` shows it)"
    record.finished_at = utc_now()
    record.alert = alerts.compose(record, settings.alert_on_warning)
    if record.alert:
        alerts.send(record.alert, settings.alert_webhook_url)
    _save(ledger, record)
    log.error("%s; exiting with %d", record.error_message, EXIT_LOCKED)


def _close_interrupted_runs(run: NightlyRun) -> None:
    """Runs still `running` while this one holds the lock were killed: record them as failed."""
    for stale in (r for r in run.earlier if r.status == RUNNING):
        stale.status, stale.failing_step = FAILED, stale.current_step
        stale.error_message = (
            "the run ended without recording an outcome (killed, or the machine stopped) "
            + (f"during step {stale.current_step}" if stale.current_step else "between steps")
        )
        stale.current_step = None
        _save(run.ledger, stale)
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


@contextlib.contextmanager
def _deadline(run: NightlyRun, step: str) -> Iterator[None]:
    """Raise `DeadlineExceeded` in the step (SIGALRM) when it passes its deadline: its share of
    the night's, or what is left of the night's, whichever comes first."""
    settings = run.settings
    step_seconds = _step_minutes(settings) * 60
    left = run.night_ends - time.monotonic()
    if left <= step_seconds:
        seconds = left
        reason = (
            f"the night's deadline (NIGHTLY__NIGHT_DEADLINE_MINUTES="
            f"{settings.night_deadline_minutes:g})"
        )
    else:
        seconds = step_seconds
        reason = (
            f"its deadline of {step_seconds / 60:g} min (NIGHTLY__STEP_DEADLINE_SHARE="
            f"{settings.step_deadline_share:g} of NIGHTLY__NIGHT_DEADLINE_MINUTES="
            f"{settings.night_deadline_minutes:g})"
        )
    message = f"step {step} stopped at {reason}"
    if seconds <= 0:
        raise DeadlineExceeded(message)

    def expire(signum: int, frame: object) -> None:
        raise DeadlineExceeded(message)

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
