"""marts.fct_track_similarities, restated in Python from the users' tracks it is built from."""

from __future__ import annotations

from collections import Counter, defaultdict

import pytest

from tests.dbt.support import Warehouse
from tests.support import query

pytestmark = pytest.mark.dbt


def test_each_track_lists_its_20_most_co_listened_tracks(warehouse: Warehouse) -> None:
    tracks_of: defaultdict[int, set[int]] = defaultdict(set)
    for user, track in query(
        warehouse.duckdb_file, "select user_id, track_id from marts.fct_user_tracks"
    ):
        tracks_of[user].add(track)
    co_listeners: defaultdict[int, Counter[int]] = defaultdict(Counter)
    for tracks in tracks_of.values():
        for track in tracks:
            co_listeners[track].update(tracks - {track})
    expected = {
        (track, rank, similar, count)
        for track, counts in co_listeners.items()
        for rank, (similar, count) in enumerate(
            sorted(counts.items(), key=lambda pair: (-pair[1], pair[0]))[:20], start=1
        )
    }
    rows = query(
        warehouse.duckdb_file,
        "select track_id, similarity_rank, similar_track_id, co_listeners "
        "from marts.fct_track_similarities",
    )
    assert len(expected) > 100
    assert len(rows) == len(expected)
    assert set(rows) == expected
