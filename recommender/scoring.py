"""Nightly scoring: the champion's top-k unplayed tracks for the current users, into ml.

A user's recommendations are a function of the champion (its artifact: track factors or
similarities, listener counts, ALS's BM25 statistics), the catalogue of its tracks (which are
still in dim_tracks, their genres), top-k, and the user's own listens and favourite genre.
So a night re-scores only the users whose listens or favourite genre changed since the last
scoring (ml.scored_users records what each user was scored from), drops the rows of users gone
from dim_users, and keeps everyone else's rows as they are; it re-scores everyone when the
champion, that catalogue or top-k changed, when the previous rows cannot be trusted, or when
`full_rescore` is set. A night where nothing changed scores nobody.

Users are scored in batches and each batch's rows are staged as it comes, then swapped in in one
transaction: memory stays bounded whatever the number of users. Users the champion knows
nothing about (no listens, or only listens of tracks it was not trained on) get a cold start:
its popularity among the tracks of their favourite genre.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import scipy.sparse as sp

from recommender import RecommenderError
from recommender.data import Interactions, contains, distinct, positions, utc_now
from recommender.models import (
    BATCH_USERS,
    Model,
    TopK,
    first_unplayed,
    load,
    recommend_batches,
)
from recommender.progress import Progress
from recommender.settings import Settings
from recommender.warehouse import (
    ModelVersion,
    champion,
    read_catalogue,
    read_scored_users,
    read_scoring_inputs,
    read_user_tracks,
    read_users,
    recommendations_state,
    replace_recommendations,
)


@dataclass(frozen=True)
class ScoringReport:
    """What a scoring run did: refused (tonight's data failed its checks), or wrote tonight's
    recommendations for the users who needed it (`everyone_because` says why everyone was
    re-scored; None when only the changed users were)."""

    scored: bool
    message: str
    users_rescored: int = 0
    users_kept: int = 0
    users_removed: int = 0
    rows_written: int = 0
    everyone_because: str | None = None

    def render(self) -> str:
        return self.message


@dataclass(frozen=True)
class ScoringPlan:
    """Who is scored tonight and whose rows go."""

    users: np.ndarray  # the users to score, sorted
    inputs_hashes: np.ndarray  # their read_scoring_inputs hashes
    context_hash: int
    replaced: np.ndarray | None  # users whose rows go (re-scored and gone); None: every row
    kept: int  # users whose rows stay as they are
    removed: int  # users gone from dim_users whose rows go
    everyone_because: str | None


def score(
    settings: Settings,
    refused: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> ScoringReport:
    """Bring ml.recommendations up to date with the champion and tonight's listens; never when
    tonight's data is refused (`refused` says why: a failed dbt test, a volume check's error).

    Scoring never trains: with no champion (training failed or never ran) it fails, saying so.
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
    version = champion(database)
    if version is None:
        raise RecommenderError(
            "no champion in ml.model_versions to score with: the nightly `training` step trains "
            "the first one (or run `make train`), then score"
        )
    model = champion_model(version)
    reporter = Progress(progress)
    reporter.step("scoring: finding the users whose listens changed")
    catalogue = read_catalogue(database)
    plan = plan_scoring(model, version.model_version, catalogue, settings)
    champion_name = f"champion v{version.model_version} ({version.model_name})"
    if not len(plan.users) and plan.replaced is not None and not len(plan.replaced):
        message = (
            f"Nothing changed since the last scoring with {champion_name}: 0 users re-scored, "
            f"{plan.kept:,} kept their recommendations"
        )
        reporter.step(f"scoring: {message}")
        return ScoringReport(True, message, users_kept=plan.kept)
    why = (
        f"everyone, because {plan.everyone_because}"
        if plan.everyone_because
        else "the users whose listens or favourite genre changed"
    )
    reporter.step(f"scoring: {len(plan.users):,} users: {why}")
    tally = Tally()
    generated_at = np.datetime64(utc_now(), "us")
    batches = recommendation_batches(
        model, version.model_version, settings, reporter, tally, plan.users, generated_at
    )
    scored = pa.table(
        {
            "user_id": plan.users,
            "model_version": np.full(len(plan.users), version.model_version, dtype=np.int64),
            "inputs_hash": plan.inputs_hashes,
            "context_hash": np.full(len(plan.users), plan.context_hash, dtype=np.int64),
            "scored_at": np.full(len(plan.users), generated_at),
        }
    )
    replace_recommendations(database, batches, scored, plan.replaced)
    return ScoringReport(
        scored=True,
        message=f"Scored {tally.rows:,} recommendations for {tally.users:,} users ({why}) with "
        f"{champion_name}; {tally.cold_rows:,} cold-start rows; {plan.kept:,} users kept "
        f"their recommendations, {plan.removed:,} gone users' removed; "
        f"{time.monotonic() - started:.1f} s",
        users_rescored=tally.users,
        users_kept=plan.kept,
        users_removed=plan.removed,
        rows_written=tally.rows,
        everyone_because=plan.everyone_because,
    )


def plan_scoring(
    model: Model, model_version: int, catalogue: dict[int, list[str]], settings: Settings
) -> ScoringPlan:
    """Compare what each current user's recommendations depend on with what ml.scored_users
    says they were computed from."""
    database = settings.duckdb_path
    users, hashes = read_scoring_inputs(database)
    context = context_hash(model, catalogue, settings.top_k)
    previous = read_scored_users(database)
    removed = int((positions(previous.user_ids, users) < 0).sum())
    everyone_because = None
    if settings.full_rescore:
        everyone_because = "a full re-score was asked (recommender.full_rescore)"
    elif not model.scores_each_user_alone:
        everyone_because = (
            f"champion v{model_version}'s artifact predates the BM25 statistics kept at "
            "training: its weighting uses every user's listens (retrain to score incrementally)"
        )
    elif not len(previous.user_ids):
        everyone_because = "no previous scoring is recorded (ml.scored_users is empty)"
    elif previous.model_versions != {model_version}:
        before = ", ".join(f"v{v}" for v in sorted(previous.model_versions))
        everyone_because = f"the champion changed ({before} -> v{model_version})"
    elif previous.context_hashes != {context}:
        everyone_because = "the champion's tracks in dim_tracks, their genres or top_k changed"
    elif previous.unrecorded_rows:
        everyone_because = (
            f"ml.recommendations holds {previous.unrecorded_rows:,} rows that ml.scored_users "
            "does not account for"
        )
    if everyone_because is not None:
        return ScoringPlan(users, hashes, context, None, 0, removed, everyone_because)
    found = positions(users, previous.user_ids)
    changed = (found < 0) | (previous.inputs_hashes[found.clip(min=0)] != hashes)
    gone = previous.user_ids[positions(previous.user_ids, users) < 0]
    return ScoringPlan(
        users[changed],
        hashes[changed],
        context,
        distinct(np.concatenate([users[changed], gone])),
        int((~changed).sum()),
        removed,
        None,
    )


def context_hash(model: Model, catalogue: dict[int, list[str]], top_k: int) -> int:
    """What every user's recommendations depend on beside the model and their own inputs: the
    model's tracks still in the catalogue, with their genres (cold starts), and top-k."""
    listed = [
        [track, sorted(catalogue[track])]
        for track in model.track_ids.tolist()
        if track in catalogue
    ]
    digest = hashlib.sha256(json.dumps([top_k, listed]).encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


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


def recommendations_table(model: Model, model_version: int, settings: Settings) -> pa.Table:
    """Every row of ml.recommendations at once (for checks on small data; scoring streams)."""
    return pa.concat_tables(recommendation_batches(model, model_version, settings))


def recommendation_batches(
    model: Model,
    model_version: int,
    settings: Settings,
    progress: Progress | None = None,
    tally: Tally | None = None,
    users: np.ndarray | None = None,
    generated_at: np.datetime64 | None = None,
) -> Iterator[pa.Table]:
    """Rows of ml.recommendations for every current user (or the sorted `users`), batch by
    batch: (user, rank) unique, ranks from 1; listeners the model knows first, then the cold
    starts.

    The marts are read now, before the caller opens its connection to write `ml` (a read-only
    connection cannot open a file this process holds read-write); the batches come lazily."""
    progress = progress or Progress()
    tally = tally if tally is not None else Tally()
    database = settings.duckdb_path
    progress.step("scoring: reading users, catalogue and listens")
    favourite_genres = read_users(database, users)
    catalogue = read_catalogue(database)
    history = Interactions.from_pairs(*read_user_tracks(database, users))
    return _scored_batches(
        model,
        model_version,
        settings,
        progress,
        tally,
        favourite_genres,
        catalogue,
        history,
        generated_at if generated_at is not None else np.datetime64(utc_now(), "us"),
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
    generated_at: np.datetime64,
) -> Iterator[pa.Table]:
    catalogue_ids = np.array(sorted(catalogue), dtype=np.int64)
    current = np.array(sorted(favourite_genres), dtype=np.int64)
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
    cold_users = current[~contains(current, np.concatenate([np.empty(0, np.int64), *served]))]
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
        picked = first_unplayed(chosen, played[rows], k)
        valid = picked >= 0
        tracks[rows] = np.where(valid, model.track_ids[picked.clip(min=0)], -1)
        scores[rows] = np.where(valid, model.listener_counts[picked.clip(min=0)], np.nan)
    return tracks, scores
