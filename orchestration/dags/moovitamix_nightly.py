"""MooVitamix nightly: the night `make elt` runs, one task per step, daily at 02:30 UTC.

`begin_night` opens the run record (Airflow's run id beside ours) and `finish_night` closes it,
sends the alert and refreshes the `ops` tables, whatever happened in between (a teardown). Each
step task runs the nightly runner's own step under the run lock. After a data-quality error
`publish` is skipped and `finish_night` fails the DAG run; a failed step fails the run too.
`training` is the night's own training step: it trains when there is no champion yet or the
retraining rule fires (recommender.nightly.retraining), before `scoring`, so tonight's
recommendations come from tonight's champion.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import get_current_context, setup, task, teardown

from orchestration import tasks
from orchestration.settings import OrchestrationSettings

settings = OrchestrationSettings.from_config()

with tasks.moovitamix_dag(
    "moovitamix_nightly",
    "extract, load, dbt build, checks, training, scoring, publish: the night of `make elt`",
    "30 2 * * *",
    __doc__,
):

    @setup
    def begin_night() -> str:
        return tasks.begin(get_current_context()["run_id"])

    def night() -> str:
        """Our run id, from begin_night (pulled, not passed: a task taking the setup's output
        becomes its direct downstream, and the tasks stay one chain, in the order of STEPS)."""
        return get_current_context()["ti"].xcom_pull(task_ids="begin_night")

    @task(
        retries=settings.extract_retries,
        retry_delay=timedelta(seconds=settings.extract_retry_delay_seconds),
    )
    def extract_load() -> None:
        tasks.run(night(), "extract_load")

    @task
    def privacy() -> None:
        tasks.run(night(), "privacy")

    @task
    def dbt_build() -> None:
        tasks.run(night(), "dbt_build")

    @task
    def checks() -> None:
        tasks.run(night(), "checks")

    @task
    def training() -> None:
        tasks.run(night(), "training")

    @task
    def scoring() -> None:
        tasks.run(night(), "scoring")

    @task
    def publish() -> None:
        tasks.run(night(), "publish")

    @teardown(on_failure_fail_dagrun=True)
    def finish_night() -> None:
        tasks.finish(night())

    opened = begin_night()
    (
        opened
        >> extract_load()
        >> privacy()
        >> dbt_build()
        >> checks()
        >> training()
        >> scoring()
        >> publish()
        >> finish_night().as_teardown(setups=opened)
    )
