"""One small warehouse for the recommender tests: two nights of the dev API, extracted and built.

The dev API serves over loopback, with a null listen list on each of the first listen_history
pages (users with no listens: cold starts); the nightly job's first steps (extract, load, dbt
build: `run_night`) run day 0 and then day 1 in a temp data folder, so the listen events span two
loads. Built once per test run (`built_once`, whatever the number of workers); each test module
works on its own copy.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dev_api.faults import FOREVER, Fault, FaultPlan
from dev_api.server import running_api
from dev_api.world import World
from nightly.runner import EXIT_SUCCESS, run_night
from nightly.settings import NightConfig
from nightly.steps import steps_through
from recommender.settings import Settings
from tests.support import built_once

WORLD = {"users": 600, "tracks": 300, "listens": 20, "seed": 42}
NULL_LIST_PAGES = (1, 2, 3)
LAST_DAY = 1


@dataclass(frozen=True)
class BuiltWarehouse:
    """The session's warehouse: never written by the recommender (dbt's pre-hook made ml)."""

    duckdb_file: Path
    world: World

    def copy(self, directory: Path) -> Path:
        copy = directory / "warehouse.duckdb"
        shutil.copyfile(self.duckdb_file, copy)
        return copy


@pytest.fixture(scope="session")
def built_warehouse(tmp_path_factory: pytest.TempPathFactory) -> BuiltWarehouse:
    duckdb_file = built_once(tmp_path_factory, "recommender-warehouse", build_warehouse)
    # the world the API served (the same seed and sizes make the same world), on its last day
    return BuiltWarehouse(duckdb_file, World(**WORLD, day=LAST_DAY))


def build_warehouse(work_dir: Path) -> Path:
    faults = FaultPlan(
        [Fault("listen_history", page, "null_items", times=FOREVER) for page in NULL_LIST_PAGES]
    )
    with running_api(faults=faults, **WORLD) as api:
        config = NightConfig.for_data_dir(work_dir, api_url=api.url)
        for day in range(LAST_DAY + 1):
            api.set_day(day)
            outcome = run_night(steps_through("dbt_build"), config)
            assert outcome.exit_code == EXIT_SUCCESS, outcome.record.error_message
    return config.paths.warehouse


def settings_for(directory: Path, duckdb_file: Path, **overrides: Any) -> Settings:
    """Settings on a warehouse copy, artifacts beside it; `overrides` as Settings fields."""
    return Settings(duckdb_path=duckdb_file, models_dir=directory / "models", **overrides)


# Settings that make a time split of the two loads: train on day 0, hold out day 1's new tracks.
TIME_SPLIT = {"time_split_min_nights": 2, "holdout_nights": 1}
# A deliberately bad learned candidate: one factor, hardly fitted, smothered by regularisation.
BAD_CANDIDATE = {
    "bad": {
        "kind": "als",
        "factors": 1,
        "regularization": 100.0,
        "alpha": 1.0,
        "iterations": 1,
        "bm25_k1": 100.0,
        "bm25_b": 0.8,
        "random_state": 42,
    }
}
