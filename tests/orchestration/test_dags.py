"""The DAG folder imports cleanly, and each DAG is what the README says it is."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nightly.steps import STEPS
from tests.orchestration.support import DAGS_FOLDER, airflow_environment
from tests.support import REPO_ROOT

IMPORT_CHECK = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
from orchestration.tasks import STEP_TASKS
bag = DagBag(sys.argv[1])
errors = {k: str(v) for k, v in bag.import_errors.items()}
print(json.dumps({"step_tasks": STEP_TASKS, "errors": errors,
                  "dags": {d.dag_id: {"schedule": d.schedule,
                                      "max_active_runs": d.max_active_runs,
                                      "catchup": d.catchup,
                                      "tasks": {t.task_id: {"retries": t.retries,
                                                            "upstream": sorted(t.upstream_task_ids),
                                                            "trigger_rule": str(t.trigger_rule),
                                                            "teardown": t.is_teardown,
                                                            "setup": t.is_setup}
                                                for t in d.topological_sort()}}
                           for d in bag.dags.values()}}))
"""


def load_dag_folder(airflow_template: Path, tmp_path: Path, folder: Path = DAGS_FOLDER) -> dict:
    """A DAG folder as Airflow's own DagBag parses it (a cycle or import error is an error), in a
    child process configured for the test's Airflow home."""
    completed = subprocess.run(
        [sys.executable, "-c", IMPORT_CHECK, str(folder)],
        cwd=tmp_path,
        env={
            **airflow_environment(airflow_template, tmp_path / "data", None),
            "PYTHONPATH": str(REPO_ROOT),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def dag_folder(airflow_template: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    return load_dag_folder(airflow_template, tmp_path_factory.mktemp("dagbag"))


def test_the_dag_folder_imports_without_error_or_cycle(dag_folder: dict) -> None:
    folder = dag_folder
    assert folder["errors"] == {}
    assert set(folder["dags"]) == {
        "moovitamix_nightly",
        "moovitamix_retrain",
        "moovitamix_freshness",
    }


def test_a_cycle_in_a_dag_file_is_an_import_error(airflow_template: Path, tmp_path: Path) -> None:
    """The import test's DagBag does catch a cycle (so the test above can fail)."""
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "cycle.py").write_text(
        "import pendulum\n"
        "from airflow.sdk import DAG\n"
        "from airflow.providers.standard.operators.empty import EmptyOperator\n"
        "with DAG('cycle', schedule=None, start_date=pendulum.datetime(2026, 1, 1)):\n"
        "    a = EmptyOperator(task_id='a')\n"
        "    b = EmptyOperator(task_id='b')\n"
        "    a >> b >> a\n"
    )
    loaded = load_dag_folder(airflow_template, tmp_path, folder)
    assert "cycle" in " ".join(loaded["errors"].values()).lower()
    assert loaded["dags"] == {}


def test_the_nightly_dag_runs_every_step_once_in_order_and_retries_only_the_api(
    dag_folder: dict,
) -> None:
    nightly = dag_folder["dags"]["moovitamix_nightly"]
    assert (nightly["schedule"], nightly["max_active_runs"], nightly["catchup"]) == (
        "30 2 * * *",
        1,
        False,
    )
    step_tasks = dag_folder["step_tasks"]
    tasks = nightly["tasks"]  # in topological order
    steps_in_order = [step for name in tasks if name in step_tasks for step in step_tasks[name]]
    assert steps_in_order == [step.name for step in STEPS]
    assert {name for name, t in tasks.items() if t["retries"]} == {"extract_load"}
    assert tasks["begin_night"]["setup"] and tasks["finish_night"]["teardown"]
    # training is a step task like the others, one way to train at night: no task of its own
    assert tasks["training"]["upstream"] == ["checks"]
    assert tasks["scoring"]["upstream"] == ["training"]
    step_names = {step for steps in step_tasks.values() for step in steps}
    assert set(tasks) == set(step_tasks) | {"begin_night", "finish_night"}
    assert step_names == {step.name for step in STEPS}
    assert {t["trigger_rule"] for name, t in tasks.items() if name in step_tasks} == {
        "TriggerRule.ALL_SUCCESS"
    }


def test_retraining_is_weekly_and_the_dead_man_check_daily(dag_folder: dict) -> None:
    dags = dag_folder["dags"]
    assert dags["moovitamix_retrain"]["schedule"] == "30 5 * * 0"
    assert list(dags["moovitamix_retrain"]["tasks"]) == ["train"]
    assert dags["moovitamix_freshness"]["schedule"] == "0 9 * * *"
    assert list(dags["moovitamix_freshness"]["tasks"]) == ["dead_man_check"]
