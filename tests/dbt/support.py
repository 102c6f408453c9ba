"""Helpers of the dbt tests: run dbt (core.dbt), read the API over HTTP, the warehouse."""

from __future__ import annotations

import json
import shutil
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.dbt import DbtRun
from core.dbt import run_dbt as core_run_dbt
from core.paths import Paths


def run_dbt(duckdb_file: Path, work_dir: Path, *args: str) -> DbtRun:
    """`dbt <args>` the project's one way (core.dbt) against `duckdb_file`, output captured, with
    target and logs under `work_dir` so that tests never share dbt's state."""
    paths = Paths.under(work_dir, warehouse=duckdb_file)
    return core_run_dbt(paths, *args, target_dir=work_dir / "target", capture=True)


def assert_ok(run: DbtRun) -> None:
    """No node failed or errored (warnings are fine), dbt exited 0, and it ran something."""
    assert not run.failed(), "\n".join(
        f"{n.status}: {n.unique_id}: {n.message}" for n in run.failed()
    )
    assert run.returncode == 0, run.output[-3000:]
    assert run.nodes, f"dbt ran nothing: {run.output[-3000:]}"


def fetch_endpoint(api_url: str, endpoint: str) -> list[dict[str, Any]]:
    """Every record of an endpoint, page by page over HTTP, as the API serves it."""
    records: list[dict[str, Any]] = []
    page = 1
    while True:
        with urllib.request.urlopen(f"{api_url}/{endpoint}?page={page}&size=100") as response:
            body = json.load(response)
        records += body["items"]
        if page >= body["pages"]:
            return records
        page += 1


@dataclass(frozen=True)
class ApiDay:
    """One day of the API as read over HTTP, keyed like the raw tables."""

    users: dict[int, dict[str, Any]]
    tracks: dict[int, dict[str, Any]]
    listen_history: dict[int, dict[str, Any]]

    @classmethod
    def read(cls, api_url: str) -> ApiDay:
        return cls(
            users={r["id"]: r for r in fetch_endpoint(api_url, "users")},
            tracks={r["id"]: r for r in fetch_endpoint(api_url, "tracks")},
            listen_history={r["user_id"]: r for r in fetch_endpoint(api_url, "listen_history")},
        )


@dataclass(frozen=True)
class Warehouse:
    duckdb_file: Path
    day: ApiDay
    next_day: ApiDay
    load_id: str
    next_load_id: str
    first_build: DbtRun
    second_build: DbtRun

    def copy(self, directory: Path) -> Path:
        """A copy of the warehouse file (built through day D+1) in `directory`, to change
        without harm, or to run a dbt command on: every dbt command opens the file for writing."""
        copy = directory / "warehouse.duckdb"
        shutil.copyfile(self.duckdb_file, copy)
        return copy


def load_time(load_id: str) -> datetime:
    """A dlt load id (the package's unix time) as a naive UTC datetime, like the models' `_at`."""
    return datetime.fromtimestamp(float(load_id), UTC).replace(tzinfo=None)
