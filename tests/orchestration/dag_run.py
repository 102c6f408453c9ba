"""`python -m tests.orchestration.dag_run DAG_ID`: one run of a DAG with Airflow's own test runner
(`dag.test()`, no scheduler), from the DAG folder Airflow is configured with; prints the run's
id, state and each task's state as the last line, in JSON. The tests run it in a child process
with a temporary AIRFLOW_HOME (SQLite), as `airflow dags test` would."""

from __future__ import annotations

import json
import sys

from airflow.configuration import conf
from airflow.dag_processing.dagbag import DagBag
from airflow.models.dagrun import DagRun
from airflow.utils.session import create_session


def main(dag_id: str) -> None:
    bag = DagBag(conf.get("core", "dags_folder"))
    if bag.import_errors:
        raise SystemExit(f"DAG import errors: {bag.import_errors}")
    run_id = bag.dags[dag_id].test().run_id
    with create_session() as session:
        run = session.query(DagRun).filter_by(dag_id=dag_id, run_id=run_id).one()
        tasks = {ti.task_id: ti.state for ti in run.get_task_instances(session=session)}
        print(json.dumps({"run_id": run.run_id, "state": run.state, "tasks": tasks}))


if __name__ == "__main__":
    main(sys.argv[1])
