"""The extractor against the dev API over real HTTP: exact loads, day-to-day changes, history."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import dlt

from dev_api.server import running_api
from dev_api.world import World
from extract.pipeline import run_extraction
from tests.support import query

WORLD = {"users": 1000, "tracks": 150, "listens": 8, "seed": 7}


def current_ids(path: Path, table: str, key: str = "id") -> set[int]:
    rows = query(path, f"select {key} from raw.{table} where _dlt_valid_to is null")
    return {row[0] for row in rows}


def test_day_zero_loads_every_record_exactly_once(
    pipeline: dlt.Pipeline, duckdb_path: Path
) -> None:
    with running_api(**WORLD) as api:
        summary = run_extraction(pipeline, api.url)
        world = api.world

    for table, key in (("users", "id"), ("tracks", "id"), ("listen_history", "user_id")):
        assert query(duckdb_path, f"select count(*), count(distinct {key}) from raw.{table}") == [
            (world.total(table), world.total(table))
        ]
    assert [(t.endpoint, t.read, t.new) for t in summary.tables] == [
        ("users", 1000, 1000),
        ("tracks", 150, 150),
        ("listen_history", 1000, 1000),
    ]
    first = world.page("listen_history", 1, 1)[0]
    [(items,)] = query(
        duckdb_path,
        "select items::bigint[] from raw.listen_history where user_id = ?",
        first["user_id"],
    )
    assert items == first["items"]
    [(created_at, type_name)] = query(
        duckdb_path,
        "select created_at, typeof(created_at) from raw.users where id = ?",
        world.page("users", 1, 1)[0]["id"],
    )
    assert type_name == "TIMESTAMP WITH TIME ZONE"
    assert created_at.replace(tzinfo=None) == datetime.fromisoformat(
        world.page("users", 1, 1)[0]["created_at"]
    )


def test_next_day_versions_exactly_the_changes_and_a_rerun_writes_nothing(
    pipeline: dlt.Pipeline, duckdb_path: Path
) -> None:
    with running_api(**WORLD, day=0) as api:
        run_extraction(pipeline, api.url)
        day0_users = {r["id"]: r for r in api.world.records("users")}
        api.set_day(1)
        day1 = run_extraction(pipeline, api.url)
        day1_users = {r["id"]: r for r in api.world.records("users")}
        rerun = run_extraction(pipeline, api.url)

    changed = {i for i in day0_users.keys() & day1_users.keys() if day0_users[i] != day1_users[i]}
    signed_up = day1_users.keys() - day0_users.keys()
    deleted = day0_users.keys() - day1_users.keys()
    assert changed and signed_up and deleted, (
        "the dev API's day 1 should edit, add and delete users"
    )
    users = day1.tables[0]
    assert (users.new, users.changed, users.retired) == (len(signed_up), len(changed), len(deleted))
    assert current_ids(duckdb_path, "users") == day1_users.keys()
    assert query(duckdb_path, "select count(*) from raw.users") == [
        (1000 + len(signed_up) + len(changed),)
    ]
    retired = query(
        duckdb_path, "select distinct id from raw.users where _dlt_valid_to is not null"
    )
    assert {row[0] for row in retired} == changed | deleted
    # A record whose updated_at is older than the newest seen on day 0 still lands.
    newest_day0 = max(r["updated_at"] for r in day0_users.values())
    late = [i for i in changed | signed_up if day1_users[i]["updated_at"] < newest_day0]
    assert late, "the dev API should serve late-arriving edits"
    assert set(late) <= current_ids(duckdb_path, "users")
    assert [(t.new, t.changed, t.retired) for t in rerun.tables] == [(0, 0, 0)] * 3


def test_listen_lists_are_stored_once_per_user(pipeline: dlt.Pipeline, duckdb_path: Path) -> None:
    with running_api(**WORLD, day=0) as api:
        for day in range(4):
            api.set_day(day)
            run_extraction(pipeline, api.url)
        live = {r["user_id"]: r["items"] for r in api.world.records("listen_history")}

    stored = query(
        duckdb_path,
        "select user_id, items::bigint[] from raw.listen_history where _dlt_valid_to is null",
    )
    assert dict(stored) == live
    [(versions, lists_kept, superseded_with_list)] = query(
        duckdb_path,
        """
        select count(*), count(items),
            count(*) filter (where items is not null and exists (
                select 1 from raw.listen_history as newer
                where newer.user_id = listen_history.user_id
                  and newer._dlt_valid_from > listen_history._dlt_valid_from))
        from raw.listen_history
        """,
    )
    assert versions > lists_kept, "users who listened over four nights have several versions"
    assert superseded_with_list == 0
    [(users_ever,)] = query(duckdb_path, "select count(distinct user_id) from raw.listen_history")
    assert lists_kept == users_ever


class ReplacedFirstList(World):
    """From day 1, the first listen list is served reversed: replaced, not extended (as when the
    real service restarts and regenerates its data)."""

    def page(self, endpoint, page, size, day=None):  # type: ignore[no-untyped-def]
        records = super().page(endpoint, page, size, day)
        if endpoint == "listen_history" and page == 1 and (self.day if day is None else day) >= 1:
            records[0] = {**records[0], "items": list(reversed(records[0]["items"]))}
        return records


def test_a_list_the_api_replaced_is_kept_not_pruned(
    pipeline: dlt.Pipeline, duckdb_path: Path
) -> None:
    with running_api(ReplacedFirstList(**WORLD)) as api:
        run_extraction(pipeline, api.url)
        replaced_user = api.world.page("listen_history", 1, 1)[0]["user_id"]
        day0_list = api.world.page("listen_history", 1, 1)[0]["items"]
        api.set_day(1)
        run_extraction(pipeline, api.url)
        day1_list = api.world.page("listen_history", 1, 1)[0]["items"]

    versions = query(
        duckdb_path,
        "select items::bigint[], _dlt_valid_to is null from raw.listen_history "
        "where user_id = ? order by _dlt_valid_from",
        replaced_user,
    )
    assert day1_list[: len(day0_list)] != day0_list
    assert versions == [(day0_list, False), (day1_list, True)]
    [(superseded_with_list,)] = query(
        duckdb_path,
        """select count(*) from raw.listen_history as old
        where old.items is not null and old.user_id <> ? and exists (
            select 1 from raw.listen_history as newer
            where newer.user_id = old.user_id and newer._dlt_valid_from > old._dlt_valid_from)""",
        replaced_user,
    )
    assert superseded_with_list == 0, "lists that were only extended are pruned as before"
