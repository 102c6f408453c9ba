"""Popularity's and co-listen's top k equal a brute-force reference at a real shape (more users
than tracks, over 11,000 tracks), heavy listeners included; tuning's tilted co-listen models
equal a fit with each exponent.

The reference scores every (user, track) densely, drops played and delisted tracks and sorts;
the fast paths never build that matrix (popularity: the rank arithmetic of
`models.first_unplayed`; co-listen: implicit's scorer called per user on the CSR arrays, one
thread per core).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recommender.data import Interactions
from recommender.models import CoListen, Popularity, recommend

USERS, TRACKS, K = 14_000, 11_000, 20
HEAVY = 3_000  # tracks played by the heaviest listener


@pytest.fixture(scope="module")
def listens() -> Interactions:
    """About 15 tracks per user in taste groups of 500 tracks (so tracks have neighbours),
    Zipf-like popularity, counts 1 to 5, and one user who played 3,000 tracks."""
    rng = np.random.default_rng(3)
    per_user = rng.integers(1, 30, size=USERS)
    users = np.repeat(np.arange(USERS), per_user)
    group = rng.integers(0, TRACKS // 500, size=USERS)[users]
    tracks = group * 500 + (rng.zipf(1.3, size=len(users)) % 500)
    users = np.concatenate([users, np.zeros(HEAVY, dtype=np.int64)])
    tracks = np.concatenate([tracks, rng.choice(TRACKS, size=HEAVY, replace=False)])
    counts = rng.integers(1, 6, size=len(users)).astype(np.float32)
    return Interactions.from_pairs(users * 3 + 1, tracks * 7 + 2, counts)


def reference(
    scores: np.ndarray, played: sp.csr_matrix, allowed: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """(columns, scores) of the k best positive unplayed allowed columns of each dense row,
    best first, ties by column; -1 / -inf past the end."""
    scores = np.where(allowed, scores, -np.inf)
    scores[played.nonzero()] = -np.inf
    scores[scores <= 0] = -np.inf
    columns = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    best = np.take_along_axis(scores, columns, axis=1)
    return np.where(np.isfinite(best), columns, -1), best


def test_the_shape_is_real_and_one_user_is_heavy(listens: Interactions) -> None:
    users, tracks = listens.matrix.shape
    assert users > tracks > 10_000
    assert np.diff(listens.matrix.indptr).max() >= HEAVY


def test_popularity_top_k_equals_the_brute_force_reference(listens: Interactions) -> None:
    model = Popularity({})
    model.fit(listens)
    delisted = model.track_ids[::13]
    catalogue = np.setdiff1d(model.track_ids, delisted)
    rows = np.arange(len(listens.user_ids))
    top = recommend(model, listens, rows, K, catalogue)

    # every user scored in batches; the heaviest listener and 2,000 others checked
    sample = np.concatenate([[0], np.random.default_rng(2).choice(rows, 2000, replace=False)])
    played = listens.on_tracks(model.track_ids)[sample]
    # popularity's score is the listener count, ties broken by the smaller track id (column)
    tie_break = 0.5 - np.arange(len(model.track_ids)) / len(model.track_ids) / 4
    dense = np.tile(model.listener_counts + tie_break, (len(sample), 1))
    columns, _ = reference(dense, played, np.isin(model.track_ids, catalogue), K)
    expected = np.where(columns >= 0, model.track_ids[columns.clip(min=0)], -1)
    np.testing.assert_array_equal(top.track_ids[sample], expected)
    assert (top.track_ids[0] >= 0).all()


@pytest.mark.parametrize("exponent", [0.0, 0.2])
def test_co_listen_top_k_equals_the_brute_force_reference(
    listens: Interactions, exponent: float
) -> None:
    model = CoListen({"neighbours": 50, "popularity_exponent": exponent})
    model.fit(listens)
    delisted = model.track_ids[::13]
    catalogue = np.setdiff1d(model.track_ids, delisted)
    rows = np.concatenate([[0], np.random.default_rng(1).choice(len(listens.user_ids), 1999)])
    top = recommend(model, listens, rows, K, catalogue)

    played = listens.on_tracks(model.track_ids)[rows]
    allowed = np.isin(model.track_ids, catalogue)
    dense = (played @ model.model.similarity).toarray()
    columns, scores = reference(dense, played, allowed, K)
    served = top.track_ids >= 0
    np.testing.assert_array_equal(served, columns >= 0)
    np.testing.assert_allclose(top.scores[served], scores[served], rtol=1e-12)
    # each served track scores what the reference gives it, unplayed and listed: the same
    # tracks as the reference's but where scores tie exactly (equal listener sets)
    chosen = np.searchsorted(model.track_ids, top.track_ids)  # -1 (not served) at 0
    eligible = np.where(allowed, dense, -np.inf)
    eligible[played.nonzero()] = -np.inf
    np.testing.assert_allclose(
        np.take_along_axis(eligible, chosen, axis=1)[served], top.scores[served], rtol=1e-12
    )
    assert all(len(set(row[row >= 0])) == (row >= 0).sum() for row in top.track_ids)
    assert served[0].all() and served.sum() > len(rows) * K * 0.9


def test_tuning_s_tilted_models_equal_a_fit_with_each_exponent(listens: Interactions) -> None:
    plain = CoListen({"neighbours": 50, "popularity_exponent": 0.0})
    plain.fit(listens)
    for exponent in (0.1, 0.3):
        fitted = CoListen({"neighbours": 50, "popularity_exponent": exponent})
        fitted.fit(listens)
        tilted = plain.tilted(exponent)

        assert tilted.params == fitted.params
        ours, theirs = tilted.model.similarity, fitted.model.similarity
        np.testing.assert_array_equal(ours.indptr, theirs.indptr)
        np.testing.assert_array_equal(ours.indices, theirs.indices)
        np.testing.assert_array_equal(ours.data, theirs.data)
        rows = np.arange(0, len(listens.user_ids), 7)
        np.testing.assert_array_equal(
            recommend(tilted, listens, rows, K, tilted.track_ids).track_ids,
            recommend(fitted, listens, rows, K, fitted.track_ids).track_ids,
        )
