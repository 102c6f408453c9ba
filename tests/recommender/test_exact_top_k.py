"""Popularity's and co-listen's top k equal a brute-force reference at a real shape (more users
than tracks, over 11,000 tracks), heavy listeners included; tuning's tilted co-listen models
equal a fit with each exponent.

The reference scores every (user, track) densely, drops played and delisted tracks and sorts;
the fast paths never build that matrix (popularity: the rank arithmetic of
`models.first_unplayed`; co-listen: the compiled batch kernel of recommender/kernels.py, on
every core).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recommender.data import Interactions
from recommender.kernels import co_listen_top_k
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
    # the same tracks in the same order (ties by the smaller track id), the same scores to
    # the last bit: the kernel sums each score in the order SciPy's product does
    expected = np.where(columns >= 0, model.track_ids[columns.clip(min=0)], -1)
    np.testing.assert_array_equal(top.track_ids, expected)
    np.testing.assert_array_equal(top.scores[served], scores[served])
    assert served[0].all() and served.sum() > len(rows) * K * 0.9
    assert (scores[:, :-1][served[:, 1:]] == scores[:, 1:][served[:, 1:]]).any()  # ties met


def test_co_listen_kernel_skips_played_and_unscored_tracks_and_breaks_ties_by_track() -> None:
    # tracks 0..4; user 0 played 0 (twice) and 1, user 1 played 4, user 2 nothing
    played = sp.csr_matrix((np.array([2.0, 1.0, 1.0]), ([0, 0, 1], [0, 1, 4])), shape=(3, 5))

    def top(similarity: np.ndarray, rows: list[int], k: int) -> tuple[np.ndarray, np.ndarray]:
        matrix = sp.csr_matrix(similarity)
        return co_listen_top_k(
            np.array(rows),
            played.indptr.astype(np.int64),
            played.indices,
            played.data.astype(np.float64),
            matrix.indptr.astype(np.int64),
            matrix.indices,
            matrix.data,
            k,
        )

    similarity = np.zeros((5, 5))
    similarity[0, 1:4] = [0.5, 0.25, 0.25]  # 1 is played; 2 and 3 score 2 x 0.25
    similarity[1, 3:] = [0.5, -1.0]  # 3 then beats 2; 4 scores below 0: no recommendation
    columns, scores = top(similarity, [0, 1, 2, 0], 3)
    assert columns.tolist() == [[3, 2, -1], [-1, -1, -1], [-1, -1, -1], [3, 2, -1]]
    assert scores[0, :2].tolist() == [1.0, 0.5]
    similarity[1, 3] = 0.0  # now 2 and 3 tie: the smaller track first, whatever k
    for k in (1, 2):
        assert top(similarity, [0], k)[0].tolist() == [[2, 3][:k]]
    # compiled code reads without bounds checks: a row past the matrix, or k = 0, is refused
    for rows, k in (([3], 1), ([-1], 1), ([0], 0)):
        with pytest.raises(ValueError, match="co_listen_top_k"):
            top(similarity, rows, k)


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
