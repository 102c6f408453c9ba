"""What the DAGs' tasks call: the nightly runner's step-at-a-time API over the same STEPS (the
night's training among them), the weekly `train` and the dead-man check, each mapped onto an
Airflow outcome.

A night under Airflow is one ledger record, exactly as under `make elt`: `begin` opens it (with
Airflow's run id beside ours), each step task runs its steps under the run lock, `finish` closes
it, sends the alert and refreshes `ops`. A failure the record holds raises `Recorded`, so the
failure callback (for failures no record tells, e.g. a crashed task) stays quiet.

Extract and load are one task: the verified package extract leaves is in dlt's working folder,
but what load needs to trust it (the truncation guard's counts) is in memory, and the
extractor's crash recovery treats a package nobody is loading as a partial read and drops it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import pendulum
from airflow.sdk import DAG
from airflow.sdk.exceptions import AirflowSkipException

from nightly import alerts
from nightly.ledger import ERROR
from nightly.runner import NightRefused, begin_night, finish_night, run_steps
from nightly.settings import NightConfig, NightlySettings
from nightly.status import main as status_main
from nightly.steps import STEPS
from orchestration import REPO_ROOT
from recommender.__main__ import main as recommender_main

# Each step task and the nightly steps it runs, in order.
STEP_TASKS: dict[str, tuple[str, ...]] = {
    "extract_load": ("extract", "load"),
    "privacy": ("privacy",),
    "dbt_build": ("dbt_build",),
    "checks": ("checks",),
    "training": ("training",),
    "scoring": ("scoring",),
    "publish": ("publish",),
}


class Recorded(Exception):
    """A failure the night's record (or the dead-man check) holds and has already alerted."""


def begin(orchestrator_run_id: str) -> str:
    """Open tonight's record; returns our run id for the other tasks. Refused (another night
    holds the lock or is open): recorded and alerted as under cron, and this DAG run fails."""
    try:
        return begin_night(_config(), orchestrator_run_id).run_id
    except NightRefused as exc:
        raise Recorded(f"refused: {exc}") from exc


def run(run_id: str, task: str) -> None:
    """Run the task's nightly steps; skipped after a data-quality error (publish)."""
    names = STEP_TASKS[task]
    record = run_steps(run_id, [s for s in STEPS if s.name in names], _config())
    outcomes = [timing.outcome for timing in record.steps if timing.step in names]
    if "failed" in outcomes:
        raise Recorded(f"step {record.failing_step} failed: {record.error_message}")
    if outcomes and all(outcome == "skipped" for outcome in outcomes):
        errors = record.findings_at(ERROR)
        raise AirflowSkipException(f"a data-quality error was found: {errors[0].message}")


def train() -> None:
    """`python -m recommender train` (make train): fit, evaluate, promotion gate, under the lock."""
    _at_repository_root()
    exit_code = recommender_main(["train"])
    if exit_code:
        raise RuntimeError(f"python -m recommender train exited {exit_code}")


def finish(run_id: str) -> None:
    """Close the night as `make elt` does; a failed or data-quality-failed night fails the run."""
    outcome = finish_night(run_id, STEPS, _config())
    if outcome.exit_code:
        record = outcome.record
        raise Recorded(
            f"night {run_id} {record.status} at step {record.failing_step} "
            f"(exit {outcome.exit_code}): {record.error_message}"
        )


def dead_man_check() -> None:
    """`python -m nightly.status --alert-if-stale`: alerts, and fails, when nothing loaded or
    published for `stale_after_hours`."""
    _at_repository_root()
    if status_main(["--alert-if-stale"]):
        raise Recorded("stale: nothing loaded or published recently; the alert was sent")


def alert_unrecorded_failure(context: Mapping[str, Any]) -> None:
    """on_failure_callback: alert a task failure that no run record tells (a crashed task, a lock
    held by a manual run, a failed weekly retraining), to the log and webhook of every alert."""
    exception = context.get("exception")
    if isinstance(exception, Recorded):
        return
    ti = context["ti"]
    alerts.send(
        f"MooVitamix Airflow: task {ti.task_id} of {ti.dag_id} failed in run {ti.run_id}: "
        f"{type(exception).__name__}: {exception}",
        NightlySettings.from_config().alert_webhook_url,
    )


def _config() -> NightConfig:
    _at_repository_root()
    return NightConfig.resolve()


def _at_repository_root() -> None:
    """Run from the repository root, as cron's `cd` does: a relative MOOVITAMIX_DATA_DIR (or the
    default `data`) means the same folder as under `make elt`."""
    os.chdir(REPO_ROOT)


def moovitamix_dag(dag_id: str, description: str, schedule: str, doc_md: str | None) -> DAG:
    """A DAG of this project: UTC schedule, no catch-up, one run at a time, no retries unless a
    task says so, and failures alerted like a cron night's."""
    return DAG(
        dag_id=dag_id,
        description=description,
        schedule=schedule,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=1,
        default_args={"retries": 0, "on_failure_callback": alert_unrecorded_failure},
        doc_md=doc_md,
        tags=["moovitamix"],
    )
