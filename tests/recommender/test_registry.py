"""The registry (ml.model_versions), the marts the recommender reads and the swap of
ml.recommendations, on a tiny DuckDB file built without dbt (tests/recommender/tiny.py): fast
enough for `make mutation` to run per mutant of recommender/warehouse.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from dev_api.world import World
from recommender import RecommenderError
from recommender.warehouse import (
    RECOMMENDATION_COLUMNS,
    champion,
    listens_first_seen_after,
    model_versions,
    next_model_version,
    read_catalogue,
    read_listens,
    read_user_tracks,
    read_users,
    recommendations_state,
    register,
    replace_recommendations,
    set_statuses,
)
from tests.recommender.tiny import (
    FIRST_LOAD,
    a_version,
    world_catalogue,
    world_listens,
    write_warehouse,
)
from tests.support import query


@pytest.fixture(scope="module")
def world() -> World:
    return World(seed=3, users=80, tracks=60, listens=8)


@pytest.fixture
def warehouse(tmp_path: Path, world: World) -> Path:
    return write_warehouse(tmp_path / "warehouse.duckdb", world)


def test_the_registry_reads_back_every_field_as_written(warehouse: Path) -> None:
    first, second = a_version(1), a_version(2)
    assert (next_model_version(warehouse), model_versions(warehouse)) == (1, [])
    register(warehouse, first)
    register(warehouse, second)

    assert model_versions(warehouse) == [first, second]
    assert next_model_version(warehouse) == 3
    assert champion(warehouse) is None  # candidates only


def test_the_gate_s_statuses_apply_and_the_latest_champion_serves(warehouse: Path) -> None:
    versions = [a_version(n) for n in (1, 2, 3)]
    for version in versions:
        register(warehouse, version)
    set_statuses(warehouse, {1: ("champion", "first"), 2: ("champion", "second")})
    after_first = champion(warehouse)
    set_statuses(warehouse, {2: ("retired", "replaced by v3"), 3: ("champion", "best")})

    assert after_first == versions[1].__class__(
        **{**vars(versions[1]), "status": "champion", "status_reason": "second"}
    )
    assert [(v.status, v.status_reason) for v in model_versions(warehouse)] == [
        ("champion", "first"),
        ("retired", "replaced by v3"),
        ("champion", "best"),
    ]
    assert champion(warehouse).model_version == 3
    # everything but the status is as registered
    assert [{**vars(v), "status": "", "status_reason": ""} for v in model_versions(warehouse)] == [
        {**vars(v), "status": "", "status_reason": ""} for v in versions
    ]


def test_a_warehouse_dbt_has_not_built_is_refused_for_writes_and_empty_for_reads(
    tmp_path: Path, world: World
) -> None:
    bare = write_warehouse(tmp_path / "bare.duckdb", world, with_ml=False)
    assert (model_versions(bare), champion(bare)) == ([], None)
    state = recommendations_state(bare)
    assert (state.rows, state.users, state.generated_at, state.model_versions) == (0, 0, None, ())
    assert state.describe() == "ml.recommendations is empty"
    for write in (
        lambda: register(bare, a_version(1)),
        lambda: next_model_version(bare),
        lambda: set_statuses(bare, {1: ("champion", "x")}),
        lambda: replace_recommendations(bare, [], scored_for([])),
    ):
        with pytest.raises(RecommenderError) as refused:
            write()
        assert str(refused.value) == (
            f"{bare} has no ml tables: run `dbt build` (make elt) first, which creates them"
        )
    assert query(bare, "select count(*) from duckdb_schemas() where schema_name = 'ml'") == [(0,)]


def test_the_marts_read_back_as_written(warehouse: Path, world: World) -> None:
    expected = world_listens(world)
    listens = read_listens(warehouse)
    users, tracks, counts = read_user_tracks(warehouse)
    entries = expected.matrix.tocoo()
    pairs = {
        (int(expected.user_ids[r]), int(expected.track_ids[c])): float(n)
        for r, c, n in zip(entries.row, entries.col, entries.data, strict=True)
    }

    assert len(pairs) > 100
    assert {
        (int(u), int(t)): float(n)
        for u, t, n in zip(listens.user_ids, listens.track_ids, listens.listens, strict=True)
    } == pairs
    assert {
        (int(u), int(t)): float(n) for u, t, n in zip(users, tracks, counts, strict=True)
    } == pairs
    assert [array.dtype for array in (*vars(listens).values(), users, tracks, counts)] == [
        np.int64,
        np.int64,
        np.int64,
        np.float32,
        np.int64,
        np.int64,
        np.float32,
    ]
    assert set(listens.first_seen_us.tolist()) == {
        (FIRST_LOAD - FIRST_LOAD.replace(year=1970, month=1, day=1, hour=0))
        // timedelta(microseconds=1)
    }
    assert read_users(warehouse) == {
        record["id"]: record["favorite_genres"].split(",")[0].strip()
        for record in world.records("users", 0)
    }
    assert read_catalogue(warehouse) == world_catalogue(world)
    total = int(sum(pairs.values()))
    assert listens_first_seen_after(warehouse, FIRST_LOAD - timedelta(seconds=1)) == total
    assert listens_first_seen_after(warehouse, FIRST_LOAD) == 0


def recommendations(users: list[int], version: int, hour: int) -> pa.Table:
    rows = [(user, rank) for user in users for rank in (1, 2)]
    return pa.table(
        {
            "user_id": [user for user, _ in rows],
            "rank": pa.array([rank for _, rank in rows], pa.int32()),
            "track_id": [user * 10 + rank for user, rank in rows],
            "score": [1.0 / rank for _, rank in rows],
            "model_version": [version] * len(rows),
            "is_cold_start": [user % 2 == 0 for user, _ in rows],
            "generated_at": pa.array(
                [FIRST_LOAD + timedelta(hours=hour)] * len(rows), pa.timestamp("us")
            ),
        }
    )


def scored_for(tables: list[pa.Table]) -> pa.Table:
    """The ml.scored_users rows of the users in `tables` (what scoring writes beside them)."""
    rows = sorted(
        {
            (user, table["model_version"][0].as_py())
            for table in tables
            for user in table["user_id"].to_pylist()
        }
    )
    return pa.table(
        {
            "user_id": [user for user, _ in rows],
            "model_version": [version for _, version in rows],
            "inputs_hash": pa.array([user * 31 for user, _ in rows], pa.uint64()),
            "context_hash": [7] * len(rows),
            "scored_at": pa.array([FIRST_LOAD] * len(rows), pa.timestamp("us")),
        }
    )


def stored(path: Path) -> list[tuple]:
    return query(
        path, f"select {', '.join(RECOMMENDATION_COLUMNS)} from ml.recommendations order by all"
    )


def test_recommendations_are_swapped_whole_or_not_at_all(warehouse: Path) -> None:
    yesterday = [recommendations([1, 2], 4, 0), recommendations([3], 5, 0)]
    replace_recommendations(warehouse, iter(yesterday), scored_for(yesterday))
    state = recommendations_state(warehouse)
    kept = stored(warehouse)

    def failing() -> Iterator[pa.Table]:
        yield recommendations([7, 8, 9], 6, 24)
        raise RuntimeError("scoring failed mid-way")

    with pytest.raises(RuntimeError, match="mid-way"):
        replace_recommendations(
            warehouse, failing(), scored_for([recommendations([7, 8, 9], 6, 24)])
        )

    expected = sorted(tuple(row.values()) for table in yesterday for row in table.to_pylist())
    assert kept == expected and len(kept) == 6
    assert stored(warehouse) == kept
    assert (state.rows, state.users, state.model_versions) == (6, 3, (4, 5))
    assert state.generated_at == FIRST_LOAD
    assert state.describe() == (
        "ml.recommendations holds 6 rows for 3 users, generated at "
        f"{FIRST_LOAD:%Y-%m-%d %H:%M:%S} UTC by model version 4, 5"
    )
    assert query(warehouse, "select user_id, model_version from ml.scored_users order by 1") == [
        (1, 4),
        (2, 4),
        (3, 5),
    ]
    replace_recommendations(
        warehouse, [recommendations([7], 6, 24)], scored_for([recommendations([7], 6, 24)])
    )
    assert stored(warehouse) == sorted(
        tuple(row.values()) for row in recommendations([7], 6, 24).to_pylist()
    )
    assert query(warehouse, "select user_id, model_version from ml.scored_users") == [(7, 6)]
