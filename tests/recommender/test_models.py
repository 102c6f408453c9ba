"""Every model kind at a real shape: more users than tracks, over a catalogue of 12,000 tracks.

The listens are the dev API's (its taste model, day 0), read straight from `World` rather than
through the extractor and dbt, so the module builds 600,000 listens in about a second. Folding
in 30,000 users at once over 12,000 tracks is what stalled the scoring before it was batched.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
import scipy.sparse as sp
from implicit.cpu.topk import topk
from threadpoolctl import threadpool_limits

from dev_api.world import World
from recommender.data import PAIR_KEY, Interactions
from recommender.models import MODEL_KINDS, Als, Model, recommend, recommend_batches
from recommender.progress import Progress
from recommender.scoring import cold_start
from recommender.settings import DEFAULT_CANDIDATES

USERS, TRACKS = 30_000, 12_000
K = 20
ALS = {key: value for key, value in DEFAULT_CANDIDATES["als"].items() if key != "kind"}
PARAMS = {
    "popularity": {},
    "co_listen": {"neighbours": 100},
    "als": ALS,
}


@pytest.fixture(scope="module")
def world() -> World:
    return World(seed=7, users=USERS, tracks=TRACKS, listens=20)


@pytest.fixture(scope="module")
def listens(world: World) -> Interactions:
    users, tracks = [], []
    for record in world.records("listen_history", 0):
        users += [record["user_id"]] * len(record["items"])
        tracks += record["items"]
    return Interactions.from_pairs(
        np.array(users), np.array(tracks), np.ones(len(users), dtype=np.float32)
    )


@pytest.fixture(scope="module")
def catalogue(world: World) -> dict[int, list[str]]:
    """Every track with its genres, as marts.dim_tracks holds them (a comma-separated list)."""
    return {
        record["id"]: [genre.strip() for genre in record["genres"].split(",")]
        for record in world.records("tracks", 0)
    }


@pytest.fixture(scope="module", params=sorted(PARAMS))
def fitted(request: pytest.FixtureRequest, listens: Interactions) -> Model:
    model = MODEL_KINDS[request.param](PARAMS[request.param])
    model.fit(listens)
    return model


def test_the_shape_is_real(listens: Interactions) -> None:
    users, tracks = listens.matrix.shape
    assert users > tracks > 10_000


def test_every_model_kind_scores_every_user_never_a_played_or_delisted_track(
    fitted: Model, listens: Interactions
) -> None:
    delisted = fitted.track_ids[::50]  # tracks gone from the catalogue since the fit
    catalogue = np.setdiff1d(fitted.track_ids, delisted)
    rows = np.arange(len(listens.user_ids))
    top = recommend(fitted, listens, rows, K, catalogue)

    assert top.track_ids.shape == (len(rows), K)
    recommended = top.track_ids >= 0
    keys = listens.user_ids[rows][:, None] * PAIR_KEY + top.track_ids
    played = listens.matrix.tocoo()
    played_keys = listens.user_ids[played.row] * PAIR_KEY + listens.track_ids[played.col]
    assert not np.isin(keys[recommended], played_keys).any()
    assert not np.isin(top.track_ids[recommended], delisted).any()
    # every listener gets k distinct tracks (12,000 tracks leave plenty), best first
    assert recommended.sum(axis=1).min() == K
    assert all(len(set(row)) == K for row in top.track_ids[:1000].tolist())
    assert (np.diff(top.scores, axis=1) <= 1e-6).all()


def test_als_fold_in_equals_implicits_recalculate_user(listens: Interactions) -> None:
    model = Als(ALS)
    model.fit(listens)
    rows = np.random.default_rng(1).choice(len(listens.user_ids), size=500, replace=False)
    top = recommend(model, listens, rows, K, model.track_ids)

    # implicit's own path: fold in with recalculate_user, top k with the played tracks filtered
    user_items = listens.on_tracks(model.track_ids)
    weighted = model._weighted(user_items)[rows]
    with threadpool_limits(1, "blas"):
        factors = model.model.recalculate_user(np.arange(len(rows)), weighted)
        columns, scores = topk(
            model.model.item_factors, factors, K, filter_query_items=user_items[rows]
        )
    np.testing.assert_allclose(top.scores, scores, rtol=1e-4, atol=1e-5)
    # the same tracks, except where two scores tie within float tolerance
    assert (top.track_ids == model.track_ids[columns]).mean() > 0.99


def test_cold_start_is_the_genre_s_most_listened_tracks_the_user_has_not_played(
    listens: Interactions, catalogue: dict[int, list[str]]
) -> None:
    model = MODEL_KINDS["popularity"]({})
    model.fit(listens)
    genre = "Rock"
    by_listeners = sorted(
        (track for track in model.track_ids.tolist() if genre in catalogue[track]),
        key=lambda track: (-model.listener_counts[np.searchsorted(model.track_ids, track)], track),
    )
    # the first user has played three of the genre's five most listened tracks
    played_tracks = [by_listeners[0], by_listeners[2], by_listeners[4]]
    columns = np.searchsorted(model.track_ids, played_tracks)
    played = sp.csr_matrix(
        (np.ones(3, dtype=np.float32), ([0, 0, 0], columns)), shape=(2, len(model.track_ids))
    )
    tracks, scores = cold_start(model, [genre, genre], catalogue, K, played)

    unplayed = [track for track in by_listeners if track not in played_tracks]
    assert tracks[0].tolist() == unplayed[:K]
    assert tracks[1].tolist() == by_listeners[:K]
    assert not np.isin(tracks[0], played_tracks).any()
    assert (np.diff(scores, axis=1) <= 0).all()


def test_scoring_reports_progress_to_the_log_and_the_callback(
    listens: Interactions, caplog: pytest.LogCaptureFixture
) -> None:
    model = MODEL_KINDS["popularity"]({})
    model.fit(listens)
    rows = np.arange(len(listens.user_ids))
    messages: list[str] = []
    progress = Progress(messages.append, every_seconds=0.0)  # report at every batch
    caplog.set_level(logging.INFO, logger="moovitamix.recommender")
    progress.step("scoring", total=len(rows), unit="users")
    batches = recommend_batches(model, listens, rows, K, model.track_ids, progress, 12_000)
    assert [len(batch) for batch, _ in batches] == [12_000, 12_000, 6_000]

    assert messages[0] == "scoring: 30,000 users"
    assert messages[1].startswith("scoring: 12,000/30,000 users, ")
    assert messages[1].endswith(" s remaining")
    assert messages[2].startswith("scoring: 24,000/30,000 users, ")
    assert messages[3].startswith("scoring: 30,000/30,000 users, ")
    assert "remaining" not in messages[3]
    assert [r.getMessage() for r in caplog.records if r.name == "moovitamix.recommender"] == (
        messages
    )

    # at the default interval a run this short reports only its sub-step
    quiet: list[str] = []
    progress = Progress(quiet.append)
    progress.step("scoring", total=len(rows), unit="users")
    for _ in recommend_batches(model, listens, rows, K, model.track_ids, progress, 12_000):
        pass
    assert quiet == ["scoring: 30,000 users"]
