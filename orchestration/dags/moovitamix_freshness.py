"""MooVitamix dead-man's switch: alert (and fail) when nothing loaded or published for 26 h,
including the nights no run happened at all. Daily at 09:00 UTC, apart from the nightly DAG."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, task

from orchestration import tasks

with DAG(
    dag_id="moovitamix_freshness",
    description="the dead-man's switch: `python -m nightly.status --alert-if-stale`",
    schedule="0 9 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 0, "on_failure_callback": tasks.alert_unrecorded_failure},
    doc_md=__doc__,
    tags=["moovitamix"],
):

    @task
    def dead_man_check() -> None:
        tasks.dead_man_check()

    dead_man_check()
