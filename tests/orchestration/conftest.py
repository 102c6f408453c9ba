"""A migrated Airflow home, made once and copied for each DAG run."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.orchestration.support import migrate


@pytest.fixture(scope="session")
def airflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("airflow_home")
    migrate(home)
    return home
