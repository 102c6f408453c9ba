"""A night an orchestrator drives step by step (begin_night, run_steps, finish_night), with
stand-in steps in this process: one record, the same gates, and no second night meanwhile."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.paths import Paths
from nightly.ledger import ERROR, Finding, Ledger
from nightly.runner import (
    EXIT_DATA_QUALITY,
    EXIT_FAILED,
    EXIT_LOCKED,
    EXIT_SUCCESS,
    NightlyRun,
    NightRefused,
    StepFailed,
    begin_night,
    finish_night,
    run_night,
    run_steps,
)
from nightly.settings import NightConfig
from tests.nightly.support import night_config
from tests.nightly.test_runner import last_record, stand_ins


@pytest.fixture
def config(tmp_path: Path) -> NightConfig:
    paths = Paths.under(tmp_path)
    return night_config(paths)


def test_a_night_run_step_by_step_is_one_record_with_every_step_in_order(
    config: NightConfig,
) -> None:
    ran: list[str] = []
    steps = stand_ins(ran)
    run_id = begin_night(config, "scheduled__2026-01-05T02:30:00+00:00").run_id
    for step in steps:  # one call per step, as one task per step does
        run_steps(run_id, [step], config)
    outcome = finish_night(run_id, steps, config)

    assert outcome.exit_code == EXIT_SUCCESS
    assert ran == [step.name for step in steps]
    record = last_record(config.paths)
    assert (record.run_id, record.status, record.exit_code) == (run_id, "success", 0)
    assert record.orchestrator_run_id == "scheduled__2026-01-05T02:30:00+00:00"
    assert [(t.step, t.outcome) for t in record.steps] == [(s.name, "ok") for s in steps]


def test_a_data_error_found_in_one_call_skips_publish_in_the_next(config: NightConfig) -> None:
    def data_error(run: NightlyRun) -> None:
        run.add([Finding("dbt_test", ERROR, "dim_users", "dbt test unique_dim_users failed")])

    ran: list[str] = []
    steps = stand_ins(ran, dbt_build=data_error)
    run_id = begin_night(config, "manual__1").run_id
    for step in steps:
        run_steps(run_id, [step], config)
    outcome = finish_night(run_id, steps, config)

    assert outcome.exit_code == EXIT_DATA_QUALITY
    assert "publish" not in ran and {"training", "scoring"} <= set(ran)
    record = last_record(config.paths)
    assert (record.steps[-1].step, record.steps[-1].outcome) == ("publish", "skipped")
    assert (record.status, record.failing_step) == ("failed", "dbt_build")


def test_while_a_night_is_open_between_steps_no_second_night_starts(
    config: NightConfig,
) -> None:
    ran: list[str] = []
    steps = stand_ins(ran)
    run_id = begin_night(config, "manual__1").run_id
    run_steps(run_id, steps[:2], config)

    cron = run_night(steps, config)
    with pytest.raises(NightRefused, match=run_id):
        begin_night(config, "manual__2")
    run_steps(run_id, steps[2:], config)
    assert finish_night(run_id, steps, config).exit_code == EXIT_SUCCESS
    after = run_night(steps, config)

    assert cron.exit_code == EXIT_LOCKED
    assert ran == [step.name for step in steps] * 2
    assert after.exit_code == EXIT_SUCCESS
    statuses = [(r.orchestrator_run_id, r.status) for r in Ledger(config.paths.runs_dir).records()]
    assert statuses == [
        ("manual__1", "success"),
        (None, "refused"),
        ("manual__2", "refused"),
        (None, "success"),
    ]


def test_a_retried_step_replaces_its_failed_attempt_and_the_record_says_so(
    config: NightConfig,
) -> None:
    attempts: list[str] = []

    def flaky_extract(run: NightlyRun) -> None:
        attempts.append("extract")
        if len(attempts) == 1:
            raise StepFailed("extraction failed, raw tables unchanged: tracks page 2: 503")

    steps = stand_ins([], extract=flaky_extract)
    run_id = begin_night(config, "manual__1").run_id
    first = run_steps(run_id, steps[:2], config)
    assert (first.failing_step, first.steps[-1].outcome) == ("extract", "failed")
    with pytest.raises(StepFailed, match="already failed at step extract"):
        run_steps(run_id, steps[2:3], config)
    for step_group in (steps[:2], *([step] for step in steps[2:])):
        run_steps(run_id, step_group, config)

    assert finish_night(run_id, steps, config).exit_code == EXIT_SUCCESS
    record = last_record(config.paths)
    assert [t.step for t in record.steps] == [s.name for s in steps]
    (retry,) = [f for f in record.findings if f.check == "retried_step"]
    assert "tracks page 2" in retry.message and retry.subject == "extract"


def test_a_step_the_orchestrator_never_ran_fails_the_night(config: NightConfig) -> None:
    steps = stand_ins([])
    run_id = begin_night(config, "manual__1").run_id
    run_steps(run_id, steps[:3], config)
    outcome = finish_night(run_id, steps, config)

    assert outcome.exit_code == EXIT_FAILED
    record = last_record(config.paths)
    assert (record.status, record.failing_step) == ("failed", steps[3].name)
    assert "never ran" in (record.error_message or "")
    assert record.alert and record.alert.startswith(f"MooVitamix nightly run {run_id}: FAILED")
