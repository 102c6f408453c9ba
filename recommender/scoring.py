"""Nightly scoring: the champion's top-k unplayed tracks for every current user, into ml.

Users the champion knows nothing about (no listens, or only listens of tracks it was not
trained on) get a cold start: its popularity among the tracks of their favourite genre.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from recommender import RecommenderError
from recommender.data import Interactions, utc_now
from recommender.models import Model, load, recommend
from recommender.settings import Settings
from recommender.training import TrainingReport, train
from recommender.warehouse import (
    ModelVersion,
    champion,
    read_catalogue,
    read_user_tracks,
    read_users,
    recommendations_state,
    replace_recommendations,
)


@dataclass(frozen=True)
class ScoringReport:
    """What a scoring run did: refused (tonight's data failed its checks), or wrote tonight's
    recommendations."""

    scored: bool
    message: str
    bootstrap: TrainingReport | None = None

    def render(self) -> str:
        if self.bootstrap is None:
            return self.message
        return f"No champion yet: bootstrap training.\n{self.bootstrap.render()}\n{self.message}"


def score(settings: Settings, refused: str | None = None) -> ScoringReport:
    """Replace ml.recommendations with the champion's; never when tonight's data is refused
    (`refused` says why: a failed dbt test, a volume check's error).

    With no champion yet (a fresh clone's first night), a training run picks one first.
    """
    database = settings.duckdb_path
    if refused:
        return ScoringReport(
            scored=False,
            message=f"{refused}: no scoring on data that failed its checks; "
            f"yesterday's recommendations stay ({recommendations_state(database).describe()})",
        )
    started = time.monotonic()
    bootstrap = None
    version = champion(database)
    if version is None:
        bootstrap = train(settings)
        version = bootstrap.champion_after
        assert version is not None, "a training run with no champion always registers one"
    table = recommendations_table(champion_model(version), version.model_version, settings)
    replace_recommendations(database, table)
    cold = int(np.count_nonzero(table["is_cold_start"].to_numpy()))
    return ScoringReport(
        scored=True,
        message=f"Scored {table.num_rows:,} recommendations for "
        f"{len(np.unique(table['user_id'].to_numpy())):,} users with champion "
        f"v{version.model_version} ({version.model_name}); {cold:,} cold-start rows; "
        f"{time.monotonic() - started:.1f} s",
        bootstrap=bootstrap,
    )


def champion_model(version: ModelVersion) -> Model:
    artifact = Path(version.artifact_path)
    if not artifact.exists():
        raise RecommenderError(
            f"champion v{version.model_version}'s artifact {artifact} is missing: "
            "run `python -m recommender train` to train and promote a new one"
        )
    return load(artifact)


def recommendations_table(model: Model, model_version: int, settings: Settings) -> pa.Table:
    """Rows of ml.recommendations for every current user: (user, rank) unique, ranks from 1."""
    database = settings.duckdb_path
    favourite_genres = read_users(database)
    catalogue = read_catalogue(database)
    catalogue_ids = np.array(sorted(catalogue), dtype=np.int64)
    history = Interactions.from_pairs(*read_user_tracks(database))
    top = recommend(model, history, np.arange(len(history.user_ids)), settings.top_k, catalogue_ids)
    served = (top.track_ids[:, 0] >= 0) & np.isin(history.user_ids, list(favourite_genres))
    warm_users = history.user_ids[served]
    cold_users = np.array(sorted(set(favourite_genres) - set(warm_users.tolist())), dtype=np.int64)
    cold_tracks, cold_scores = cold_start(
        model, [favourite_genres[user] for user in cold_users], catalogue, top.track_ids.shape[1]
    )
    track_ids = np.concatenate([top.track_ids[served], cold_tracks])
    scores = np.concatenate([top.scores[served], cold_scores])
    users = np.concatenate([warm_users, cold_users])
    is_cold_start = np.repeat([False, True], [len(warm_users), len(cold_users)])
    slots = track_ids >= 0
    return pa.table(
        {
            "user_id": np.repeat(users, slots.sum(axis=1)),
            "rank": np.nonzero(slots)[1].astype(np.int32) + 1,
            "track_id": track_ids[slots],
            "score": scores[slots],
            "model_version": np.full(slots.sum(), model_version, dtype=np.int64),
            "is_cold_start": np.repeat(is_cold_start, slots.sum(axis=1)),
            "generated_at": np.full(slots.sum(), np.datetime64(utc_now(), "us")),
        }
    )


def cold_start(
    model: Model, genres: list[str | None], catalogue: dict[int, list[str]], k: int
) -> tuple[np.ndarray, np.ndarray]:
    """(track ids, scores), one row per user: the model's most listened tracks of the user's
    favourite genre (of all genres if the user has none or the genre no track), score =
    distinct listeners in the training data, -1 past the end (a small genre has fewer)."""
    listed = np.isin(model.track_ids, np.fromiter(catalogue, dtype=np.int64))
    order = np.lexsort((model.track_ids, -model.listener_counts))  # most listeners first
    ranked = [int(track) for track in model.track_ids[order][listed[order]]]
    listeners = dict(zip(model.track_ids.tolist(), model.listener_counts.tolist(), strict=True))
    tracks = np.full((len(genres), k), -1, dtype=np.int64)
    scores = np.full((len(genres), k), np.nan)
    for genre in set(genres):
        chosen = [track for track in ranked if genre in catalogue[track]][:k] or ranked[:k]
        users = [row for row, favourite in enumerate(genres) if favourite == genre]
        tracks[np.ix_(users, range(len(chosen)))] = chosen
        scores[np.ix_(users, range(len(chosen)))] = [listeners[track] for track in chosen]
    return tracks, scores
