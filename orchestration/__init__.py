"""The nightly job and the weekly retraining as Apache Airflow DAGs (`orchestration/dags/`).

The DAGs' tasks call the project's own functions (`orchestration.tasks`); this package needs
Airflow, which lives in its own environment (`make airflow` builds `.venv-airflow`).

Airflow runs a task from a working directory of its own; the project runs from its root, as
cron's `cd /srv/moovitamix && ...` does. So dlt reads the repository's `.dlt/` settings wherever
the task runs (unless `DLT_PROJECT_DIR` says otherwise), set here before dlt reads any setting.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

os.environ.setdefault("DLT_PROJECT_DIR", str(REPO_ROOT))
