"""MooVitamix weekly retraining: `make train` (fit, evaluate, promotion gate) on Sundays at 05:30
UTC. The nightly DAG also retrains, before scoring, on the nights the retraining rule fires."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, task

from orchestration import tasks

with DAG(
    dag_id="moovitamix_retrain",
    description="weekly retraining of the recommender behind its evaluation gate",
    schedule="30 5 * * 0",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 0, "on_failure_callback": tasks.alert_unrecorded_failure},
    doc_md=__doc__,
    tags=["moovitamix"],
):

    @task
    def train() -> None:
        tasks.train()

    train()
