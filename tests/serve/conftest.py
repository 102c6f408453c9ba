"""Two published nights of a small dev API world, built once per test run with the nightly job
(`built_once`, whatever the number of workers): the tests only read them, or copy a file.

Night 0 and night 1 (the next simulated day: sign-ups, deletions, new listens). One user's
listen list is always null (an injected `null_items` fault), so that user is a cold start.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from dev_api.faults import FaultPlan
from dev_api.server import running_api
from dev_api.world import World
from tests.nightly.support import run_job
from tests.support import built_once

WORLD = {"users": 300, "tracks": 200, "listens": 5, "seed": 11}
# the first listen list of page 1 is null on every request: its user has no listens
COLD_START_FAULT = "listen_history:1:null_itemsx-1"


@dataclass(frozen=True)
class Nights:
    night0: Path  # data folder after night 0
    night1: Path  # data folder after night 1 (a copy of night 0's, one more run)
    world: World

    @property
    def deleted_on_day1(self) -> set[int]:
        return self.world.deleted_user_ids(0, 1)


@pytest.fixture(scope="session")
def nights(tmp_path_factory: pytest.TempPathFactory) -> Nights:
    folder = built_once(tmp_path_factory, "serve-nights", build_nights)
    return Nights(folder / "night0", folder / "night1", World(**WORLD))


def build_nights(folder: Path) -> Path:
    night0, night1 = folder / "night0", folder / "night1"
    night0.mkdir(mode=0o700)  # as pytest makes temp folders
    with running_api(World(**WORLD), FaultPlan.from_specs([COLD_START_FAULT])) as api:
        completed = run_job(night0, api.url)
        assert completed.returncode == 0, completed.stderr[-3000:]
        shutil.copytree(night0, night1)
        api.set_day(1)
        completed = run_job(night1, api.url)
        assert completed.returncode == 0, completed.stderr[-3000:]
    return folder


@pytest.fixture
def published(nights: Nights) -> Path:
    """Night 1's analysts' file."""
    return nights.night1 / "analytics.duckdb"
