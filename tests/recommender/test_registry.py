"""The registry (ml.model_versions), the marts the recommender reads and the swap of
ml.recommendations, on a tiny DuckDB file built without dbt (tests/recommender/tiny.py): fast
enough for `make mutation` to run per mutant of recommender/warehouse.py.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from dev_api.world import World
from recommender import RecommenderError
from recommender.models import Als, Model, Popularity
from recommender.scoring import context_hash, score
from recommender.settings import Settings
from recommender.warehouse import (
    RECOMMENDATION_COLUMNS,
    ModelVersion,
    champion,
    listens_first_seen_after,
    model_versions,
    next_model_version,
    read_catalogue,
    read_listens,
    read_scored_users,
    read_scoring_inputs,
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
    assert replace_recommendations(warehouse, iter(yesterday), scored_for(yesterday)) == 6
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
    assert (
        replace_recommendations(
            warehouse, [recommendations([7], 6, 24)], scored_for([recommendations([7], 6, 24)])
        )
        == 2
    )
    assert stored(warehouse) == sorted(
        tuple(row.values()) for row in recommendations([7], 6, 24).to_pylist()
    )
    assert query(warehouse, "select user_id, model_version from ml.scored_users") == [(7, 6)]


def test_the_marts_read_back_for_some_users_only(warehouse: Path, world: World) -> None:
    every_user = read_users(warehouse)
    some = np.array(sorted(every_user)[::3], dtype=np.int64)
    users, tracks, counts = read_user_tracks(warehouse, some)
    all_users, all_tracks, all_counts = read_user_tracks(warehouse)
    wanted = np.isin(all_users, some)

    assert 0 < wanted.sum() < len(all_users)
    assert sorted(zip(users.tolist(), tracks.tolist(), counts.tolist(), strict=True)) == sorted(
        zip(
            all_users[wanted].tolist(),
            all_tracks[wanted].tolist(),
            all_counts[wanted].tolist(),
            strict=True,
        )
    )
    assert [array.dtype for array in (users, tracks, counts)] == [np.int64, np.int64, np.float32]
    assert read_users(warehouse, some) == {user: every_user[user] for user in some.tolist()}


def scoring_inputs(path: Path) -> dict[int, tuple]:
    """Each current user's favourite genre and (track, count) pairs, read in Python."""
    genres = dict(query(path, "select user_id, favorite_genre from marts.dim_users"))
    pairs: dict[int, set[tuple[int, int]]] = {user: set() for user in genres}
    for user, track, count in query(path, "select * from marts.fct_user_tracks"):
        pairs.setdefault(user, set()).add((track, count))
    return {user: (genres[user], frozenset(pairs[user])) for user in genres}


def test_the_scoring_inputs_hash_changes_exactly_for_the_users_whose_inputs_changed(
    warehouse: Path,
) -> None:
    listeners = sorted(
        {u for (u,) in query(warehouse, "select user_id from marts.fct_user_tracks")}
    )
    added, recounted, both, regenred = listeners[:4]
    with duckdb.connect(str(warehouse)) as connection:
        # users who signed up, no listens; a user who played two tracks once each
        connection.execute(
            "insert into marts.dim_users values (100001, 'Jazz'), (100002, 'Rock'), (100003, null)"
        )
        connection.execute(
            "update marts.fct_user_tracks set listen_count = 1 where user_id = ?", [both]
        )
    before_users, before = read_scoring_inputs(warehouse)
    inputs_before = scoring_inputs(warehouse)
    with duckdb.connect(str(warehouse)) as connection:
        connection.execute(
            "insert into marts.fct_user_tracks select ?, max(track_id) + 1, 1 "
            "from marts.fct_user_tracks",
            [added],
        )
        connection.execute(
            "update marts.fct_user_tracks set listen_count = listen_count + 1 where user_id = ? "
            "and track_id = (select min(track_id) from marts.fct_user_tracks where user_id = ?)",
            [recounted, recounted],
        )
        # played each of their tracks once more
        connection.execute(
            "update marts.fct_user_tracks set listen_count = 2 where user_id = ?", [both]
        )
        connection.execute(
            "update marts.dim_users set favorite_genre = 'Changed' where user_id in (?, ?)",
            [regenred, 100001],
        )
    after_users, after = read_scoring_inputs(warehouse)
    inputs_after = scoring_inputs(warehouse)
    changed = set(after_users[after != before].tolist())

    assert before_users.tolist() == after_users.tolist() == sorted(inputs_after)
    assert (before_users.dtype, before.dtype) == (np.int64, np.uint64)
    assert len(inputs_before[both][1]) > 1 and len(listeners) > 10
    assert changed == {u for u in inputs_after if inputs_after[u] != inputs_before[u]}
    assert changed == {added, recounted, both, regenred, 100001}
    # users with the same inputs hash the same, users with different inputs differently
    for users, hashes, inputs in (
        (before_users, before, inputs_before),
        (after_users, after, inputs_after),
    ):
        by_inputs = {inputs[int(u)]: set() for u in users}
        for user, value in zip(users.tolist(), hashes.tolist(), strict=True):
            by_inputs[inputs[user]].add(value)
        assert all(len(values) == 1 for values in by_inputs.values())
        assert len(set(hashes.tolist())) == len(by_inputs) > len(listeners)
    np.testing.assert_array_equal(read_scoring_inputs(warehouse)[1], after)


def test_scored_users_read_back_sorted_with_rows_they_do_not_account_for(
    warehouse: Path,
) -> None:
    tables = [recommendations([5, 2], 4, 0), recommendations([3], 4, 0)]
    scored = scored_for(tables)
    scored = scored.take(pa.array([2, 0, 1]))  # unsorted
    replace_recommendations(warehouse, tables, scored)
    read = read_scored_users(warehouse)

    assert read.user_ids.tolist() == [2, 3, 5] and read.user_ids.dtype == np.int64
    assert read.inputs_hashes.tolist() == [62, 93, 155] and read.inputs_hashes.dtype == np.uint64
    assert (read.model_versions, read.context_hashes, read.unrecorded_rows) == (
        frozenset({4}),
        frozenset({7}),
        0,
    )
    with duckdb.connect(str(warehouse)) as connection:
        connection.execute("update ml.recommendations set model_version = 9 where user_id = 3")
        connection.execute("update ml.scored_users set context_hash = 8 where user_id = 5")
    read = read_scored_users(warehouse)
    assert (read.context_hashes, read.unrecorded_rows) == (frozenset({7, 8}), 2)


def test_a_warehouse_built_before_scored_users_is_refused_for_scoring(warehouse: Path) -> None:
    with duckdb.connect(str(warehouse)) as connection:
        connection.execute("drop table ml.scored_users")
    with pytest.raises(RecommenderError) as refused:
        read_scored_users(warehouse)
    assert str(refused.value) == (
        f"{warehouse} has no ml.scored_users (added after this warehouse was built): run "
        "`dbt build` (make elt), whose create_ml_tables macro creates it"
    )


def test_replacing_some_users_keeps_everyone_else_s_rows(warehouse: Path) -> None:
    yesterday = [recommendations([1, 2, 3, 4], 4, 0)]
    replace_recommendations(warehouse, yesterday, scored_for(yesterday))
    tonight = [recommendations([2, 6], 4, 24)]
    # user 2 re-scored, user 6 new, user 3 gone (no rows tonight)
    written = replace_recommendations(warehouse, tonight, scored_for(tonight), np.array([2, 3, 6]))
    kept = [row for row in stored(warehouse) if row[0] in (1, 4)]

    assert written == 4
    assert stored(warehouse) == sorted(
        kept + [tuple(row.values()) for row in tonight[0].to_pylist()]
    )
    assert kept == sorted(
        tuple(row.values()) for row in yesterday[0].to_pylist() if row["user_id"] in (1, 4)
    )
    assert query(warehouse, "select user_id from ml.scored_users order by 1") == [
        (1,),
        (2,),
        (4,),
        (6,),
    ]
    # a night where only a user went: nothing staged, their rows go
    assert replace_recommendations(warehouse, [], scored_for([]), np.array([4])) == 0
    assert {row[0] for row in stored(warehouse)} == {1, 2, 6}
    assert query(warehouse, "select user_id from ml.scored_users order by 1") == [
        (1,),
        (2,),
        (6,),
    ]


def test_recommendations_are_staged_beside_the_warehouse_and_cleaned_up(
    warehouse: Path,
) -> None:
    """Staged on the warehouse's disk (the rows can be larger than the system's temp), in a
    hidden folder of their own, gone once written."""
    staged: list[list[Path]] = []

    def batches() -> Iterator[pa.Table]:
        yield recommendations([1], 4, 0)
        staged.append(sorted(warehouse.parent.glob(".recommendations-*/*")))
        yield recommendations([2], 4, 0)

    written = replace_recommendations(
        warehouse, batches(), scored_for([recommendations([1, 2], 4, 0)])
    )

    assert written == 4
    assert [[path.name for path in paths] for paths in staged] == [["recommendations.parquet"]]
    assert not list(warehouse.parent.glob(".recommendations-*"))
    assert len(stored(warehouse)) == 4


ROWS = "select * from ml.recommendations order by user_id, rank"


def scoring_settings(tmp_path: Path, warehouse: Path, **changes: object) -> Settings:
    return Settings(
        duckdb_path=warehouse, models_dir=tmp_path / "models", top_k=5, candidates={}, **changes
    )


def a_champion(
    warehouse: Path, folder: Path, model: Model, version: int, name: str = "pop"
) -> ModelVersion:
    model.save(folder)
    row = a_version(
        version, "champion", model_name=name, model_kind=model.kind, artifact_path=str(folder)
    )
    register(warehouse, row)
    return row


def rows_of(warehouse: Path) -> dict[int, list[tuple]]:
    by_user: dict[int, list[tuple]] = {}
    for row in query(warehouse, ROWS):
        by_user.setdefault(row[0], []).append(row)
    return by_user


def untimed(message: str, started: float) -> str:
    """The message without its closing "; 1.2 s", which must not exceed the time since
    `started` (time.monotonic())."""
    head, seconds = message.rsplit("; ", 1)
    assert re.fullmatch(r"\d+\.\d s", seconds), message
    assert float(seconds.removesuffix(" s")) <= time.monotonic() - started + 0.05, message
    return head


def test_scoring_re_scores_whom_and_what_changed(
    warehouse: Path, world: World, tmp_path: Path
) -> None:
    """On the tiny warehouse: refused, first, quiet and changed nights, then each reason to
    re-score everyone; the messages exactly."""
    model = Popularity({})
    model.fit(world_listens(world))
    a_champion(warehouse, tmp_path / "v1", model, 1)
    settings = scoring_settings(tmp_path, warehouse)
    users = sorted(read_users(warehouse))

    refused = score(settings, refused="a dbt test failed")
    assert (refused.scored, refused.render()) == (
        False,
        "a dbt test failed: no scoring on data that failed its checks; yesterday's "
        "recommendations stay (ml.recommendations is empty)",
    )
    steps: list[str] = []
    started = time.monotonic()
    first = score(settings, progress=steps.append)
    everyone = "everyone, because no previous scoring is recorded (ml.scored_users is empty)"
    assert first.everyone_because == everyone.removeprefix("everyone, because ")
    assert (first.users_rescored, first.users_kept, first.users_removed) == (len(users), 0, 0)
    assert first.rows_written == len(query(warehouse, ROWS)) == 5 * len(users)
    assert untimed(first.render(), started) == (
        f"Scored {5 * len(users):,} recommendations for {len(users):,} users ({everyone}) with "
        "champion v1 (pop); 0 cold-start rows; 0 users kept their recommendations, 0 gone "
        "users' removed"
    )
    assert steps == [
        "scoring: finding the users whose listens changed",
        f"scoring: {len(users):,} users: {everyone}",
        "scoring: reading users, catalogue and listens",
        f"scoring: {len(users):,} users",
    ]
    assert set(rows_of(warehouse)) == set(users)

    quiet_steps: list[str] = []
    quiet = score(settings, progress=quiet_steps.append)
    assert quiet.message == (
        "Nothing changed since the last scoring with champion v1 (pop): 0 users re-scored, "
        f"{len(users):,} kept their recommendations"
    )
    assert quiet_steps[-1] == f"scoring: {quiet.message}"
    assert (quiet.scored, quiet.users_kept, quiet.rows_written) == (True, len(users), 0)

    before = rows_of(warehouse)
    listened, gone = users[3], users[1]  # users[0], unchanged, is found at position 0
    top = before[listened][0][2]
    with duckdb.connect(str(warehouse)) as connection:
        connection.execute("insert into marts.fct_user_tracks values (?, ?, 1)", [listened, top])
        connection.execute("delete from marts.dim_users where user_id = ?", [gone])
        connection.execute("insert into marts.dim_users values (900001, null)")
    started = time.monotonic()
    night = score(settings)
    after = rows_of(warehouse)
    assert night.everyone_because is None
    assert (night.users_rescored, night.users_kept, night.users_removed) == (
        2,
        len(users) - 2,
        1,
    )
    assert untimed(night.message, started) == (
        "Scored 10 recommendations for 2 users (the users whose listens or favourite genre "
        "changed) with champion v1 (pop); 5 cold-start rows; "
        f"{len(users) - 2:,} users kept their recommendations, 1 gone users' removed"
    )
    assert set(after) == set(users) - {gone} | {900001}
    assert top not in {row[2] for row in after[listened]}
    assert {user: rows for user, rows in after.items() if user not in (listened, 900001)} == {
        user: rows for user, rows in before.items() if user not in (listened, gone)
    }

    # each user's ml.scored_users row says when their rows were generated
    assert query(
        warehouse,
        "select count(*) from ml.scored_users s join ml.recommendations r using (user_id) "
        "where s.scored_at <> r.generated_at",
    ) == [(0,)]
    # a night where a user only went: their rows go, nobody is scored
    with duckdb.connect(str(warehouse)) as connection:
        connection.execute("delete from marts.dim_users where user_id = ?", [users[5]])
    only_gone = score(settings)
    assert (only_gone.users_rescored, only_gone.users_removed) == (0, 1)
    assert users[5] not in rows_of(warehouse) and users[4] in rows_of(warehouse)

    def everyone_because(settings: Settings) -> str | None:
        report = score(settings)
        assert report.users_rescored == len(read_users(warehouse)) and report.users_kept == 0
        return report.everyone_because

    assert everyone_because(replace(settings, top_k=4)) == (
        "the champion's tracks in dim_tracks, their genres or top_k changed"
    )
    assert everyone_because(replace(settings, top_k=4, full_rescore=True)) == (
        "a full re-score was asked (recommender.full_rescore)"
    )
    with duckdb.connect(str(warehouse)) as connection:
        connection.execute(
            "update ml.recommendations set model_version = 9 where user_id = ?", [900001]
        )
    assert everyone_because(replace(settings, top_k=4)) == (
        "ml.recommendations holds 4 rows that ml.scored_users does not account for"
    )
    a_champion(warehouse, tmp_path / "v2", model, 2, "pop2")
    set_statuses(warehouse, {1: ("retired", "test")})
    assert everyone_because(replace(settings, top_k=4)) == "the champion changed (v1 -> v2)"
    with duckdb.connect(str(warehouse)) as connection:
        connection.execute(
            "update ml.scored_users set model_version = 1 where user_id = ?", [users[0]]
        )
    assert everyone_because(replace(settings, top_k=4)) == "the champion changed (v1, v2 -> v2)"
    assert query(warehouse, "select distinct model_version from ml.scored_users") == [(2,)]


def test_the_context_hash_follows_the_model_s_listed_tracks_their_genres_and_top_k(
    world: World,
) -> None:
    model = Popularity({})
    model.fit(world_listens(world))
    catalogue = world_catalogue(world)
    tracks = model.track_ids.tolist()
    other = max(catalogue) + 1
    base = context_hash(model, catalogue, 10)
    reordered = {t: list(reversed(genres)) for t, genres in reversed(catalogue.items())}

    assert context_hash(model, reordered, 10) == base
    assert context_hash(model, {**catalogue, other: ["New"]}, 10) == base  # not the model's
    changed = [
        context_hash(model, catalogue, 11),
        context_hash(model, {t: g for t, g in catalogue.items() if t != tracks[0]}, 10),
        context_hash(model, {**catalogue, tracks[-1]: [*catalogue[tracks[-1]], "New"]}, 10),
    ]
    assert len({base, *changed}) == 4
    assert all(-(2**63) <= value < 2**63 for value in (base, *changed))


def test_a_champion_scoring_cannot_trust_or_find_is_said(
    warehouse: Path, world: World, tmp_path: Path
) -> None:
    als = Als(
        {"factors": 4, "regularization": 0.1, "alpha": 1.0, "iterations": 2, "bm25_k1": 100.0,
         "bm25_b": 0.8, "random_state": 1}
    )  # fmt: skip
    als.fit(world_listens(world))
    a_champion(warehouse, tmp_path / "v1", als, 1, "als")
    (tmp_path / "v1" / "bm25.npz").unlink()  # saved before the statistics were kept
    settings = scoring_settings(tmp_path, warehouse)
    score(settings)
    report = score(settings)
    assert report.everyone_because == (
        "champion v1's artifact predates the BM25 statistics kept at training: its weighting "
        "uses every user's listens (retrain to score incrementally)"
    )
    assert report.users_rescored == len(read_users(warehouse))
    shutil.rmtree(tmp_path / "v1")
    with pytest.raises(RecommenderError) as missing:
        score(settings)
    assert str(missing.value) == (
        f"champion v1's artifact {tmp_path / 'v1'} is missing: run `python -m recommender "
        "train` to train and promote a new one"
    )


def test_with_no_champion_scoring_fails_and_says_to_train_first(
    warehouse: Path, tmp_path: Path
) -> None:
    steps: list[str] = []
    with pytest.raises(RecommenderError) as no_champion:
        score(scoring_settings(tmp_path, warehouse), progress=steps.append)
    assert str(no_champion.value) == (
        "no champion in ml.model_versions to score with: the nightly `training` step trains "
        "the first one (or run `make train`), then score"
    )
    assert steps == []  # it trained nothing
    assert model_versions(warehouse) == []
    assert recommendations_state(warehouse).rows == 0
