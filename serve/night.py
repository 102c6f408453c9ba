"""One published night, read once into compact arrays: what every request of that night reads.

A DuckDB query per request costs about 1 to 3 ms (planning and a row-group scan) and held the
API to a tenth of the framework's floor (`make bench-serve`), so each night's file is read once
when it is published: recommendations as columns sorted by (user, rank) and found by binary
search, similar tracks likewise by track, names from dim_tracks. Memory is a fraction of the
file (about 40 MB at 100,000 users for an 89 MB file) and no request adds to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb
import numpy as np

from serve.models import Recommendations, RecommendedTrack, SimilarTrack, SimilarTracks

# marts.fct_recommendations: the scoring's rows of current users (deleted users left out)
RECOMMENDATIONS = """
select user_id, rank, track_id, score, is_cold_start, model_version, epoch_us(generated_at)
from marts.fct_recommendations
order by user_id, rank
"""
# marts.fct_track_similarities: the nightly co-listen mart (dbt, dbt_project/models/marts/serving)
SIMILARITIES = """
select track_id, similarity_rank, similar_track_id, co_listeners
from marts.fct_track_similarities
order by track_id, similarity_rank
"""
TRACKS = "select track_id, track_name, artist_name from marts.dim_tracks"
PUBLISHED = """
select run_id, published_at from ops.pipeline_runs
where published_at is not null
order by published_at desc
limit 1
"""
MODELS = "select model_version, model_kind from ml.model_versions"


class Grouped:
    """Rows sorted by a key, each key's rows contiguous: the rows of one key in O(log n)."""

    def __init__(
        self, keys: np.ndarray, columns: dict[str, np.ndarray], per_key: tuple[str, ...] = ()
    ) -> None:
        self.keys, self.starts = np.unique(keys, return_index=True)
        self.ends = np.append(self.starts[1:], len(keys))
        # columns constant within a key are kept once per key
        self.per_key = {name: columns.pop(name)[self.starts] for name in per_key}
        self.columns = columns

    def find(self, key: int) -> int | None:
        """The index of `key` among the distinct keys, or None."""
        position = int(np.searchsorted(self.keys, key))
        if position < len(self.keys) and self.keys[position] == key:
            return position
        return None

    def rows(self, position: int, limit: int) -> dict[str, list]:
        start = int(self.starts[position])
        stop = min(start + limit, int(self.ends[position]))
        return {name: column[start:stop].tolist() for name, column in self.columns.items()}

    def of_key(self, position: int, name: str) -> object:
        return self.per_key[name][position].item()


@dataclass(frozen=True)
class Night:
    """The published file of one nightly run, as the API serves it."""

    run_id: str
    published_at: datetime
    model_version: int | None
    model_kinds: dict[int, str]
    tracks: dict[int, tuple[str | None, str | None]]
    recommendations: Grouped
    similarities: Grouped

    @property
    def model_kind(self) -> str | None:
        return None if self.model_version is None else self.model_kinds.get(self.model_version)

    @classmethod
    def read(cls, connection: duckdb.DuckDBPyConnection) -> Night:
        published = connection.execute(PUBLISHED).fetchone()
        if published is None:
            raise ValueError("the published file records no published run in ops.pipeline_runs")
        recommendations = _columns(connection, RECOMMENDATIONS)
        similarities = _columns(connection, SIMILARITIES)
        versions = recommendations["model_version"]
        return cls(
            run_id=published[0],
            published_at=published[1],
            model_version=int(versions.max()) if len(versions) else None,
            model_kinds=dict(connection.execute(MODELS).fetchall()),
            tracks={
                track_id: (name, artist)
                for track_id, name, artist in connection.execute(TRACKS).fetchall()
            },
            recommendations=Grouped(
                recommendations.pop("user_id"),
                recommendations,
                per_key=("is_cold_start", "model_version", "generated_at_us"),
            ),
            similarities=Grouped(similarities.pop("track_id"), similarities),
        )

    def user_recommendations(self, user_id: int, limit: int) -> Recommendations | None:
        position = self.recommendations.find(user_id)
        if position is None:
            return None
        rows = self.recommendations.rows(position, limit)
        model_version = int(self.recommendations.of_key(position, "model_version"))
        generated_us = int(self.recommendations.of_key(position, "generated_at_us"))
        return Recommendations(
            night=self.run_id,
            user_id=user_id,
            model_version=model_version,
            model_kind=self.model_kinds.get(model_version),
            generated_at=np.datetime64(generated_us, "us").item(),
            is_cold_start=bool(self.recommendations.of_key(position, "is_cold_start")),
            items=[
                RecommendedTrack(
                    rank=rank,
                    track_id=track_id,
                    track_name=self.tracks.get(track_id, (None, None))[0],
                    artist_name=self.tracks.get(track_id, (None, None))[1],
                    score=score,
                )
                for rank, track_id, score in zip(
                    rows["rank"], rows["track_id"], rows["score"], strict=True
                )
            ],
        )

    def similar_tracks(self, track_id: int, limit: int) -> SimilarTracks | None:
        if track_id not in self.tracks:
            return None
        name, artist = self.tracks[track_id]
        position = self.similarities.find(track_id)
        rows = (
            self.similarities.rows(position, limit)
            if position is not None
            else {"similarity_rank": [], "similar_track_id": [], "co_listeners": []}
        )
        return SimilarTracks(
            night=self.run_id,
            track_id=track_id,
            track_name=name,
            artist_name=artist,
            items=[
                SimilarTrack(
                    rank=rank,
                    track_id=similar,
                    track_name=self.tracks.get(similar, (None, None))[0],
                    artist_name=self.tracks.get(similar, (None, None))[1],
                    co_listeners=co_listeners,
                )
                for rank, similar, co_listeners in zip(
                    rows["similarity_rank"],
                    rows["similar_track_id"],
                    rows["co_listeners"],
                    strict=True,
                )
            ],
        )


def _columns(connection: duckdb.DuckDBPyConnection, sql: str) -> dict[str, np.ndarray]:
    """A query's result as numpy columns (named as selected; epoch_us(...) -> *_us)."""
    result = connection.execute(sql).fetchnumpy()
    return {
        ("generated_at_us" if name.startswith("epoch_us") else name): np.asarray(values)
        for name, values in result.items()
    }
