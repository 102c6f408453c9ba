"""One warehouse for the dbt tests: two nights of the dev API loaded and built, once per session.

The `warehouse` fixture serves the dev API over loopback, loads day D with the real extractor
into a temp DuckDB file, runs `dbt build`, then loads day D+1 and runs an incremental
`dbt build`; it keeps each day's API pages (read over HTTP, as a client sees them) so that the
tests compute their expectations independently of dbt. dbt runs in a subprocess with its own
target and log folders, so parallel test runs never share dbt's state.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dev_api.faults import FOREVER, Fault, FaultPlan
from dev_api.server import running_api
from dev_api.world import World
from extract.pipeline import make_pipeline, run_extraction
from tests.dbt.support import ApiDay, Warehouse, run_dbt

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


@pytest.fixture(scope="session")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    work_dir = tmp_path_factory.mktemp("dbt")
    duckdb_file = work_dir / "moovitamix.duckdb"
    pipeline = make_pipeline(duckdb_file, work_dir / "dlt")
    world = World(**WORLD)
    day_number = day_with_a_deletion(world)
    world.day = day_number
    with running_api(world) as api:
        day = ApiDay.read(api.url)
        first_load = run_extraction(pipeline, api.url)
        first_build = run_dbt(duckdb_file, work_dir, "build")
        first_build.assert_ok()
        api.set_day(day_number + 1)
        api.faults = next_day_nulls()
        next_day = ApiDay.read(api.url)
        second_load = run_extraction(pipeline, api.url)
        second_build = run_dbt(duckdb_file, work_dir, "build")
    yield Warehouse(
        duckdb_file=duckdb_file,
        work_dir=work_dir,
        day=day,
        next_day=next_day,
        load_id=first_load.load_id,
        next_load_id=second_load.load_id,
        first_build=first_build,
        second_build=second_build,
    )
