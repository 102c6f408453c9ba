"""Helpers the test modules share (fixtures live in conftest.py)."""

from __future__ import annotations

import fcntl
import os
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import duckdb
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
CONTRACT_DIR = REPO_ROOT / "dev_api" / "contract"

T = TypeVar("T")


def query(path: Path, sql: str, *params: object) -> list[tuple]:
    """Rows of `sql` from a DuckDB file, opened read-only and closed again (so writers can run)."""
    with duckdb.connect(str(path), read_only=True) as connection:
        return connection.execute(sql, list(params)).fetchall()


def built_once(
    tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], T]
) -> T:
    """`build(folder)` once per test run, in a folder of its own, whichever pytest-xdist worker
    asks first: the others wait for it and get the same (pickled) result and folder. Without
    workers it is a plain build. For session fixtures that build a warehouse or run nights;
    tests copy the folder before writing to it (one writing process per DuckDB file)."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the run's temp folder, which every worker's own folder is under
    folder, result_file = base / f"built-{name}", base / f"built-{name}.pickle"
    with open(base / f"built-{name}.lock", "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)  # released when the file closes
        if result_file.exists():
            return pickle.loads(result_file.read_bytes())
        shutil.rmtree(folder, ignore_errors=True)  # what a failed build of another worker left
        folder.mkdir()
        result = build(folder)
        result_file.write_bytes(pickle.dumps(result))
        return result
