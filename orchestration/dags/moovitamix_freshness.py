"""MooVitamix dead-man's switch: alert (and fail) when nothing loaded or published for 26 h,
including the nights no run happened at all. Daily at 09:00 UTC, apart from the nightly DAG."""

from __future__ import annotations

from airflow.sdk import task

from orchestration import tasks

with tasks.moovitamix_dag(
    "moovitamix_freshness",
    "the dead-man's switch: `python -m nightly.status --alert-if-stale`",
    "0 9 * * *",
    __doc__,
):

    @task
    def dead_man_check() -> None:
        tasks.dead_man_check()

    dead_man_check()
