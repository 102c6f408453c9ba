"""One warehouse for the dbt tests: two nights of the dev API loaded and built, once per test run.

The `warehouse` fixture serves the dev API over loopback and runs the nightly job's own first
steps (extract, load, dbt build: `run_night`) for day D in a temp data folder, then for day D+1
(an incremental build); it keeps each day's API pages (read over HTTP, as a client sees them) so
that the tests compute their expectations independently of dbt. Built once whatever the number
of workers (`built_once`): tests read it, or write to a copy (`Warehouse.copy`), and run dbt
commands that write (even `docs generate` and `source freshness` open the file for writing) on
a copy too, so that no worker ever holds it open for writing while another reads it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dev_api.faults import FOREVER, Fault, FaultPlan
from dev_api.server import running_api
from dev_api.world import World
from nightly.runner import NightOutcome, run_night
from nightly.settings import NightConfig
from nightly.steps import steps_through
from tests.dbt.support import ApiDay, Warehouse, assert_ok, run_dbt
from tests.support import built_once

# A small world, big enough for every case: new listens, new users, users deleted upstream.
WORLD = {"users": 300, "tracks": 200, "seed": 42}


def day_with_a_deletion(world: World) -> int:
    """The first day D >= 1 whose next day deletes a user upstream (the data set decides which)."""
    for day in range(1, 60):
        if set(world.keys("users", day)) - set(world.keys("users", day + 1)):
            return day
    raise AssertionError("the dev API world deletes no user in its first 60 days")


def next_day_nulls() -> FaultPlan:
    """On day D + 1 the API also sends what the contract allows and a robust reader handles: a
    null track id in a list (page 1's first user) and a null list (page 2's first user)."""
    return FaultPlan(
        [
            Fault("listen_history", 1, "null_item", times=FOREVER),
            Fault("listen_history", 2, "null_items", times=FOREVER),
        ]
    )


def built_night(config: NightConfig) -> NightOutcome:
    """Extract, load and dbt build one night, as the nightly job does."""
    outcome = run_night(steps_through("dbt_build"), config)
    assert outcome.build is not None and outcome.record.load_id, outcome.record.error_message
    return outcome


@pytest.fixture(scope="session")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    return built_once(tmp_path_factory, "dbt-warehouse", build_warehouse)


def build_warehouse(work_dir: Path) -> Warehouse:
    world = World(**WORLD)
    day_number = day_with_a_deletion(world)
    world.day = day_number
    with running_api(world) as api:
        config = NightConfig.for_data_dir(work_dir, api_url=api.url)
        day = ApiDay.read(api.url)
        first = built_night(config)
        assert_ok(first.build)
        api.set_day(day_number + 1)
        api.faults = next_day_nulls()
        next_day = ApiDay.read(api.url)
        second = built_night(config)
    return Warehouse(
        duckdb_file=config.paths.warehouse,
        day=day,
        next_day=next_day,
        load_id=first.record.load_id,
        next_load_id=second.record.load_id,
        first_build=first.build,
        second_build=second.build,
    )


@pytest.fixture(scope="session")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """dbt's manifest of the project (`dbt parse`: no warehouse needed), parsed once per test
    run for the tests that read the project's declarations. Read it; change a deep copy."""
    return json.loads(built_once(tmp_path_factory, "dbt-manifest", parse_project).read_text())


def parse_project(work_dir: Path) -> Path:
    run = run_dbt(work_dir / "unused.duckdb", work_dir, "parse")
    assert run.returncode == 0, run.output[-3000:]
    return work_dir / "target" / "manifest.json"
