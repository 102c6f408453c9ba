"""One published night (day 0 of a small dev API world), built once per test run (whatever the
number of workers) and copied for each test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dev_api.server import running_api
from tests.nightly.support import api_world, run_job
from tests.support import built_once


@pytest.fixture(scope="session")
def first_night(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder after one successful run: warehouse, ledger, published analysts' file.
    Read it, or copy it (`data_dir`) to write."""

    def build(data_dir: Path) -> Path:
        with running_api(api_world(day=0)) as api:
            completed = run_job(data_dir, api.url)
        assert completed.returncode == 0, completed.stderr[-3000:]
        return data_dir

    return built_once(tmp_path_factory, "first_night", build)


@pytest.fixture
def data_dir(first_night: Path, tmp_path: Path) -> Path:
    """A copy of the first night's data folder, for one test to run further nights in."""
    return Path(shutil.copytree(first_night, tmp_path / "data"))
