"""Nightly scoring: the champion's top-k unplayed tracks for every current user, into ml.

Users are scored in batches and each batch's rows are written as it comes, inside the one
transaction that replaces yesterday's recommendations: memory stays bounded whatever the number
of users. Users the champion knows nothing about (no listens, or only listens of tracks it was
not trained on) get a cold start: its popularity among the tracks of their favourite genre.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import scipy.sparse as sp

from recommender import RecommenderError
from recommender.data import Interactions, positions, utc_now
from recommender.models import BATCH_USERS, Model, TopK, load, recommend_batches, unplayed
from recommender.progress import Progress
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


def score(
    settings: Settings,
    refused: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> ScoringReport:
    """Replace ml.recommendations with the champion's; never when tonight's data is refused
    (`refused` says why: a failed dbt test, a volume check's error).

    With no champion yet (a fresh clone's first night), a training run picks one first.
    `progress` receives a short description at each sub-step and progress report.
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
        bootstrap = train(settings, progress)
        version = bootstrap.champion_after
        assert version is not None, "a training run with no champion always registers one"
    tally = Tally()
    reporter = Progress(progress)
    batches = recommendation_batches(
        champion_model(version), version.model_version, settings, reporter, tally
    )
    replace_recommendations(database, batches)
    return ScoringReport(
        scored=True,
        message=f"Scored {tally.rows:,} recommendations for {tally.users:,} users with champion "
        f"v{version.model_version} ({version.model_name}); {tally.cold_rows:,} cold-start rows; "
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


@dataclass
class Tally:
    """What the batches written so far held."""

    rows: int = 0
    users: int = 0
    cold_rows: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


def recommendations_table(model: Model, model_version: int, settings: Settings) -> pa.Table:
    """Every row of ml.recommendations at once (for checks on small data; scoring streams)."""
    return pa.concat_tables(recommendation_batches(model, model_version, settings))


def recommendation_batches(
    model: Model,
    model_version: int,
    settings: Settings,
    progress: Progress | None = None,
    tally: Tally | None = None,
) -> Iterator[pa.Table]:
    """Rows of ml.recommendations for every current user, batch by batch: (user, rank) unique,
    ranks from 1; listeners the model knows first, then the cold starts.

    The marts are read now, before the caller opens its connection to write `ml` (a read-only
    connection cannot open a file this process holds read-write); the batches come lazily."""
    progress = progress or Progress()
    tally = tally if tally is not None else Tally()
    database = settings.duckdb_path
    progress.step("scoring: reading users, catalogue and listens")
    favourite_genres = read_users(database)
    catalogue = read_catalogue(database)
    history = Interactions.from_pairs(*read_user_tracks(database))
    return _scored_batches(
        model, model_version, settings, progress, tally, favourite_genres, catalogue, history
    )


def _scored_batches(
    model: Model,
    model_version: int,
    settings: Settings,
    progress: Progress,
    tally: Tally,
    favourite_genres: dict[int, str | None],
    catalogue: dict[int, list[str]],
    history: Interactions,
) -> Iterator[pa.Table]:
    catalogue_ids = np.array(sorted(catalogue), dtype=np.int64)
    current = np.array(sorted(favourite_genres), dtype=np.int64)
    generated_at = np.datetime64(utc_now(), "us")
    rows = np.flatnonzero(positions(history.user_ids, current) >= 0)  # current users only
    progress.step("scoring", total=len(current), unit="users")
    served = []
    for batch, top in recommend_batches(
        model, history, rows, settings.top_k, catalogue_ids, progress
    ):
        warm = top.track_ids[:, 0] >= 0
        served.append(history.user_ids[batch[warm]])
        table = _rows(history.user_ids[batch[warm]], top, warm, model_version, False, generated_at)
        tally.rows += table.num_rows
        tally.users += int(warm.sum())
        yield table
    cold_users = np.setdiff1d(current, np.concatenate([np.empty(0, np.int64), *served]))
    played = _played(history, model.track_ids, cold_users)
    k = min(settings.top_k, len(model.track_ids))
    for start in range(0, len(cold_users), BATCH_USERS):
        users = cold_users[start : start + BATCH_USERS]
        tracks, scores = cold_start(
            model,
            [favourite_genres[int(user)] for user in users],
            catalogue,
            k,
            played[start : start + BATCH_USERS],
        )
        everyone = np.ones(len(users), dtype=bool)
        table = _rows(users, TopK(tracks, scores), everyone, model_version, True, generated_at)
        tally.rows += table.num_rows
        tally.users += len(users)
        tally.cold_rows += table.num_rows
        progress.advance(int((positions(users, history.user_ids) < 0).sum()))  # not yet counted
        yield table


def _rows(
    users: np.ndarray,
    top: TopK,
    selected: np.ndarray,
    model_version: int,
    is_cold_start: bool,
    generated_at: np.datetime64,
) -> pa.Table:
    track_ids, scores = top.track_ids[selected], top.scores[selected]
    slots = track_ids >= 0
    count = int(slots.sum())
    return pa.table(
        {
            "user_id": np.repeat(users, slots.sum(axis=1)),
            "rank": np.nonzero(slots)[1].astype(np.int32) + 1,
            "track_id": track_ids[slots],
            "score": scores[slots],
            "model_version": np.full(count, model_version, dtype=np.int64),
            "is_cold_start": np.full(count, is_cold_start),
            "generated_at": np.full(count, generated_at),
        }
    )


def _played(history: Interactions, track_ids: np.ndarray, users: np.ndarray) -> sp.csr_matrix:
    """The `users`' listens laid on the model's tracks, one row each (empty for no listens)."""
    on_model = history.on_tracks(track_ids)
    found = positions(users, history.user_ids)
    rows = on_model[found.clip(min=0)]
    return sp.diags((found >= 0).astype(np.float32)) @ rows if len(users) else rows


def cold_start(
    model: Model,
    genres: list[str | None],
    catalogue: dict[int, list[str]],
    k: int,
    played: sp.csr_matrix,
) -> tuple[np.ndarray, np.ndarray]:
    """(track ids, scores), one row per user: the model's most listened tracks of the user's
    favourite genre (of all genres if the user has none or the genre no track) that the user
    did not play (`played`: their listens on the model's tracks), score = distinct listeners in
    the training data, -1 past the end (a small genre has fewer)."""
    listed = np.isin(model.track_ids, np.fromiter(catalogue, dtype=np.int64))
    order = np.lexsort((model.track_ids, -model.listener_counts))  # most listeners first
    ranked = order[listed[order]]
    tracks = np.full((len(genres), k), -1, dtype=np.int64)
    scores = np.full((len(genres), k), np.nan)
    users_of: dict[str | None, list[int]] = {}
    for row, favourite in enumerate(genres):
        users_of.setdefault(favourite, []).append(row)
    for genre, users in users_of.items():
        in_genre = np.array([genre in catalogue[int(track)] for track in model.track_ids[ranked]])
        chosen = ranked[in_genre] if in_genre.any() else ranked
        rows = np.array(users)
        needed = min(k + int(np.diff(played[rows].indptr).max(initial=0)), len(chosen))
        columns = np.broadcast_to(chosen[:needed], (len(rows), needed))
        picked, _ = unplayed(columns, model.listener_counts[columns], played[rows], k)
        valid = picked >= 0
        tracks[rows] = np.where(valid, model.track_ids[picked.clip(min=0)], -1)
        scores[rows] = np.where(valid, model.listener_counts[picked.clip(min=0)], np.nan)
    return tracks, scores
