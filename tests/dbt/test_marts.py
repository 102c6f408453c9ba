"""The dbt models over two nights of the dev API: exact mart contents, features, listen events.

Every expectation is computed here, in Python, from the API's pages as read over HTTP (see
conftest.py); nothing is hard-coded from a previous run.
"""

from __future__ import annotations

import math
import shutil
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from core.dbt import TEST_KINDS
from tests.dbt.support import ApiDay, Warehouse, assert_ok, load_time, run_dbt
from tests.support import query

pytestmark = pytest.mark.dbt

GENRES = (
    "Rock", "Pop", "Hip Hop", "Jazz", "Electronic", "Classical", "Country", "Blues", "R&B",
    "Reggae", "Folk", "Metal", "Punk", "Funk", "Indie", "Alternative", "Techno",
)  # fmt: skip
# Every model raw can rebuild; fct_listen_events is the exception (full_refresh: false).
REBUILDABLE = (
    "staging.stg_moovitamix__users",
    "staging.stg_moovitamix__tracks",
    "staging.base_moovitamix__listen_history",
    "staging.stg_moovitamix__listen_history",
    "staging.stg_moovitamix__loads",
    "staging.stg_moovitamix__quarantined_records",
    "marts.dim_users",
    "marts.dim_tracks",
    "marts.fct_listens",
    "marts.fct_user_tracks",
    "features.user_features",
    "features.track_features",
    "features.user_genre_affinity",
    "staging.stg_moovitamix__track_changes",
    "intermediate.int_user_features",
    "intermediate.int_track_features",
    "marts.fct_track_similarities",
)
# the models incremental by user (macro users_changed_since) and the view over one of them
PER_USER_INCREMENTAL = (
    "marts.fct_user_tracks",
    "features.user_genre_affinity",
    "intermediate.int_user_features",
    "features.user_features",
)


# ---- the definitions, restated in Python --------------------------------------------------------


def normalise_genres(text: str) -> list[str]:
    """Split on commas, trim, title case (upper after any non-letter), drop empties and repeats."""
    genres: list[str] = []
    for part in text.split(","):
        lowered = part.strip().lower()
        if not lowered:
            continue
        title = "".join(
            char.upper() if index == 0 or not lowered[index - 1].isalpha() else char
            for index, char in enumerate(lowered)
        )
        if title not in genres:
            genres.append(title)
    return genres


def listens(day: ApiDay) -> dict[int, list[tuple[int, int]]]:
    """(position, track_id) of each current user's listens: non-null items of current users."""
    return {
        user_id: [
            (pos, track) for pos, track in enumerate(record["items"] or [], 1) if track is not None
        ]
        for user_id, record in day.listen_history.items()
        if user_id in day.users
    }


def genre_weights(day: ApiDay, user_listens: list[tuple[int, int]]) -> dict[str, float]:
    """Genre-weighted listens: a listen of a track with n genres adds 1/n to each."""
    weights: dict[str, float] = defaultdict(float)
    for _, track_id in user_listens:
        track = day.tracks.get(track_id)
        genres = normalise_genres(track["genres"]) if track else []
        for genre in genres:
            weights[genre] += 1 / len(genres)
    return dict(weights)


def whole_days(start: datetime, end: datetime) -> int:
    return math.floor((end - start).total_seconds() / 86400)


def table_rows(path: Path, table: str) -> list[tuple[Any, ...]]:
    return query(path, f"select * from {table}")


# ---- dbt ran clean ------------------------------------------------------------------------------


def test_both_builds_pass_every_model_and_error_level_test(warehouse: Warehouse) -> None:
    for build in (warehouse.first_build, warehouse.second_build):
        assert_ok(build)
    statuses = Counter(node.status for node in warehouse.first_build.nodes)
    # "no-op": the recommender's exposure, a node with nothing to run
    assert set(statuses) <= {"success", "pass", "warn", "no-op"}, statuses
    # the second night builds what day D+1 reaches (nightly/changes.py): every model that reads
    # users, tracks or listens, as all three changed; the views that read only the loads or the
    # (empty) quarantine, their tests, and the unit tests (of the SQL, unchanged since the first
    # build) are recorded as skipped
    second = warehouse.second_build
    assert {node.status for node in second.nodes} <= {"success", "pass", "warn", "no-op", "skipped"}
    skipped = [node for node in second.nodes if node.status == "skipped"]
    skipped_models = {node.name for node in skipped if node.resource_type == "model"}
    assert skipped_models <= {"stg_moovitamix__loads", "stg_moovitamix__quarantined_records"}
    assert all(n.resource_type in TEST_KINDS for n in skipped if n.name not in skipped_models)
    assert sum(node.status == "success" for node in second.nodes) >= 15
    assert warehouse.second_build.statuses()["assert_fct_listens_reconcile_with_raw"] == "pass"
    statuses = warehouse.first_build.statuses()
    for unit_test in (
        "test_stg_moovitamix__tracks_parses_durations",
        "test_stg_moovitamix__tracks_normalises_genres",
        "test_base_moovitamix__listen_history_keeps_each_users_latest_version",
        "test_stg_moovitamix__listen_history_counts_and_flags",
        "test_fct_listen_events_first_build",
        "test_fct_listen_events_incremental",
    ):
        assert statuses[unit_test] == "pass"
    assert statuses["assert_fct_listens_reconcile_with_raw"] == "pass"


def test_an_error_level_test_failure_fails_dbt(warehouse: Warehouse, tmp_path: Path) -> None:
    """A contract-breaking value makes the error-level test fail, and dbt exit non-zero."""
    broken = warehouse.copy(tmp_path)
    with duckdb.connect(str(broken)) as connection:
        connection.execute(
            "update raw.users set gender = 'Robot' where id = "
            "(select min(id) from raw.users where _dlt_valid_to is null)"
        )
    run = run_dbt(broken, tmp_path, "test", "--select", "stg_moovitamix__users")
    failed = {name for name, status in run.statuses().items() if status == "fail"}
    assert failed == {"stg_moovitamix__users_gender_in_contract_list"}, run.output
    assert run.returncode != 0
    with pytest.raises(AssertionError):
        assert_ok(run)


def test_source_freshness_tells_a_stale_pipeline(warehouse: Warehouse, tmp_path: Path) -> None:
    fresh_dir, stale_dir = tmp_path / "fresh", tmp_path / "stale"
    fresh_dir.mkdir()
    stale_dir.mkdir()
    fresh = run_dbt(warehouse.copy(fresh_dir), fresh_dir, "source", "freshness")
    assert fresh.returncode == 0, fresh.output
    assert {node.status for node in fresh.nodes} == {"pass"}
    stale = warehouse.copy(stale_dir)
    with duckdb.connect(str(stale)) as connection:
        connection.execute("update raw._dlt_loads set inserted_at = inserted_at - interval 3 day")
    run = run_dbt(stale, stale_dir, "source", "freshness")
    assert run.returncode != 0
    assert {node.status for node in run.nodes} == {"error"}


# ---- exact contents -----------------------------------------------------------------------------


def test_mart_row_counts_match_the_api(warehouse: Warehouse) -> None:
    day = warehouse.next_day
    current_listens = listens(day)
    pairs = {(user, track) for user, items in current_listens.items() for _, track in items}
    user_genres = {
        (user, genre)
        for user, items in current_listens.items()
        for genre in genre_weights(day, items)
    }
    expected = {
        "marts.dim_users": len(day.users),
        "marts.dim_tracks": len(day.tracks),
        "marts.fct_listens": sum(len(items) for items in current_listens.values()),
        "marts.fct_user_tracks": len(pairs),
        "features.user_features": len(day.users),
        "features.track_features": len(day.tracks),
        "features.user_genre_affinity": len(user_genres),
    }
    assert min(expected.values()) > 0, "every table should have rows on dev API data"
    actual = {
        table: query(warehouse.duckdb_file, f"select count(*) from {table}")[0][0]
        for table in expected
    }
    assert actual == expected


def test_fct_listens_holds_exactly_the_current_lists(warehouse: Warehouse) -> None:
    expected = {
        (user, position, track)
        for user, items in listens(warehouse.next_day).items()
        for position, track in items
    }
    assert expected, "two nights of the dev API hold listens"
    rows = query(
        warehouse.duckdb_file, "select user_id, listen_position, track_id from marts.fct_listens"
    )
    assert len(rows) == len(expected)
    assert set(rows) == expected


def test_fct_user_tracks_counts_listens_per_pair(warehouse: Warehouse) -> None:
    expected = Counter(
        (user, track) for user, items in listens(warehouse.next_day).items() for _, track in items
    )
    assert expected, "two nights of the dev API hold listens"
    rows = query(
        warehouse.duckdb_file, "select user_id, track_id, listen_count from marts.fct_user_tracks"
    )
    assert {(user, track): count for user, track, count in rows} == dict(expected)


def test_track_features_match_the_api(warehouse: Warehouse) -> None:
    day = warehouse.next_day
    listen_counts: Counter[int] = Counter()
    listeners: dict[int, set[int]] = defaultdict(set)
    for user, items in listens(day).items():
        for _, track in items:
            listen_counts[track] += 1
            listeners[track].add(user)
    rows = query(
        warehouse.duckdb_file,
        "select track_id, listen_count, distinct_listeners, popularity_rank, duration_seconds, "
        "genres from features.track_features",
    )
    for track_id, listen_count, distinct_listeners, rank, seconds, genres in rows:
        track = day.tracks[track_id]
        assert listen_count == listen_counts[track_id]
        assert distinct_listeners == len(listeners[track_id])
        assert rank == 1 + sum(
            1 for other in day.tracks if listen_counts[other] > listen_counts[track_id]
        )
        minutes, secs = track["duration"].split(":")
        assert seconds == int(minutes) * 60 + int(secs)
        assert genres == normalise_genres(track["genres"])


def test_a_hand_checked_users_features(warehouse: Warehouse) -> None:
    """The user with the most genres in their listens, every feature recomputed from the API."""
    day, before = warehouse.next_day, warehouse.day
    current_listens = listens(day)
    user_id = max(
        current_listens, key=lambda user: (len(genre_weights(day, current_listens[user])), -user)
    )
    user, items = day.users[user_id], current_listens[user_id]
    weights = genre_weights(day, items)
    total_weight = sum(weights.values())
    shares = {genre: weight / total_weight for genre, weight in weights.items()}
    [(as_of,)] = query(
        warehouse.duckdb_file,
        "select timezone('UTC', max(inserted_at)) from raw._dlt_loads where status = 0",
    )
    previous_length = (
        len(before.listen_history[user_id]["items"]) if user_id in before.listen_history else 0
    )
    last_new = load_time(
        warehouse.next_load_id if len(items) > previous_length else warehouse.load_id
    )

    [row] = query(
        warehouse.duckdb_file,
        "select favorite_genre, total_listens, distinct_tracks, distinct_artists, "
        "favorite_genre_listen_share, top_genre, genre_entropy_bits, days_since_signup, "
        "days_since_last_new_listen, as_of_at from features.user_features where user_id = ?",
        user_id,
    )
    assert len(shares) >= 2, "the hand-checked user should span several genres"
    assert row[0] == user["favorite_genres"]
    assert row[1] == len(items)
    assert row[2] == len({track for _, track in items})
    assert row[3] == len({day.tracks[track]["artist"] for _, track in items if track in day.tracks})
    assert row[4] == pytest.approx(shares.get(user["favorite_genres"], 0.0))
    assert row[5] == min(shares, key=lambda genre: (-round(weights[genre], 9), genre))
    assert row[6] == pytest.approx(-sum(p * math.log2(p) for p in shares.values()))
    assert row[7] == whole_days(datetime.fromisoformat(user["created_at"]), as_of)
    assert row[8] == whole_days(last_new, as_of)
    assert row[9] == as_of

    affinity = query(
        warehouse.duckdb_file,
        "select genre, weighted_listens, listen_share, is_favorite_genre "
        "from features.user_genre_affinity where user_id = ?",
        user_id,
    )
    assert {genre for genre, *_ in affinity} == set(shares)
    for genre, weighted, share, is_favorite in affinity:
        assert weighted == pytest.approx(weights[genre])
        assert share == pytest.approx(shares[genre])
        assert is_favorite == (genre == user["favorite_genres"])


# ---- over time ----------------------------------------------------------------------------------


def test_listen_events_record_exactly_the_new_listens_of_the_next_day(warehouse: Warehouse) -> None:
    before, after = warehouse.day, warehouse.next_day
    expected_new = set()
    for user_id, record in after.listen_history.items():
        seen = (
            len(before.listen_history[user_id]["items"] or [])
            if user_id in before.listen_history
            else 0
        )
        for position, track in enumerate(record["items"] or [], 1):
            if position > seen and track is not None:
                expected_new.add((user_id, position, track))
    assert expected_new, "the next day should bring new listens"

    rows = query(
        warehouse.duckdb_file,
        "select user_id, listen_position, track_id, first_seen_at "
        "from marts.fct_listen_events where first_seen_load_id = ?",
        warehouse.next_load_id,
    )
    assert {row[:3] for row in rows} == expected_new
    next_load_time = load_time(warehouse.next_load_id)
    assert all(abs((row[3] - next_load_time).total_seconds()) < 0.001 for row in rows)

    first_day = sum(
        sum(1 for track in record["items"] or [] if track is not None)
        for record in before.listen_history.values()
    )
    assert query(
        warehouse.duckdb_file,
        "select count(*) from marts.fct_listen_events where first_seen_load_id = ?",
        warehouse.load_id,
    ) == [(first_day,)]
    assert query(warehouse.duckdb_file, "select count(*) from marts.fct_listen_events") == [
        (first_day + len(expected_new),)
    ]


def test_since_yesterday_is_a_simple_query_on_fct_listens(warehouse: Warehouse) -> None:
    expected = {
        (user, position, track)
        for user, position, track in (
            (user, position, track)
            for user, items in listens(warehouse.next_day).items()
            for position, track in items
        )
        if position > len((warehouse.day.listen_history.get(user) or {"items": []})["items"] or [])
    }
    assert expected, "the next day should bring new listens"
    rows = query(
        warehouse.duckdb_file,
        "select user_id, listen_position, track_id from marts.fct_listens where first_seen_at > ?",
        load_time(warehouse.load_id),
    )
    assert set(rows) == expected


def test_null_track_ids_and_lists_are_dropped_and_counted(warehouse: Warehouse) -> None:
    """The nulls the API sends on day D + 1 leave the listens, and a warning counts them."""
    day = warehouse.next_day
    null_elements = sum(
        1
        for record in day.listen_history.values()
        for track in record["items"] or []
        if track is None
    )
    null_lists = [user for user, record in day.listen_history.items() if record["items"] is None]
    assert null_elements == 1
    assert len(null_lists) == 1
    [warning] = [
        node for node in warehouse.second_build.nodes if "null_track_ids_dropped" in node.unique_id
    ]
    assert (warning.status, warning.failures) == ("warn", null_elements)
    # the user whose list turned null keeps no listens in the marts, only in the permanent record
    assert query(
        warehouse.duckdb_file,
        "select count(*) from marts.fct_listens where user_id = ?",
        null_lists[0],
    ) == [(0,)]
    assert query(
        warehouse.duckdb_file,
        "select total_listens from features.user_features where user_id = ?",
        null_lists[0],
    ) == [(0,)]
    assert query(
        warehouse.duckdb_file,
        "select count(*) > 0 from marts.fct_listen_events where user_id = ?",
        null_lists[0],
    ) == [(True,)]


def test_deleted_users_leave_the_marts_but_not_the_listen_record(warehouse: Warehouse) -> None:
    deleted = set(warehouse.day.users) - set(warehouse.next_day.users)
    assert deleted, "the next day should delete a user upstream"
    placeholders = ", ".join("?" for _ in deleted)
    for table in (
        "marts.dim_users",
        "marts.fct_listens",
        "marts.fct_user_tracks",
        "features.user_features",
        "features.user_genre_affinity",
    ):
        assert query(
            warehouse.duckdb_file,
            f"select count(*) from {table} where user_id in ({placeholders})",
            *deleted,
        ) == [(0,)], table
    assert query(
        warehouse.duckdb_file,
        "select count(distinct user_id) from marts.fct_listen_events "
        f"where user_id in ({placeholders})",
        *deleted,
    ) == [(len(deleted),)]
    assert query(
        warehouse.duckdb_file,
        "select count(*) from staging.stg_moovitamix__listen_history "
        f"where is_deleted_upstream and user_id in ({placeholders})",
        *deleted,
    ) == [(len(deleted),)]


def test_incremental_build_equals_a_full_refresh(warehouse: Warehouse, tmp_path: Path) -> None:
    assert query(
        warehouse.duckdb_file,
        "select count(distinct first_seen_load_id) from marts.fct_listen_events",
    ) == [(2,)]
    rebuilt = warehouse.copy(tmp_path)
    run = run_dbt(rebuilt, tmp_path, "build", "--full-refresh")
    assert_ok(run)
    with duckdb.connect(":memory:") as connection:
        connection.execute(f"attach '{warehouse.duckdb_file}' as incremental (read_only)")
        connection.execute(f"attach '{rebuilt}' as rebuilt (read_only)")
        # the permanent record is left alone by --full-refresh (full_refresh: false)
        for table in (*REBUILDABLE, "marts.fct_listen_events"):
            differences = connection.execute(
                f"select count(*) from ("
                f"(select * from incremental.{table} except all select * from rebuilt.{table}) "
                f"union all "
                f"(select * from rebuilt.{table} except all select * from incremental.{table}))"
            ).fetchall()[0][0]
            assert differences == 0, table
            assert (
                connection.execute(f"select count(*) from rebuilt.{table}").fetchall()[0][0]
                == (
                    connection.execute(f"select count(*) from incremental.{table}").fetchall()[0][0]
                )
            )


def test_changed_and_retired_tracks_rebuild_their_listeners(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    """The per-user incremental models rebuild the users who play a track whose catalogue record
    changed, though their listens and user records did not: an incremental build after one
    track is retired and another gets new genres and artist equals a full rebuild."""
    incremental_dir, full_dir = tmp_path / "incremental", tmp_path / "full"
    incremental_dir.mkdir(), full_dir.mkdir()
    incremental = warehouse.copy(incremental_dir)
    with duckdb.connect(str(incremental)) as connection:
        # two tracks with genres that several current users play, none of them in a list that
        # this night's load would change (nothing is loaded: only the catalogue moves)
        retired, edited = (
            row[0]
            for row in connection.execute(
                "select track_id from marts.fct_user_tracks inner join marts.dim_tracks "
                "using (track_id) where len(genres) > 0 "
                "group by track_id order by count(*) desc, track_id limit 2"
            ).fetchall()
        )
        before = affinities(connection, retired, edited)
        connection.execute(
            "update raw.tracks set _dlt_valid_to = now() where id = ? and _dlt_valid_to is null",
            [retired],
        )
        connection.execute(
            "update raw.tracks set genres = 'Polka', artist = 'Someone Else', "
            "_dlt_valid_from = now() where id = ? and _dlt_valid_to is null",
            [edited],
        )
    full = full_dir / "warehouse.duckdb"
    shutil.copyfile(incremental, full)
    assert_ok(run_dbt(incremental, incremental_dir, "build"))
    assert_ok(run_dbt(full, full_dir, "build", "--full-refresh"))

    with duckdb.connect(":memory:") as connection:
        connection.execute(f"attach '{incremental}' as incremental (read_only)")
        connection.execute(f"attach '{full}' as rebuilt (read_only)")
        for table in PER_USER_INCREMENTAL:
            assert (
                connection.execute(
                    f"select count(*) from ("
                    f"(from incremental.{table} except all from rebuilt.{table}) union all "
                    f"(from rebuilt.{table} except all from incremental.{table}))"
                ).fetchone()[0]
                == 0
            ), table
        after = affinities(connection, retired, edited, database="incremental")
    # the listeners' genres moved: Polka arrived, the retired track's genres left
    assert before != after
    assert any(genre == "Polka" for _, genre, _ in after)


def test_an_incremental_build_tests_only_the_rows_of_changed_users(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    """The unique tests of per-user keys read, on an incremental build, only the users changed
    since the last build whose tests passed; a failure makes the next build read whole tables,
    as `dbt test` always does. fct_listens gets a duplicated listen of a player of a track
    whose catalogue record changed (a change fct_listens itself does not rebuild for), and one
    of a user who never played it: the build leaves both."""
    copy = warehouse.copy(tmp_path)
    test = "unique_combination_of_columns_fct_listens_user_id__listen_position"
    with duckdb.connect(str(copy)) as connection:
        last_load = connection.execute(
            "select max(timezone('UTC', inserted_at)) from raw._dlt_loads where status = 0"
        ).fetchone()[0]
        # the two builds of the fixture passed: the second one's newest load is kept
        assert connection.execute("from intermediate.dbt_tested_through").fetchall() == [
            (last_load,)
        ]
        track_id = connection.execute(
            "select min(track_id) from marts.fct_listens inner join raw.tracks on id = track_id "
            "where _dlt_valid_to is null"
        ).fetchone()[0]
        players = {
            row[0]
            for row in connection.execute(
                "select distinct user_id from marts.fct_listen_events where track_id = ?",
                [track_id],
            ).fetchall()
        }
        listeners = [
            row[0]
            for row in connection.execute(
                "select distinct user_id from marts.fct_listens order by user_id"
            ).fetchall()
        ]
        player = next(user for user in listeners if user in players)
        stranger = next(user for user in listeners if user not in players)
        for user_id in (player, stranger):
            connection.execute(
                "insert into marts.fct_listens select * from marts.fct_listens "
                "where user_id = ? order by listen_position limit 1",
                [user_id],
            )
        connection.execute(
            "update raw.tracks set artist = 'Someone Else', _dlt_valid_from = now() "
            "where id = ? and _dlt_valid_to is null",
            [track_id],
        )

    def failing_rows(*args: str) -> int:
        run = run_dbt(copy, tmp_path, *args)
        (node,) = [n for n in run.nodes if n.name.startswith(test)]
        assert node.status in ("pass", "fail"), node
        return node.failures or 0

    # the build reads the changed users' rows only: one duplicate, not two
    assert failing_rows("build") == 1
    assert {row[0] for row in query(copy, "from intermediate.int_users_to_test")} == players
    # a failed build is no longer the one tested through: the next one reads every row
    assert query(copy, "select count(*) from intermediate.dbt_tested_through") == [(0,)]
    assert failing_rows("build") == 2
    assert failing_rows("test", "--select", "fct_listens") == 2


def test_the_tested_through_time_moves_only_after_a_build_that_ran_the_key_tests(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    """A build of a few models reads whole tables (int_users_to_test is not rebuilt: its rows
    would be last build's users), and a build that left the key tests out does not count as
    having tested tonight's rows: only a build that ran and passed them moves the time."""
    copy = warehouse.copy(tmp_path)
    old_time = datetime(2000, 1, 1)
    with duckdb.connect(str(copy)) as connection:
        last_load = connection.execute(
            "select max(timezone('UTC', inserted_at)) from raw._dlt_loads where status = 0"
        ).fetchone()[0]
        user_id = connection.execute("select min(user_id) from marts.fct_listens").fetchone()[0]
        connection.execute(
            "insert into marts.fct_listens select * from marts.fct_listens "
            "where user_id = ? order by listen_position limit 1",
            [user_id],
        )
        connection.execute("delete from intermediate.int_users_to_test")
    test = "unique_combination_of_columns_fct_listens_user_id__listen_position"
    run = run_dbt(copy, tmp_path, "build", "--select", "fct_listens")
    assert [(n.status, n.failures) for n in run.nodes if n.name.startswith(test)] == [("fail", 1)]

    with duckdb.connect(str(copy)) as connection:
        connection.execute(
            "create or replace table marts.fct_listens as select distinct * from marts.fct_listens"
        )
        connection.execute("insert into intermediate.dbt_tested_through values (?)", [old_time])
    assert_ok(run_dbt(copy, tmp_path, "build", "--exclude-resource-type", "test"))
    assert query(copy, "from intermediate.dbt_tested_through") == [(old_time,)]
    assert_ok(run_dbt(copy, tmp_path, "build"))
    assert query(copy, "from intermediate.dbt_tested_through") == [(last_load,)]


def affinities(
    connection: duckdb.DuckDBPyConnection, *track_ids: int, database: str | None = None
) -> list[tuple]:
    """(user, genre, weighted listens) of every user who plays one of `track_ids`."""
    prefix = f"{database}." if database else ""
    return connection.execute(
        f"select user_id, genre, weighted_listens from {prefix}features.user_genre_affinity "
        f"where user_id in (select user_id from {prefix}marts.fct_user_tracks "
        f"where track_id in (select unnest(?))) order by all",
        [list(track_ids)],
    ).fetchall()
