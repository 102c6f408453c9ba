"""Helpers of the Airflow tests: run a DAG with `dag.test()` in a child process, against a data
folder and a dev API, in a temporary AIRFLOW_HOME (SQLite)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.nightly.support import TIMEOUT_SECONDS, job_environment
from tests.support import REPO_ROOT

DAGS_FOLDER = REPO_ROOT / "orchestration" / "dags"


def airflow_environment(
    airflow_home: Path, data_dir: Path, api_url: str | None, **extra: str
) -> dict[str, str]:
    """A nightly job's test environment (fast retries, the data folder, the API), plus Airflow's:
    its home, our DAG folder, no examples, and extract_load retried once at once."""
    return job_environment(
        data_dir,
        api_url,
        AIRFLOW_HOME=str(airflow_home),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{airflow_home / 'airflow.db'}",
        AIRFLOW__LOGGING__BASE_LOG_FOLDER=str(airflow_home / "logs"),
        AIRFLOW__CORE__DAGS_FOLDER=str(DAGS_FOLDER),
        AIRFLOW__CORE__LOAD_EXAMPLES="false",
        ORCHESTRATION__EXTRACT_RETRIES="1",
        ORCHESTRATION__EXTRACT_RETRY_DELAY_SECONDS="0",
        **extra,
    )


def migrate(airflow_home: Path) -> None:
    """A fresh Airflow metadata database (SQLite) in `airflow_home`."""
    completed = subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
        cwd=airflow_home,
        env=airflow_environment(airflow_home, airflow_home / "unused", None),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]


def fresh_home(template: Path, folder: Path) -> Path:
    """A copy of a migrated AIRFLOW_HOME: each DAG run its own SQLite file, so two runs at once
    do not fight over one."""
    return Path(shutil.copytree(template, folder))


@dataclass(frozen=True)
class DagRun:
    run_id: str
    state: str
    tasks: dict[str, str | None]
    log: str


def start_dag(
    dag_id: str, airflow_home: Path, data_dir: Path, api_url: str | None, **env: str
) -> subprocess.Popen[str]:
    """`dag.test()` of `dag_id` in a child process (tests/orchestration/dag_run.py)."""
    return subprocess.Popen(
        [sys.executable, "-m", "tests.orchestration.dag_run", dag_id],
        cwd=airflow_home,  # not the repository: the tasks must find it themselves
        env={
            **airflow_environment(airflow_home, data_dir, api_url, **env),
            "PYTHONPATH": str(REPO_ROOT),
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish_dag(process: subprocess.Popen[str]) -> DagRun:
    output, _ = process.communicate(timeout=3 * TIMEOUT_SECONDS)
    assert process.returncode == 0, output[-5000:]
    result = json.loads(output.strip().splitlines()[-1])
    return DagRun(result["run_id"], result["state"], result["tasks"], output)


def run_dag(
    dag_id: str, airflow_home: Path, data_dir: Path, api_url: str | None, **env: str
) -> DagRun:
    """One run of `dag_id` to completion."""
    return finish_dag(start_dag(dag_id, airflow_home, data_dir, api_url, **env))
