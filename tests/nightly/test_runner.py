"""The runner with stand-in steps, in this process: order, gates, failures, signals, the lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from core import lock
from core.paths import Paths
from nightly.ledger import ERROR, Finding, Ledger, RunRecord, utc_now
from nightly.runner import (
    EXIT_DATA_QUALITY,
    EXIT_FAILED,
    EXIT_LOCKED,
    EXIT_SUCCESS,
    NightlyRun,
    Step,
    StepFailed,
    report_activity,
    run_night,
)
from nightly.status import render_runs
from nightly.steps import STEPS
from tests.nightly.support import night_config, past_run
from tests.support import query


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    """The runner's ledger, lock and warehouse in a temp folder."""
    return Paths.under(tmp_path)


def night(steps: list[Step], paths: Paths) -> int:
    """One night of `steps` in `paths`, default thresholds; its exit code."""
    return run_night(steps, night_config(paths)).exit_code


def stand_ins(log: list[str], **actions: Callable[[NightlyRun], None]) -> list[Step]:
    """The real steps' names and flags, with actions that log their name (or do `actions`)."""

    def logged(name: str) -> Callable[[NightlyRun], None]:
        return lambda run: log.append(name)

    return [
        Step(step.name, actions.get(step.name, logged(step.name)), step.after_data_error)
        for step in STEPS
    ]


def last_record(paths: Paths) -> RunRecord:
    return Ledger(paths.runs_dir).records()[-1]


def test_a_step_inserted_in_one_line_runs_in_order_and_every_step_is_timed(paths: Paths) -> None:
    ran: list[str] = []
    steps = stand_ins(ran, scoring=lambda run: (time.sleep(0.05), ran.append("scoring")))
    steps.insert(4, Step("notify", lambda run: ran.append("notify")))

    assert night(steps, paths) == EXIT_SUCCESS
    assert ran == [
        "extract", "load", "privacy", "dbt_build", "notify", "checks", "training", "scoring",
        "publish",
    ]  # fmt: skip
    [(status, scoring_seconds, training_seconds, steps_recorded)] = query(
        paths.warehouse,
        "select status, scoring_seconds, training_seconds, (select count(*) from ops.run_steps) "
        "from ops.pipeline_runs",
    )
    assert status == "success" and scoring_seconds >= 0.05 and steps_recorded == 9
    assert training_seconds is not None and training_seconds < scoring_seconds


def test_a_data_quality_error_skips_publishing_but_not_the_checks_training_or_scoring(
    paths: Paths,
) -> None:
    ran: list[str] = []

    def failing_test(run: NightlyRun) -> None:
        run.add([Finding("dbt_test", ERROR, "unique_dim_users", "dbt test failed: 2 rows")])

    def publish(run: NightlyRun) -> None:
        raise AssertionError("published after a data-quality error")

    steps = stand_ins(ran, dbt_build=failing_test, publish=publish)
    assert night(steps, paths) == EXIT_DATA_QUALITY
    # training and scoring run, to say the model and yesterday's recommendations stay; publish
    # does not
    assert ran == ["extract", "load", "privacy", "checks", "training", "scoring"]
    record = last_record(paths)
    assert (record.status, record.failing_step, record.exit_code) == ("failed", "dbt_build", 2)
    assert record.error_message == "1 data-quality error(s): dbt test failed: 2 rows"
    assert [(t.step, t.outcome) for t in record.steps][-4:] == [
        ("checks", "ok"),
        ("training", "ok"),
        ("scoring", "ok"),
        ("publish", "skipped"),
    ]
    assert record.alert is not None and "FAILED at step dbt_build (exit 2)" in record.alert


@pytest.mark.parametrize(
    ("error", "message"),
    [(StepFailed("no such page"), "no such page"), (ValueError("bad"), "ValueError: bad")],
)
def test_a_failing_step_stops_the_run_and_the_record_says_where_and_why(
    error: Exception, message: str, paths: Paths
) -> None:
    ran: list[str] = []

    def load(run: NightlyRun) -> None:
        raise error

    assert night(stand_ins(ran, load=load), paths) == EXIT_FAILED
    assert ran == ["extract"]
    record = last_record(paths)
    assert (record.status, record.failing_step, record.error_message) == ("failed", "load", message)
    assert query(paths.warehouse, "select status, failing_step from ops.pipeline_runs") == [
        ("failed", "load")
    ]


def test_sigterm_fails_the_running_step_on_record(paths: Paths) -> None:
    def terminated(run: NightlyRun) -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(10)

    assert night(stand_ins([], dbt_build=terminated), paths) == EXIT_FAILED
    record = last_record(paths)
    assert (record.failing_step, record.error_message) == (
        "dbt_build",
        "Interrupted: terminated by SIGTERM",
    )
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_a_run_a_killed_process_left_running_is_closed_as_failed_by_the_next(paths: Paths) -> None:
    killed = RunRecord.start()
    killed.current_step = "dbt_build"
    Ledger(paths.runs_dir).write(killed)

    assert night(stand_ins([]), paths) == EXIT_SUCCESS
    closed, record = Ledger(paths.runs_dir).records()
    assert (closed.status, closed.failing_step, closed.exit_code) == ("failed", "dbt_build", None)
    assert record.status == "warned"
    assert [(f.check, f.subject) for f in record.findings_at("warning")] == [
        ("interrupted_run", killed.run_id)
    ]


def test_a_night_without_a_load_is_noticed_by_the_next_run(paths: Paths) -> None:
    Ledger(paths.runs_dir).write(past_run(utc_now() - timedelta(hours=50)))

    assert night(stand_ins([]), paths) == EXIT_SUCCESS
    [finding] = last_record(paths).findings_at("warning")
    assert finding.check == "freshness"
    assert finding.message == "the last successful load was 50 h before this run (stale after 26 h)"


def test_one_run_holds_the_lock_and_a_killed_holder_frees_it(paths: Paths) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_THE_LOCK, str(paths.lock_file)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    assert lock.is_held(paths.lock_file)
    ran: list[str] = []
    assert night(stand_ins(ran), paths) == EXIT_LOCKED
    assert ran == []
    refused = last_record(paths)
    assert (refused.status, refused.exit_code, refused.failing_step) == ("refused", 75, "lock")

    holder.kill()
    holder.wait()
    assert not lock.is_held(paths.lock_file)
    assert night(stand_ins(ran), paths) == EXIT_SUCCESS
    assert ran == [step.name for step in STEPS]


HOLD_THE_LOCK = """
import sys, time
from pathlib import Path
from core.lock import exclusive
with exclusive(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(60)
"""


@pytest.mark.parametrize(
    ("step", "activity"),
    [
        ("training", "training: fitting als 2/3 iterations"),
        ("scoring", "scoring: 400,000/1,000,000 users, 2 min left"),
    ],
)
def test_a_long_step_s_activity_is_in_the_ledger_for_make_status(
    step: str, activity: str, paths: Paths
) -> None:
    seen: list[str] = []

    def long_step(run: NightlyRun) -> None:
        report_activity(run, activity)
        [record] = [r for r in Ledger(paths.runs_dir).records() if r.run_id == run.record.run_id]
        seen.append(render_runs([record], run_in_progress=True, now=utc_now()))

    assert night(stand_ins([], **{step: long_step}), paths) == EXIT_SUCCESS
    assert len(seen) == 1 and f"{step}: {activity}" in seen[0]
    assert last_record(paths).current_activity is None  # cleared when the run ends
