"""marts.fct_track_similarities, restated in Python from the users' tracks it is built from."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import duckdb
import pytest

from tests.dbt.support import Warehouse, run_dbt
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


def test_a_track_id_past_the_sort_key_fails_the_model_by_name(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    # DuckDB ranks with one bigint key per row (macro top_n_per_group): an id it cannot hold
    # must fail the build, not rank wrongly
    copy = warehouse.copy(tmp_path)
    with duckdb.connect(str(copy)) as connection:
        connection.execute(
            "insert into marts.fct_user_tracks "
            "select user_id, 5000000000, 1, first_seen_at, last_seen_at "
            "from marts.fct_user_tracks order by user_id, track_id limit 1"
        )
    run = run_dbt(copy, tmp_path, "run", "--select", "fct_track_similarities")
    assert run.returncode != 0
    [node] = run.failed()
    assert node.name == "fct_track_similarities"
    assert "similar_track_id 5000000000" in (node.message or "")
    assert "outside the sort key" in (node.message or "")
