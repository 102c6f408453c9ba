"""The dev API's data: deterministic, exact on day 0, realistic day-to-day evolution and taste."""

from collections import Counter
from math import ceil
from typing import Any

import orjson
import pytest

from dev_api import World, running_api
from dev_api.world import ENDPOINTS, GENRES, MAX_DAY


def serialised_pages(world: World, day: int) -> list[bytes]:
    return [
        orjson.dumps(world.page(endpoint, page, 100, day))
        for endpoint in ENDPOINTS
        for page in (1, 5, 10)
    ]


def by_key(records: list[dict[str, Any]], key: str = "id") -> dict[int, dict[str, Any]]:
    return {record[key]: record for record in records}


def test_same_arguments_give_identical_pages_and_another_seed_differs() -> None:
    first, again, other_seed = World(seed=7), World(seed=7), World(seed=8)
    assert serialised_pages(first, 3) == serialised_pages(again, 3)
    assert all(
        a != b
        for a, b in zip(serialised_pages(first, 3), serialised_pages(other_seed, 3), strict=True)
    )


def test_restarted_server_serves_byte_identical_pages(client_for: Any) -> None:
    bodies = []
    for _ in range(2):
        with running_api(users=120, tracks=80, listens=5, day=4) as api:
            bodies.append(
                [
                    client_for(api.url).get(f"/{endpoint}?page=2&size=50").body
                    for endpoint in ENDPOINTS
                ]
            )
    assert bodies[0] == bodies[1]


def test_day_zero_serves_exactly_the_requested_sizes() -> None:
    world = World(users=250, tracks=40, listens=7)
    assert [world.total(endpoint) for endpoint in ENDPOINTS] == [250, 40, 250]
    histories = list(world.records("listen_history"))
    assert len(histories) == 250 and {len(history["items"]) for history in histories} == {7}
    assert (
        max(record["updated_at"] for endpoint in ENDPOINTS for record in world.records(endpoint))
        < "2026-01-01"
    )


def test_pages_of_any_size_tile_the_data_set(client_for: Any) -> None:
    with running_api(users=100, tracks=30, listens=3) as api:
        client = client_for(api.url)
        last = client.get_json("/users?page=15&size=7")
        assert (last["total"], last["pages"], len(last["items"])) == (
            100,
            ceil(100 / 7),
            100 - 14 * 7,
        )
        assert (
            client.read_all("users", size=7)
            == client.read_all("users", size=100)
            == list(api.world.records("users"))
        )
        assert client.get_json("/users?page=16&size=7")["items"] == []


def test_pages_tile_the_users_after_many_deletions() -> None:
    world = World(users=500, tracks=50, listens=2, day=200)
    everyone = world.keys("users")
    assert (
        len(everyone) == len(set(everyone)) == world.total("users") == world.total("listen_history")
    )
    assert len(world.deleted_user_ids(0, 200)) > 100
    pages = range(1, ceil(len(everyone) / 7) + 2)
    assert [user["id"] for page in pages for user in world.page("users", page, 7)] == everyone


def test_one_night_of_change_over_http(client_for: Any) -> None:
    with running_api() as api:
        client = client_for(api.url)
        day0 = {endpoint: client.read_all(endpoint) for endpoint in ENDPOINTS}
        api.set_day(1)
        day1 = {endpoint: client.read_all(endpoint) for endpoint in ENDPOINTS}
    world = api.world
    users0, users1 = by_key(day0["users"]), by_key(day1["users"])
    signed_up, deleted = users1.keys() - users0.keys(), users0.keys() - users1.keys()
    edited = {id_ for id_ in users0.keys() & users1.keys() if users0[id_] != users1[id_]}
    assert signed_up and deleted and edited
    assert len(users1) == 1000 + len(signed_up) - len(deleted) == world.total("users", 1)
    assert deleted == world.deleted_user_ids(0, 1)
    assert signed_up | edited == world.changed_keys("users", 1)
    assert all(users1[id_]["updated_at"] != users0[id_]["updated_at"] for id_ in edited)
    # New tracks are appended after the existing ones.
    assert len(day1["tracks"]) > 1000 and day1["tracks"][:1000] == day0["tracks"]

    histories0, histories1 = (
        by_key(day0["listen_history"], "user_id"),
        by_key(day1["listen_history"], "user_id"),
    )
    assert list(histories1) == list(users1)  # deleted users vanish from both endpoints
    for user_id in users0.keys() & users1.keys():
        before, after = histories0[user_id]["items"], histories1[user_id]["items"]
        assert after[: len(before)] == before  # append-only
    grown = {
        user_id
        for user_id in users0.keys() & users1.keys()
        if histories1[user_id] != histories0[user_id]
    }
    assert 0.2 < len(grown) / len(users1) < 0.4  # roughly 30% of users listen each day
    assert grown | signed_up == world.changed_keys("listen_history", 1)
    appended = sum(len(history["items"]) for history in day1["listen_history"]) - sum(
        len(histories0[user_id]["items"]) for user_id in users0.keys() & users1.keys()
    )
    assert appended == world.new_listen_count(1)

    # Late arrivals: some of the night's changes carry an updated_at older than all of day 0's.
    watermark = max(record["updated_at"] for records in day0.values() for record in records)
    changed = [histories1[user_id] for user_id in grown] + [
        users1[id_] for id_ in edited | signed_up
    ]
    assert any(record["updated_at"] < watermark for record in changed)
    assert any(record["updated_at"] > watermark for record in changed)


def test_a_month_of_days_only_appends_and_deletes() -> None:
    world = World(users=400, tracks=200, listens=5)
    day10 = by_key(list(world.records("listen_history", 10)), "user_id")
    day30 = by_key(list(world.records("listen_history", 30)), "user_id")
    users10, users30 = (
        by_key(list(world.records("users", 10))),
        by_key(list(world.records("users", 30))),
    )
    assert day10.keys() == users10.keys() and day30.keys() == users30.keys()
    assert world.deleted_user_ids(10, 30) == users10.keys() - users30.keys() != set()
    gone_by_day10 = set(world.keys("users", 0)) - users10.keys()
    assert gone_by_day10 and not gone_by_day10 & users30.keys()  # deleted users never come back
    for user_id in day10.keys() & day30.keys():
        assert day30[user_id]["items"][: len(day10[user_id]["items"])] == day10[user_id]["items"]
        assert day30[user_id]["updated_at"] >= day10[user_id]["updated_at"]
        assert users30[user_id]["updated_at"] >= users10[user_id]["updated_at"]
    # +0.5%/day sign-ups, -0.2%/day deletions
    assert 400 * 1.05 < world.total("users", 30) < 400 * 1.2
    assert world.total("tracks", 30) > world.total("tracks", 10) > 200


def test_listens_only_pick_tracks_that_exist_that_day() -> None:
    world = World(users=300, tracks=50, listens=3)
    for day in (0, 20, 60):
        existing = set(world.keys("tracks", day))
        assert {
            item for history in world.records("listen_history", day) for item in history["items"]
        } <= existing


def test_quirks_of_the_real_service_are_present() -> None:
    world = World()
    for endpoint in ("users", "tracks"):
        quirky = [
            record
            for record in world.records(endpoint)
            if record["updated_at"] < record["created_at"]
        ]
        assert 0 < len(quirky) < 100
    genre_labels = Counter(
        "two" if ", " in track["genres"] else "known" if track["genres"] in GENRES else "free"
        for track in world.records("tracks")
    )
    assert 20 <= genre_labels["two"] <= 90 and 5 <= genre_labels["free"] <= 40


def test_listening_is_skewed_towards_hits_and_favourite_genres(client: Any) -> None:
    users = by_key(client.read_all("users"))
    tracks = by_key(client.read_all("tracks"))
    listens = [
        (history["user_id"], item)
        for history in client.read_all("listen_history")
        for item in history["items"]
    ]
    plays = Counter(item for _, item in listens)
    top_share = sum(count for _, count in plays.most_common(len(tracks) // 100)) / len(listens)
    assert top_share > 0.1  # the top 1% of tracks takes over 10x its uniform share
    in_favourite = sum(
        users[user_id]["favorite_genres"] in tracks[item]["genres"].split(", ")
        for user_id, item in listens
    )
    assert 0.7 < in_favourite / len(listens) < 0.9


def test_listen_probabilities_are_the_ground_truth() -> None:
    world = World(users=3000, tracks=300, listens=20)
    users = [user["id"] for user in world.records("users")]
    # Users sharing a taste (favourite genre and hidden community) share the distribution; the
    # pooled listens of the largest community follow it.
    tastes = {user_id: world.taste_of(user_id) for user_id in users}
    taste, _ = Counter(tastes.values()).most_common(1)[0]
    members = {user_id for user_id in users if tastes[user_id] == taste}
    probabilities = world.listen_probabilities(next(iter(members)))
    assert probabilities.keys() == set(world.keys("tracks")) and sum(
        probabilities.values()
    ) == pytest.approx(1.0)
    plays = Counter(
        item
        for history in world.records("listen_history")
        if history["user_id"] in members
        for item in history["items"]
    )
    listened = sum(plays.values())
    ranked = sorted(probabilities, key=lambda track_id: -probabilities[track_id])
    for track_id in ranked[:5]:
        assert plays[track_id] / listened == pytest.approx(probabilities[track_id], abs=0.02)
    assert len({track_id for track_id, _ in plays.most_common(5)} & set(ranked[:5])) >= 4
    with pytest.raises(KeyError):
        world.listen_probabilities(next(iter(world.deleted_user_ids(0, MAX_DAY))), day=MAX_DAY)


def test_ids_are_unique_and_stable_as_the_world_grows() -> None:
    world = World(users=3000, tracks=500)
    ids = world.keys("users", MAX_DAY) + world.keys("users", 0)
    assert len(set(world.keys("users", 0))) == 3000 and max(ids) <= 100_000
    users_day0 = by_key(list(world.records("users", 0)))
    assert all(
        users_day0[id_]["created_at"] == user["created_at"]
        for id_, user in by_key(list(world.records("users", MAX_DAY))).items()
        if id_ in users_day0
    )
    big = World(users=1_000_000)
    sample = [user["id"] for user in big.page("users", 10_000, 100) + big.page("users", 1, 100)]
    assert len(set(sample)) == 200 and max(sample) > 100_000  # too many users for 1..100000


def test_a_million_users_page_anywhere() -> None:
    # (the time of a page at this size is measured by `make bench-1m`, not asserted here)
    world = World(users=1_000_000, tracks=1000, day=30)
    total = world.total("users")
    assert 1_000_000 < total < 1_000_000 * 1.15
    last = world.page("listen_history", ceil(total / 100), 100)
    middle = world.page("users", 5000, 100)
    assert len(last) == total - (ceil(total / 100) - 1) * 100 and len(middle) == 100


def test_world_rejects_impossible_arguments() -> None:
    with pytest.raises(ValueError):
        World(tracks=0)
    with pytest.raises(ValueError):
        World(day=MAX_DAY + 1)
    with pytest.raises(ValueError):
        World().page("users", 1, 10, day=-1)
