"""Helpers of the dbt tests: run dbt in a subprocess, read the API over HTTP, the warehouse."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nightly.dbt_build import node_name
from tests.support import REPO_ROOT

DBT_FAILED_STATUSES = frozenset({"error", "fail", "runtime error"})


@dataclass(frozen=True)
class DbtRun:
    """One dbt invocation: its exit code, output and per-node results from run_results.json."""

    args: tuple[str, ...]
    returncode: int
    output: str
    results: tuple[dict[str, Any], ...]

    def statuses(self) -> dict[str, str]:
        """Node name -> status (pass, warn, fail, error, success, skipped...)."""
        return {node_name(result["unique_id"]): result["status"] for result in self.results}

    def failures(self) -> list[str]:
        return [
            f"{result['status']}: {result['unique_id']}: {result.get('message')}"
            for result in self.results
            if result["status"] in DBT_FAILED_STATUSES
        ]

    def assert_ok(self) -> None:
        """No node failed or errored (warnings are fine) and dbt exited 0."""
        assert not self.failures(), "\n".join(self.failures())
        assert self.returncode == 0, self.output[-3000:]
        assert self.results, f"dbt ran nothing: {self.output[-3000:]}"


def run_dbt(duckdb_file: Path, work_dir: Path, *args: str) -> DbtRun:
    """`dbt <args>` from the repo root against `duckdb_file`, with target/logs under `work_dir`."""
    target = work_dir / "target"
    env = {
        **os.environ,
        "MOOVITAMIX_DUCKDB_PATH": str(duckdb_file),
        "DBT_PROFILES_DIR": str(REPO_ROOT),
    }
    command = [
        str(Path(sys.executable).with_name("dbt")), *args,
        "--target-path", str(target), "--log-path", str(work_dir / "logs"),
    ]  # fmt: skip
    completed = subprocess.run(
        command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    # `dbt source freshness` writes sources.json; the other commands run_results.json
    results_file = target / (
        "sources.json" if args[:2] == ("source", "freshness") else "run_results.json"
    )
    results: tuple[dict[str, Any], ...] = ()
    if results_file.exists():
        results = tuple(json.loads(results_file.read_text())["results"])
        results_file.unlink()  # the next invocation must not read these again
    return DbtRun(tuple(args), completed.returncode, completed.stdout + completed.stderr, results)


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
    work_dir: Path
    day: ApiDay
    next_day: ApiDay
    load_id: str
    next_load_id: str
    first_build: DbtRun
    second_build: DbtRun

    def copy(self, name: str) -> Path:
        """A copy of the warehouse file (built through day D+1) to change without harm."""
        copy = self.work_dir / f"{name}.duckdb"
        shutil.copyfile(self.duckdb_file, copy)
        return copy


def load_time(load_id: str) -> datetime:
    """A dlt load id (the package's unix time) as a naive UTC datetime, like the models' `_at`."""
    return datetime.fromtimestamp(float(load_id), UTC).replace(tzinfo=None)
