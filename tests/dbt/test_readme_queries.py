"""The analyst queries in README.md run as written against a built warehouse and answer what they
say, checked against values computed from the API pages the fixture read (never from dbt)."""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from tests.dbt.support import Warehouse, load_time
from tests.dbt.test_marts import genre_weights, listens
from tests.support import REPO_ROOT, query

pytestmark = pytest.mark.dbt

Rows = list[tuple[Any, ...]]


def readme_mart_queries() -> list[str]:
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("### Querying the marts", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sql\n(.*?)```", section, flags=re.DOTALL)


def check_most_played(rows: Rows, warehouse: Warehouse) -> None:
    day = warehouse.next_day
    plays = Counter(track for items in listens(day).values() for _, track in items)
    listeners = Counter(
        track for items in listens(day).values() for track in {track for _, track in items}
    )
    counts = sorted((plays[track] for track in day.tracks), reverse=True)
    assert counts[0] > counts[9] > 0
    assert [row[3] for row in rows] == counts[:10]
    for track_id, name, artist, listen_count, distinct_listeners in rows:
        track = day.tracks[track_id]
        assert (name, artist) == (track["name"], track["artist"])
        assert (listen_count, distinct_listeners) == (plays[track_id], listeners[track_id])


def check_one_users_listens(rows: Rows, warehouse: Warehouse) -> None:
    day = warehouse.next_day
    expected = [
        (position, day.tracks[track]["name"], day.tracks[track]["artist"])
        for position, track in listens(day)[min(day.users)]
        if track in day.tracks
    ]
    assert expected, "the first user should have listens"
    assert [row[:3] for row in rows] == expected


def check_since_previous_load(rows: Rows, warehouse: Warehouse) -> None:
    before, after = warehouse.day, warehouse.next_day
    expected = set()
    for user_id, record in after.listen_history.items():
        seen = len((before.listen_history.get(user_id) or {}).get("items") or [])
        expected |= {
            (user_id, position, track)
            for position, track in enumerate(record["items"] or [], 1)
            if position > seen and track is not None
        }
    assert expected, "the next day should bring new listens"
    assert {row[:3] for row in rows} == expected
    next_load = load_time(warehouse.next_load_id)
    assert all(abs((row[3] - next_load).total_seconds()) < 0.001 for row in rows)


def check_genre_affinity(rows: Rows, warehouse: Warehouse) -> None:
    day = warehouse.next_day
    expected = {}
    for user_id, items in listens(day).items():
        weights = genre_weights(day, items)
        total = sum(weights.values())
        expected |= {(user_id, genre): weight / total for genre, weight in weights.items()}
    assert expected
    assert {(user, genre) for user, genre, _, _ in rows} == expected.keys()
    assert all(
        abs(share - expected[user, genre]) <= 0.0005 + 1e-9 for user, genre, share, _ in rows
    )
    assert [row[0] for row in rows] == sorted(row[0] for row in rows)
    for (user, _, share, _), (next_user, _, next_share, _) in itertools.pairwise(rows):
        assert user != next_user or share >= next_share, "strongest first"


CHECKS: dict[str, Callable[[Rows, Warehouse], None]] = {
    "-- the ten most played tracks": check_most_played,
    "-- one user's listens, in the order they played them": check_one_users_listens,
    "-- what was played since the previous load": check_since_previous_load,
    "-- each user's genre affinity, strongest first": check_genre_affinity,
}


def test_every_readme_query_has_its_independent_check() -> None:
    assert [sql.splitlines()[0] for sql in readme_mart_queries()] == list(CHECKS)


@pytest.mark.parametrize("sql", readme_mart_queries(), ids=lambda sql: sql.splitlines()[0])
def test_a_readme_query_answers_what_it_says(sql: str, warehouse: Warehouse) -> None:
    rows = query(warehouse.duckdb_file, sql)
    assert rows, "the query should return rows on two nights of dev API data"
    CHECKS[sql.splitlines()[0]](rows, warehouse)
