"""Nightly scoring on a built warehouse: what lands in ml.recommendations, row by row.

The module trains once (a fresh warehouse: the first training run picks the champion, on a
time split, so the champion's training listens are exactly day 0's), scores once and checks the
rows against the marts with SQL of its own.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from recommender.models import load
from recommender.scoring import recommendations_table, score
from recommender.settings import Settings
from recommender.training import train
from recommender.warehouse import ModelVersion, champion, replace_recommendations
from tests.recommender.conftest import TIME_SPLIT, BuiltWarehouse, settings_for
from tests.support import query


@pytest.fixture(scope="module")
def scored(
    built_warehouse: BuiltWarehouse, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Settings, ModelVersion]:
    directory = tmp_path_factory.mktemp("scoring")
    settings = settings_for(directory, built_warehouse.copy(directory), **TIME_SPLIT)
    train(settings)
    steps: list[str] = []
    report = score(settings, progress=steps.append)
    assert report.scored
    # the callback heard each sub-step of scoring (and none of training's: scoring never
    # trains), ending with its number of users
    [(users,)] = query(settings.duckdb_path, "select count(*) from marts.dim_users")
    assert steps[0] == "scoring: finding the users whose listens changed"
    assert not [step for step in steps if step.startswith("training")]
    assert steps[-2:] == [
        "scoring: reading users, catalogue and listens",
        f"scoring: {users:,} users",
    ]
    version = champion(settings.duckdb_path)
    assert version is not None
    return settings, version


def recommendations(settings: Settings) -> list[tuple]:
    return query(
        settings.duckdb_path,
        "select user_id, rank, track_id, score, model_version, is_cold_start, generated_at "
        "from ml.recommendations order by user_id, rank",
    )


def test_every_current_user_gets_one_row_per_rank_up_to_top_k(
    scored: tuple[Settings, ModelVersion],
) -> None:
    settings, _ = scored
    ranks: dict[int, list[int]] = defaultdict(list)
    for user_id, rank, *_ in recommendations(settings):
        ranks[user_id].append(rank)
    current_users = {
        user for (user,) in query(settings.duckdb_path, "select user_id from marts.dim_users")
    }
    assert set(ranks) == current_users
    for user_ranks in ranks.values():
        assert user_ranks == list(range(1, len(user_ranks) + 1))
        assert len(user_ranks) <= settings.top_k
    listeners = {
        user for (user,) in query(settings.duckdb_path, "select user_id from marts.fct_user_tracks")
    }
    assert all(len(ranks[user]) == settings.top_k for user in listeners)


def test_recommendations_never_hold_a_played_track_nor_one_outside_the_catalogue(
    scored: tuple[Settings, ModelVersion],
) -> None:
    settings, _ = scored
    assert query(
        settings.duckdb_path,
        "select count(*) from ml.recommendations "
        "inner join marts.fct_user_tracks using (user_id, track_id)",
    ) == [(0,)]
    assert query(
        settings.duckdb_path,
        "select count(*) from ml.recommendations "
        "where track_id not in (select track_id from marts.dim_tracks)",
    ) == [(0,)]


def test_listeners_get_the_champion_and_scores_fall_with_rank(
    scored: tuple[Settings, ModelVersion],
) -> None:
    settings, version = scored
    rows = recommendations(settings)
    assert {row[4] for row in rows} == {version.model_version}
    assert len({row[6] for row in rows}) == 1  # one generated_at for the night
    by_user: dict[int, list[tuple]] = defaultdict(list)
    for row in rows:
        by_user[row[0]].append(row)
    listeners = {
        user for (user,) in query(settings.duckdb_path, "select user_id from marts.fct_user_tracks")
    }
    for user, user_rows in by_user.items():
        assert {row[5] for row in user_rows} == {user not in listeners}
        scores = [row[3] for row in user_rows]
        assert scores == sorted(scores, reverse=True)


def test_users_without_listens_get_the_most_listened_tracks_of_their_favourite_genre(
    scored: tuple[Settings, ModelVersion],
) -> None:
    settings, version = scored
    cold_users = query(
        settings.duckdb_path,
        "select user_id, favorite_genre from marts.dim_users "
        "where user_id not in (select user_id from marts.fct_user_tracks) order by user_id",
    )
    assert len(cold_users) == 3  # one null listen list per faulted page
    for user_id, genre in cold_users:
        # the champion's training listens are those first seen before its holdout began
        expected = query(
            settings.duckdb_path,
            "with listeners as ("
            "  select track_id, count(distinct user_id) as listeners "
            "  from marts.fct_listen_events where first_seen_at < ? group by track_id) "
            "select track_id, listeners from listeners "
            "inner join marts.dim_tracks using (track_id) "
            "where list_contains(genres, ?) order by listeners desc, track_id limit ?",
            version.holdout_start_at,
            genre,
            settings.top_k,
        )
        got = query(
            settings.duckdb_path,
            "select track_id, score from ml.recommendations "
            "where user_id = ? and is_cold_start order by rank",
            user_id,
        )
        assert got == [(track, float(listeners)) for track, listeners in expected]
        assert got


def test_a_champion_loaded_by_version_reproduces_its_recommendations(
    scored: tuple[Settings, ModelVersion],
) -> None:
    settings, version = scored
    model = load(Path(version.artifact_path))
    again = recommendations_table(model, version.model_version, settings)
    rows = sorted(
        zip(
            *(again[column].to_pylist() for column in ("user_id", "rank", "track_id", "score")),
            strict=True,
        )
    )
    assert rows == [row[:4] for row in recommendations(settings)]


def test_a_replacement_that_fails_leaves_the_previous_rows_whole(
    scored: tuple[Settings, ModelVersion],
) -> None:
    settings, version = scored
    before = recommendations(settings)
    broken = pa.table(
        {
            "user_id": [1, 2],
            "rank": pa.array([1, 1], pa.int32()),
            "track_id": [10, None],  # violates not null after the delete ran
            "score": [1.0, 1.0],
            "model_version": [version.model_version] * 2,
            "is_cold_start": [False, False],
            "generated_at": pa.array([0, 0], pa.timestamp("us")),
        }
    )
    scored = pa.table(
        {
            "user_id": [1, 2],
            "model_version": [version.model_version] * 2,
            "inputs_hash": pa.array([0, 0], pa.uint64()),
            "context_hash": [0, 0],
            "scored_at": pa.array([0, 0], pa.timestamp("us")),
        }
    )
    with pytest.raises(Exception, match="NOT NULL"):
        replace_recommendations(settings.duckdb_path, [broken.slice(0, 1), broken], scored)
    assert recommendations(settings) == before

    def failing_midway() -> Iterator[pa.Table]:
        yield broken.slice(0, 1)  # written inside the transaction, then the scoring fails
        raise RuntimeError("scoring failed after the first batch")

    with pytest.raises(RuntimeError, match="after the first batch"):
        replace_recommendations(settings.duckdb_path, failing_midway(), scored)
    assert recommendations(settings) == before


def test_the_analyst_mart_names_every_recommended_track(
    scored: tuple[Settings, ModelVersion],
) -> None:
    settings, version = scored
    assert query(
        settings.duckdb_path,
        "select count(*), count(track_name), count(artist_name), min(model_name), "
        "max(model_name) from marts.fct_recommendations",
    ) == [(len(recommendations(settings)),) * 3 + (version.model_name, version.model_name)]
    assert query(
        settings.duckdb_path,
        "select count(*) from marts.fct_recommendations "
        "inner join marts.dim_tracks using (track_id) "
        "where fct_recommendations.track_name is distinct from dim_tracks.track_name",
    ) == [(0,)]
