"""MooVitamix weekly retraining: `make train` (fit, evaluate, promotion gate) on Sundays at 05:30
UTC. The nightly DAG's `training` step also trains, before scoring, on the nights the retraining
rule fires."""

from __future__ import annotations

from airflow.sdk import task

from orchestration import tasks

with tasks.moovitamix_dag(
    "moovitamix_retrain",
    "weekly retraining of the recommender behind its evaluation gate",
    "30 5 * * 0",
    __doc__,
):

    @task
    def train() -> None:
        tasks.train()

    train()
