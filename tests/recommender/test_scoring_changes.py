"""Scoring follows what changed: a night re-scores the users whose listens changed, and everyone
only when the champion changed.

On a copy of the built warehouse: a first scoring (after the first training) scores everyone; a
quiet night (the marts unchanged) scores nobody; then tonight's marts are edited as a night's dbt
build would change them (listens added, recounted and dropped, a favourite genre edited, a user
deleted, one signed up), and that night is compared row by row with yesterday's and with a full
re-score of the same data; finally another model version becomes champion.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import duckdb
import pytest

from recommender.scoring import ScoringReport, score
from recommender.settings import Settings
from recommender.training import train
from recommender.warehouse import champion, model_versions, set_statuses
from tests.recommender.conftest import TIME_SPLIT, BuiltWarehouse, settings_for
from tests.support import query

ROWS = (
    "select user_id, rank, track_id, score, model_version, is_cold_start, generated_at "
    "from ml.recommendations order by user_id, rank"
)


def rows_by_user(settings: Settings) -> dict[int, list[tuple]]:
    by_user: dict[int, list[tuple]] = {}
    for row in query(settings.duckdb_path, ROWS):
        by_user.setdefault(row[0], []).append(row)
    return by_user


def current_users(settings: Settings) -> set[int]:
    return {user for (user,) in query(settings.duckdb_path, "select user_id from marts.dim_users")}


# every model kind as champion: each must score a user from the model and their own inputs
CHAMPIONS = {"als": "als", "co_listen": "co_listen_tilted", "popularity": "popularity"}


@pytest.fixture(scope="module", params=sorted(CHAMPIONS))
def first(
    request: pytest.FixtureRequest,
    built_warehouse: BuiltWarehouse,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Settings, ScoringReport]:
    directory = tmp_path_factory.mktemp("scoring-changes")
    settings = settings_for(directory, built_warehouse.copy(directory), **TIME_SPLIT)
    if request.param == "popularity":  # the champion of a run where nothing passes the gate
        train(replace(settings, promotion_margin=100.0))
    else:
        train(settings)
        make_champion(settings, CHAMPIONS[request.param])
    assert champion(settings.duckdb_path).model_name == CHAMPIONS[request.param]
    return settings, score(settings)


def make_champion(settings: Settings, model_name: str) -> tuple[int, int]:
    """The latest version named `model_name` becomes champion; (old, new) versions."""
    old = champion(settings.duckdb_path)
    assert old is not None
    [*_, new] = [v for v in model_versions(settings.duckdb_path) if v.model_name == model_name]
    if new.model_version != old.model_version:
        set_statuses(
            settings.duckdb_path,
            {
                old.model_version: ("retired", "replaced in a test"),
                new.model_version: ("champion", "promoted in a test"),
            },
        )
    return old.model_version, new.model_version


def test_the_first_scoring_scores_everyone_because_nothing_was_scored_before(
    first: tuple[Settings, ScoringReport],
) -> None:
    settings, report = first
    assert report.everyone_because is not None
    assert "no previous scoring" in report.everyone_because
    assert report.users_rescored == len(current_users(settings)) > 0
    assert report.users_kept == 0
    assert set(rows_by_user(settings)) == current_users(settings)


def test_a_quiet_night_scores_nobody_and_leaves_every_row_as_it_was(
    first: tuple[Settings, ScoringReport],
) -> None:
    settings, _ = first
    before = query(settings.duckdb_path, ROWS)
    steps: list[str] = []
    quiet = score(settings, progress=steps.append)
    assert quiet.scored
    assert quiet.users_rescored == 0 and quiet.rows_written == 0
    assert quiet.users_kept == len(current_users(settings))
    assert "0 users re-scored" in quiet.message
    assert "0 users re-scored" in steps[-1]
    assert query(settings.duckdb_path, ROWS) == before


def edit_tonights_marts(settings: Settings, before: dict[int, list[tuple]]) -> dict[str, int]:
    """Change some users' inputs as a night's build would; the users, by what changed."""
    listeners = sorted(
        user for (user,) in query(settings.duckdb_path, "select user_id from marts.fct_user_tracks")
    )
    cold = sorted(set(before) - set(listeners))
    users = {
        "new listen": listeners[0],
        "recounted": listeners[10],
        "dropped listen": listeners[20],
        "genre edited": cold[0],
        "deleted": listeners[30],
        "signed up": max(before) + 1,
    }
    with duckdb.connect(str(settings.duckdb_path)) as connection:
        # the user listens to their top recommendation: it can no longer be recommended
        top_track = before[users["new listen"]][0][2]
        connection.execute(
            "insert into marts.fct_user_tracks (user_id, track_id, listen_count) values (?, ?, 1)",
            [users["new listen"], top_track],
        )
        connection.execute(
            "update marts.fct_user_tracks set listen_count = listen_count + 3 "
            "where user_id = ? and track_id = (select min(track_id) from marts.fct_user_tracks "
            "where user_id = ?)",
            [users["recounted"]] * 2,
        )
        connection.execute(
            "delete from marts.fct_user_tracks where user_id = ? and track_id = (select "
            "max(track_id) from marts.fct_user_tracks where user_id = ?)",
            [users["dropped listen"]] * 2,
        )
        connection.execute(
            "update marts.dim_users set favorite_genre = (select min(g) from "
            "(select unnest(genres) as g from marts.dim_tracks) where g <> favorite_genre) "
            "where user_id = ?",
            [users["genre edited"]],
        )
        for table in ("fct_user_tracks", "dim_users"):
            connection.execute(f"delete from marts.{table} where user_id = ?", [users["deleted"]])
        connection.execute(
            "insert into marts.dim_users (user_id, favorite_genre) "
            "select ?, favorite_genre from marts.dim_users where user_id = ?",
            [users["signed up"], users["genre edited"]],
        )
    return users


@pytest.fixture(scope="module")
def changed_night(
    first: tuple[Settings, ScoringReport],
) -> tuple[Settings, dict[int, list[tuple]], dict[str, int], ScoringReport]:
    settings, _ = first
    before = rows_by_user(settings)
    users = edit_tonights_marts(settings, before)
    return settings, before, users, score(settings)


def test_a_night_re_scores_exactly_the_users_whose_listens_changed(
    changed_night: tuple[Settings, dict[int, list[tuple]], dict[str, int], ScoringReport],
) -> None:
    settings, before, users, report = changed_night
    after = rows_by_user(settings)
    rescored = {users[what] for what in users if what != "deleted"}
    assert report.everyone_because is None
    assert report.users_rescored == len(rescored)
    assert report.users_removed == 1
    assert report.users_kept == len(current_users(settings)) - len(rescored)
    assert set(after) == current_users(settings)
    assert users["deleted"] not in after
    # everyone else's rows are exactly yesterday's, generated_at included
    for user in set(after) - rescored:
        assert after[user] == before[user]
    # the re-scored users' rows are tonight's
    night = {row[6] for user in rescored for row in after[user]}
    assert len(night) == 1 and night.isdisjoint(
        {row[6] for rows in before.values() for row in rows}
    )
    top_track = before[users["new listen"]][0][2]
    assert top_track not in {row[2] for row in after[users["new listen"]]}
    assert {row[5] for row in after[users["signed up"]]} == {True}
    assert query(
        settings.duckdb_path,
        "select count(*) from ml.scored_users full join marts.dim_users using (user_id) "
        "where scored_users.user_id is null or dim_users.user_id is null",
    ) == [(0,)]


def test_the_changed_night_equals_a_full_re_score_of_the_same_data(
    changed_night: tuple[Settings, dict[int, list[tuple]], dict[str, int], ScoringReport],
    tmp_path: Path,
) -> None:
    settings, *_ = changed_night
    copy = tmp_path / "full.duckdb"
    shutil.copyfile(settings.duckdb_path, copy)
    full = score(replace(settings, duckdb_path=copy, full_rescore=True))
    assert full.everyone_because == "a full re-score was asked (recommender.full_rescore)"
    assert full.users_rescored == len(current_users(settings))
    contents = (
        "select user_id, rank, track_id, score, model_version, is_cold_start "
        "from ml.recommendations order by user_id, rank"
    )
    assert query(copy, contents) == query(settings.duckdb_path, contents)


def test_a_new_champion_re_scores_everyone(
    changed_night: tuple[Settings, dict[int, list[tuple]], dict[str, int], ScoringReport],
) -> None:
    settings, *_ = changed_night
    old, new = make_champion(settings, "co_listen")  # the baseline, registered by every run
    report = score(settings)
    assert report.everyone_because == f"the champion changed (v{old} -> v{new})"
    assert report.users_rescored == len(current_users(settings))
    assert report.users_kept == 0
    for table in ("recommendations", "scored_users"):
        assert query(settings.duckdb_path, f"select distinct model_version from ml.{table}") == [
            (new,)
        ]
