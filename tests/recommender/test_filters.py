"""What scoring never serves, for every model kind (not only the champion's): a played track, a
track gone from the catalogue; what it serves a user it knows nothing of; and the cold start,
alone and in the rows scoring writes (on a tiny warehouse, tests/recommender/tiny.py).

Small and in memory (a 300-user world, models fitted in well under a second), so that
`make mutation` runs them once per mutant of recommender/models.py.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import ClassVar

import duckdb
import numpy as np
import pyarrow as pa
import pytest
import scipy.sparse as sp
from implicit.cpu.topk import topk
from implicit.nearest_neighbours import bm25_weight
from threadpoolctl import threadpool_info, threadpool_limits

from dev_api.world import World
from recommender import models, scoring
from recommender.data import PAIR_KEY, Interactions
from recommender.models import (
    _NO_SCORE,
    MODEL_KINDS,
    Als,
    CoListen,
    Model,
    Popularity,
    _gram,
    fold_in,
    load,
    pruned_top_k,
    recommend,
    recommend_batches,
)
from recommender.progress import Progress
from recommender.scoring import Tally, cold_start, recommendation_batches, recommendations_table
from recommender.settings import Settings
from tests.recommender.tiny import world_catalogue, world_listens, write_warehouse
from tests.support import query

K = 10
ALS = {
    "factors": 8,
    "regularization": 0.05,
    "alpha": 2.0,
    "iterations": 4,
    "bm25_k1": 50.0,  # not implicit's defaults (100, 0.8): the configured ones must apply
    "bm25_b": 0.5,
    "random_state": 7,
}
PARAMS = {"popularity": {}, "co_listen": {"neighbours": 50}, "als": ALS}


@pytest.fixture(scope="module")
def world() -> World:
    return World(seed=5, users=300, tracks=150, listens=12)


@pytest.fixture(scope="module")
def listens(world: World) -> Interactions:
    return world_listens(world)


@pytest.fixture(scope="module", params=sorted(PARAMS))
def fitted(request: pytest.FixtureRequest, listens: Interactions) -> Model:
    model = MODEL_KINDS[request.param](PARAMS[request.param])
    model.fit(listens)
    return model


def played_keys(listens: Interactions) -> np.ndarray:
    played = listens.matrix.tocoo()
    return listens.user_ids[played.row] * PAIR_KEY + listens.track_ids[played.col]


def test_every_model_kind_never_serves_a_played_or_delisted_track(
    fitted: Model, listens: Interactions
) -> None:
    delisted = fitted.track_ids[::7]  # tracks gone from the catalogue since the fit
    catalogue = np.setdiff1d(fitted.track_ids, delisted)
    rows = np.arange(len(listens.user_ids))
    top = recommend(fitted, listens, rows, K, catalogue)

    assert len(delisted) > 10 and top.track_ids.shape == (len(rows), K)
    served = top.track_ids >= 0
    keys = listens.user_ids[rows][:, None] * PAIR_KEY + top.track_ids
    assert served.sum() > len(rows) * K // 2
    assert not np.isin(keys[served], played_keys(listens)).any()
    assert not np.isin(top.track_ids[served], delisted).any()
    assert np.isin(top.track_ids[served], catalogue).all()
    # distinct tracks, best first, NaN exactly where nothing is served
    assert all(len(set(row[row >= 0])) == (row >= 0).sum() for row in top.track_ids)
    assert np.isnan(top.scores[~served]).all() and not np.isnan(top.scores[served]).any()
    assert (np.diff(np.nan_to_num(top.scores, nan=-1e300), axis=1) <= 1e-6).all()


@pytest.mark.parametrize("kind", ["popularity", "als"])
def test_popularity_and_als_fill_every_slot_when_enough_tracks_are_unplayed(
    kind: str, listens: Interactions
) -> None:
    model = MODEL_KINDS[kind](PARAMS[kind])  # co-listen serves only neighbours of played tracks
    model.fit(listens)
    rows = np.arange(len(listens.user_ids))
    top = recommend(model, listens, rows, K, model.track_ids)
    distinct_played = np.diff(listens.on_tracks(model.track_ids).indptr)

    assert (len(model.track_ids) - distinct_played >= K).all()
    assert (top.track_ids >= 0).all()


def test_a_user_the_model_knows_nothing_of_gets_nothing(
    fitted: Model, listens: Interactions
) -> None:
    stranger, unknown_track = listens.user_ids.max() + 1, listens.track_ids.max() + 1
    known = listens.matrix.tocoo()
    with_stranger = Interactions.from_pairs(
        np.append(listens.user_ids[known.row], stranger),
        np.append(listens.track_ids[known.col], unknown_track),
        np.append(known.data, 3.0),
    )
    rows = np.arange(len(with_stranger.user_ids))
    top = recommend(fitted, with_stranger, rows, K, fitted.track_ids)

    assert with_stranger.user_ids[-1] == stranger
    assert (top.track_ids[-1] == -1).all() and np.isnan(top.scores[-1]).all()
    assert (top.track_ids[:-1, 0] >= 0).all()


def test_batches_of_any_size_serve_the_same_and_count_every_user(
    fitted: Model, listens: Interactions
) -> None:
    rows = np.arange(0, len(listens.user_ids), 2)
    whole = recommend(fitted, listens, rows, K, fitted.track_ids)
    reports: list[str] = []
    progress = Progress(reports.append, every_seconds=0)
    progress.step("scoring", total=len(rows), unit="users")
    batches = list(
        recommend_batches(fitted, listens, rows, K, fitted.track_ids, progress, batch_users=7)
    )

    assert [len(batch) for batch, _ in batches] == [7] * (len(rows) // 7) + (
        [len(rows) % 7] if len(rows) % 7 else []
    )
    np.testing.assert_array_equal(np.concatenate([batch for batch, _ in batches]), rows)
    np.testing.assert_array_equal(
        np.concatenate([top.track_ids for _, top in batches]), whole.track_ids
    )
    assert reports[-1].startswith(f"scoring: {len(rows):,}/{len(rows):,} users")
    progress.step("evaluating", total=len(rows), unit="users")
    recommend(fitted, listens, rows, K, fitted.track_ids, progress)
    assert reports[-1].startswith(f"evaluating: {len(rows):,}/{len(rows):,} users")


def test_a_saved_model_loads_back_and_serves_the_same(
    fitted: Model, listens: Interactions, tmp_path
) -> None:
    # into a folder made with its parents, and into one that already exists
    for folder in (tmp_path / "models" / "1", tmp_path):
        fitted.save(folder)
        loaded = load(folder)
        rows = np.arange(len(listens.user_ids))

        assert (type(loaded), loaded.kind, loaded.params) == (
            type(fitted),
            fitted.kind,
            fitted.params,
        )
        np.testing.assert_array_equal(loaded.track_ids, fitted.track_ids)
        np.testing.assert_array_equal(loaded.listener_counts, fitted.listener_counts)
        assert loaded.listener_counts.dtype == fitted.listener_counts.dtype == np.float32
        before = recommend(fitted, listens, rows, K, fitted.track_ids)
        after = recommend(loaded, listens, rows, K, fitted.track_ids)
        np.testing.assert_array_equal(after.track_ids, before.track_ids)
        np.testing.assert_allclose(after.scores, before.scores, rtol=1e-5)


def test_popularity_serves_the_most_listened_unplayed_tracks(listens: Interactions) -> None:
    model = Popularity({})
    model.fit(listens)
    pairs = listens.matrix.tocoo()
    listeners: dict[int, set[int]] = {}
    for row, column in zip(pairs.row, pairs.col, strict=True):
        listeners.setdefault(int(listens.track_ids[column]), set()).add(int(row))
    ranking = sorted(listeners, key=lambda track: (-len(listeners[track]), track))
    rows = np.arange(0, len(listens.user_ids), 9)
    top = recommend(model, listens, rows, K, model.track_ids)

    assert [listeners[int(t)].__len__() for t in model.track_ids] == model.listener_counts.tolist()
    assert model.listener_counts.dtype == np.float32
    for row, served in zip(rows, top.track_ids.tolist(), strict=True):
        mine = set(listens.track_ids[listens.matrix[row].indices].tolist())
        assert served == [track for track in ranking if track not in mine][:K]


def test_the_co_listen_tilt_multiplies_scores_by_listeners_plus_one_to_the_exponent(
    listens: Interactions,
) -> None:
    plain, tilted = (
        CoListen({"neighbours": 50}),
        CoListen({"neighbours": 50, "popularity_exponent": 0.5}),
    )
    plain.fit(listens)
    tilted.fit(listens)
    rows = np.arange(0, len(listens.user_ids), 5)
    wide = len(plain.track_ids)
    a = recommend(plain, listens, rows, wide, plain.track_ids)
    b = recommend(tilted, listens, rows, wide, plain.track_ids)
    listeners = dict(zip(plain.track_ids.tolist(), plain.listener_counts.tolist(), strict=True))

    compared = 0
    for tracks_a, scores_a, tracks_b, scores_b in zip(
        a.track_ids, a.scores, b.track_ids, b.scores, strict=True
    ):
        score_a = {
            t: s for t, s in zip(tracks_a.tolist(), scores_a.tolist(), strict=True) if t >= 0
        }
        for track, score in zip(tracks_b.tolist(), scores_b.tolist(), strict=True):
            if track >= 0 and track in score_a:
                tilt = (listeners[track] + 1) ** 0.5
                assert score == pytest.approx(score_a[track] * tilt, rel=1e-4)
                compared += 1
    assert compared > len(rows) * K


def test_als_is_seeded_reports_each_iteration_and_folds_in_like_implicit(
    listens: Interactions,
) -> None:
    first, second = Als(ALS), Als(ALS)
    reports: list[str] = []
    progress = Progress(reports.append, every_seconds=0)
    progress.step("fitting", total=ALS["iterations"], unit="iterations")
    first.fit(listens, progress)
    second.fit(listens)
    rows = np.arange(0, len(listens.user_ids), 3)
    top = recommend(first, listens, rows, K, first.track_ids)
    # implicit's own path: fold in with recalculate_user, top k with the played tracks filtered
    user_items = listens.on_tracks(first.track_ids)
    weighted = first._weighted(user_items)[rows]
    with threadpool_limits(1, "blas"):
        factors = first.model.recalculate_user(np.arange(len(rows)), weighted)
        columns, scores = topk(
            first.model.item_factors, factors, K, filter_query_items=user_items[rows]
        )

    np.testing.assert_array_equal(first.model.item_factors, second.model.item_factors)
    # fitted with the hyper-parameters given, not implicit's defaults
    weighted = first._weighted(listens.matrix)
    expected = bm25_weight(listens.matrix, K1=ALS["bm25_k1"], B=ALS["bm25_b"]).tocsr()
    assert weighted.dtype == np.float32
    np.testing.assert_allclose(weighted.toarray(), expected.toarray(), rtol=1e-6)
    assert first.model.item_factors.shape == (len(first.track_ids), ALS["factors"])
    assert (first.model.regularization, first.model.alpha, first.model.iterations) == (
        ALS["regularization"],
        ALS["alpha"],
        ALS["iterations"],
    )
    assert reports[-1].startswith(f"fitting: {ALS['iterations']}/{ALS['iterations']} iterations")
    assert first.model.user_factors is None
    np.testing.assert_allclose(top.scores, scores, rtol=1e-4, atol=1e-5)
    assert (top.track_ids == first.track_ids[columns]).mean() > 0.99


def test_cold_start_serves_the_genre_s_most_listened_unplayed_listed_tracks(
    world: World, listens: Interactions
) -> None:
    model = Popularity({})
    model.fit(listens)
    catalogue = world_catalogue(world)
    delisted = int(model.track_ids[np.argmax(model.listener_counts)])  # the most listened
    listed = {track: genres for track, genres in catalogue.items() if track != delisted}
    counts = dict(zip(model.track_ids.tolist(), model.listener_counts.tolist(), strict=True))
    genre = max(
        {g for genres in listed.values() for g in genres},
        key=lambda g: sum(g in genres for genres in listed.values()),
    )
    ranked = sorted(
        (t for t in model.track_ids.tolist() if t in listed),
        key=lambda track: (-counts[track], track),
    )
    in_genre = [track for track in ranked if genre in listed[track]]
    played_tracks = in_genre[:2]
    played = sp.csr_matrix(
        (np.ones(2, dtype=np.float32), ([0, 0], np.searchsorted(model.track_ids, played_tracks))),
        shape=(3, len(model.track_ids)),
    )
    tracks, scores = cold_start(model, [genre, genre, None], listed, K, played)

    assert len(in_genre) > K + 2
    assert tracks[0].tolist() == in_genre[2 : K + 2]
    assert tracks[1].tolist() == in_genre[:K]
    assert tracks[2].tolist() == ranked[:K]  # no favourite genre: every genre
    assert delisted not in tracks
    assert scores[0].tolist() == [counts[track] for track in in_genre[2 : K + 2]]


def test_a_small_genre_gives_fewer_cold_start_tracks_and_no_more(
    world: World, listens: Interactions
) -> None:
    model = Popularity({})
    model.fit(listens)
    catalogue = world_catalogue(world)
    few = [int(track) for track in model.track_ids[:3]]
    tagged = {t: (["Tiny"] if t in few else genres) for t, genres in catalogue.items()}
    played = sp.csr_matrix((1, len(model.track_ids)), dtype=np.float32)
    tracks, scores = cold_start(model, ["Tiny"], tagged, K, played)

    assert sorted(tracks[0, :3].tolist()) == sorted(few)
    assert (tracks[0, 3:] == -1).all() and np.isnan(scores[0, 3:]).all()


def test_no_users_and_an_empty_catalogue_serve_nothing(
    fitted: Model, listens: Interactions
) -> None:
    rows = np.arange(len(listens.user_ids))
    none = recommend(fitted, listens, rows[:0], K, fitted.track_ids)
    delisted = recommend(fitted, listens, rows, K, np.empty(0, dtype=np.int64))

    assert (none.track_ids.shape, none.scores.shape) == ((0, K), (0, K))
    assert (none.track_ids.dtype, none.scores.dtype) == (np.int64, np.float64)
    assert delisted.track_ids.shape == (len(rows), K)
    assert (delisted.track_ids == -1).all() and np.isnan(delisted.scores).all()


def test_fitting_warns_and_prints_nothing(
    fitted: Model, listens: Interactions, capfd: pytest.CaptureFixture[str]
) -> None:
    """implicit's progress bars and warnings stay out of the night's output."""
    model = MODEL_KINDS[fitted.kind](PARAMS[fitted.kind])
    capfd.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.fit(listens)
    assert capfd.readouterr() == ("", "")
    np.testing.assert_array_equal(model.track_ids, listens.track_ids)


def api_threads(api: str) -> int:
    threads = {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == api}
    assert len(threads) == 1, threadpool_info()
    return threads.pop()


class ThreadProbe(Popularity):
    """Popularity that records the BLAS and OpenMP threads it fits, loads and scores with."""

    kind = "thread_probe"
    seen: ClassVar[list[tuple[str, int, int]]] = []

    def _record(self, stage: str) -> None:
        self.seen.append((stage, api_threads("blas"), api_threads("openmp")))

    def _fit(self, matrix: sp.csr_matrix, progress: Progress | None) -> None:
        self._record("fit")

    def _load(self, folder: Path) -> None:
        self._record("load")

    def _scorer(self, user_items: sp.csr_matrix, k: int, banned: np.ndarray):
        self._record("scorer")
        score = super()._scorer(user_items, k, banned)

        def recorded(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            self._record("score")
            return score(rows)

        return recorded


def test_fit_load_and_scoring_limit_blas_to_one_thread_and_leave_openmp_alone(
    listens: Interactions, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """implicit's OpenMP threads do the work; BLAS threads on top only oversubscribe."""
    monkeypatch.setitem(MODEL_KINDS, ThreadProbe.kind, ThreadProbe)
    monkeypatch.setattr(ThreadProbe, "seen", [])
    model = ThreadProbe({})
    with threadpool_limits(3):
        model.fit(listens)
        model.save(tmp_path)
        loaded = load(tmp_path)
        top = recommend(loaded, listens, np.arange(len(listens.user_ids)), K, model.track_ids)
        outside = (api_threads("blas"), api_threads("openmp"))

    assert outside == (3, 3)
    assert ThreadProbe.seen == [(stage, 1, 3) for stage in ("fit", "load", "scorer", "score")]
    assert (top.track_ids[:, 0] >= 0).all()


def test_an_als_artifact_without_bm25_statistics_weighs_with_the_matrix_it_is_given(
    listens: Interactions, tmp_path: Path
) -> None:
    """An artifact saved before the statistics were kept: implicit's bm25_weight over the
    users scored, with the configured K1 and B, and so no incremental scoring."""
    model = Als(ALS)
    model.fit(listens)
    model.save(tmp_path / "old")
    (tmp_path / "old" / "bm25.npz").unlink()
    old = load(tmp_path / "old")
    model.save(tmp_path / "current")
    current = load(tmp_path / "current")
    # users with different numbers of listens: B weighs a user's length against the mean
    half = (sp.diags(np.arange(len(listens.user_ids))[::2] % 5 + 1.0) @ listens.matrix[::2]).tocsr()
    expected = bm25_weight(half, K1=ALS["bm25_k1"], B=ALS["bm25_b"]).tocsr()

    assert (old.idf, old.average_length, old.scores_each_user_alone) == (None, None, False)
    assert current.scores_each_user_alone and model.scores_each_user_alone
    np.testing.assert_allclose(current.idf, model.idf)
    assert current.average_length == model.average_length
    weighted = old._weighted(half)
    assert weighted.dtype == np.float32 and weighted.shape == half.shape
    np.testing.assert_allclose(weighted.toarray(), expected.toarray(), rtol=1e-6)
    # a user with no listens at the end keeps their (empty) row
    with_silent = sp.vstack([half, sp.csr_matrix((1, half.shape[1]), dtype=np.float32)]).tocsr()
    assert (
        current._weighted(with_silent).shape
        == old._weighted(with_silent).shape
        == (with_silent.shape)
    )
    # the kept statistics: BM25 with the training matrix's idf and mean length, row by row
    k1, b = ALS["bm25_k1"], ALS["bm25_b"]
    rows_of = np.repeat(np.arange(half.shape[0]), np.diff(half.indptr))
    norm = (1 - b) + b * np.ravel(half.sum(axis=1))[rows_of] / model.average_length
    own = half.data * (k1 + 1) / (k1 * norm + half.data) * model.idf[half.indices]
    np.testing.assert_allclose(current._weighted(half).data, own, rtol=1e-5)
    last_unplayed = (half @ sp.diags((np.arange(half.shape[1]) < half.shape[1] - 1) * 1.0)).tocsr()
    last_unplayed.eliminate_zeros()
    assert last_unplayed[:, -1].nnz == 0 < half[:, -1].nnz
    assert current._weighted(last_unplayed).shape == last_unplayed.shape
    # ... which differ from this half's own statistics
    assert not np.allclose(current._weighted(half).toarray(), expected.toarray(), rtol=1e-3)


def test_pruned_top_k_is_the_exact_top_k_of_the_unplayed_allowed_items(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Against every score computed: items spread over several chunks, norms as skewed as
    popularity makes them, the users' best items played, a user with fewer than k left."""
    # chunks of 1,500 items while all 40 users are active, larger as they are done
    monkeypatch.setattr(models, "_TOP_K_CELLS", 60_000)
    rng = np.random.default_rng(11)
    items, users, k = 3000, 40, 100  # above 40, NumPy's partition no longer sorts as it goes
    item_factors = (
        rng.normal(size=(items, 6)) * (rng.pareto(1.5, size=items)[:, None] + 0.05)
    ).astype(np.float32)
    # the largest norms: item 1 (which every user played), then item 0
    largest = np.linalg.norm(item_factors, axis=1).max()
    scale = largest * np.array([1.5, 2.0]) / np.linalg.norm(item_factors[:2], axis=1)
    item_factors[:2] *= scale[:, None]
    user_factors = rng.normal(size=(users, 6)).astype(np.float32)
    norms = np.linalg.norm(item_factors.astype(np.float64), axis=1)
    allowed = np.ones(items, dtype=bool)
    allowed[5::9] = False  # banned
    by_norm = np.argsort(-norms, kind="stable")
    by_norm = by_norm[allowed[by_norm]]
    every = user_factors.astype(np.float64) @ item_factors.T.astype(np.float64)
    best = np.argsort(-np.where(allowed, every, -np.inf), axis=1)
    played_sets = [
        set(best[user, : user % 4].tolist()) | {int(by_norm[0])} for user in range(users)
    ]
    played_sets[-1] = set(by_norm[: len(by_norm) - 3].tolist())  # only three allowed items left
    played = sp.csr_matrix(
        (
            np.ones(sum(map(len, played_sets)), dtype=np.float32),
            np.concatenate([sorted(mine) for mine in played_sets]).astype(np.int32),
            np.concatenate([[0], np.cumsum([len(mine) for mine in played_sets])]),
        ),
        shape=(users, items),
    )
    columns, scores = pruned_top_k(user_factors, item_factors, by_norm, norms[by_norm], played, k)

    assert columns.shape == scores.shape == (users, k)
    assert len(by_norm) > 1500 and by_norm[:2].tolist() == [1, 0]
    assert (columns == 0).sum() >= 5  # item 0 is served: an index of 0 is an item
    for user, mine in enumerate(played_sets):
        candidates = [item for item in best[user].tolist() if allowed[item] and item not in mine]
        expected = candidates[:k]
        served = columns[user][columns[user] >= 0]
        assert len(served) == len(expected) == (3 if user == users - 1 else k)
        assert set(served.tolist()).isdisjoint(mine) and allowed[served].all()
        np.testing.assert_allclose(
            np.sort(scores[user][columns[user] >= 0])[::-1], every[user, expected], rtol=1e-5
        )
        assert (scores[user][columns[user] < 0] == _NO_SCORE).all()
    assert (columns[-1] == -1).sum() == k - 3
    # without that user, everyone is done before the last chunk: the same top k
    done_early = pruned_top_k(
        user_factors[:-1], item_factors, by_norm, norms[by_norm], played[:-1], k
    )
    np.testing.assert_array_equal(done_early[0], columns[:-1])


def test_fold_in_solves_each_user_like_implicit_s_recalculate_user(
    listens: Interactions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Users with 0, 1, 2 and many listens, confidences below 1, 0 and negative (BM25 gives
    those), several groups of each length."""
    model = Als(ALS)
    model.fit(listens)
    rng = np.random.default_rng(3)
    tracks = len(model.track_ids)
    lengths = [0, 1, 1, 1, 2, 2, 2, 2, 7, 7, 7, 7, 7, 0, 1]
    indices = [np.sort(rng.choice(tracks, size=n, replace=False)) for n in lengths]
    data = rng.choice([-0.7, 0.3, 0.9, 1.0, 2.5, 6.0], size=sum(lengths)).astype(np.float32)
    confidence = sp.csr_matrix(
        (data, np.concatenate(indices).astype(np.int32), np.cumsum([0, *lengths])),
        shape=(len(lengths), tracks),
    )
    monkeypatch.setattr(models, "_FOLD_IN_CELLS", 2 * 7 * ALS["factors"])  # two users a group
    item_factors = model.model.item_factors
    mine = fold_in(
        item_factors, _gram(item_factors, ALS["regularization"]), confidence * ALS["alpha"]
    )
    with threadpool_limits(1, "blas"):
        implicit = model.model.recalculate_user(np.arange(len(lengths)), confidence)

    assert mine.dtype == item_factors.dtype == np.float32
    assert (mine[np.array(lengths) == 0] == 0).all()
    assert (np.abs(mine[np.array(lengths) > 0]).sum(axis=1) > 0).all()
    np.testing.assert_allclose(mine, implicit, rtol=1e-3, atol=1e-5)


def test_als_scores_are_float64_dot_products_of_the_folded_in_factors(
    listens: Interactions,
) -> None:
    """Recomputed one by one, so a user's scores do not depend on who is scored beside them."""
    model = Als(ALS)
    model.fit(listens)
    rows = np.arange(0, len(listens.user_ids), 4)
    wide = 100  # above 40, NumPy's partition no longer sorts as it goes: the sort must
    top = recommend(model, listens, rows, wide, model.track_ids)
    weighted = model._weighted(listens.on_tracks(model.track_ids)) * ALS["alpha"]
    item_factors = model.model.item_factors
    factors = fold_in(item_factors, _gram(item_factors, ALS["regularization"]), weighted[rows])
    columns = np.searchsorted(model.track_ids, top.track_ids)
    expected = np.einsum(
        "uf,ukf->uk", factors.astype(np.float64), item_factors[columns].astype(np.float64)
    )

    assert (top.track_ids >= 0).all()
    np.testing.assert_allclose(top.scores, expected, rtol=1e-12)
    assert (np.diff(top.scores, axis=1) <= 0).all()


def scoring_warehouse(path: Path, world: World, model: Model, solo: list[int]) -> dict[str, int]:
    """The tiny warehouse of `world`, edited as nights change it: a few tracks delisted, the
    `solo` tracks (the model's last, which only one training user played, and two popular
    ones) in a genre "Solo"; users who signed up with no listens (a genre, none, one without
    tracks), one who played only a track the model does not know, one who played only the
    model's lone track, and a listener gone from dim_users. The users, by what they are."""
    write_warehouse(path, world)
    tracks = model.track_ids.tolist()
    listeners = sorted({u for (u,) in query(path, "select user_id from marts.fct_user_tracks")})
    assert listeners[0] > 1
    users = {
        "signed up": 900001,
        "no genre": 900002,
        "genre without tracks": 900003,
        "unknown track": 900004,
        "signed up, solo": 900006,
        "lone track": 1,  # the first user of the listens: a position of 0
        "gone": listeners[5],
    }
    with duckdb.connect(str(path)) as connection:
        connection.execute(
            "insert into marts.dim_tracks values (?, ['Solo'])", [solo[0]]
        )  # the lone track was never in the world's catalogue
        connection.execute(
            "update marts.dim_tracks set genres = list_append(genres, 'Solo') "
            "where track_id in (?, ?)",
            solo[1:],
        )
        delisted = [t for t in tracks[::20] if t not in solo]
        connection.execute(
            f"delete from marts.dim_tracks where track_id in ({', '.join(map(str, delisted))})"
        )
        connection.execute(
            "insert into marts.dim_users values (900001, (select min(g) from (select "
            "unnest(genres) as g from marts.dim_tracks))), (900002, null), (900003, 'Nowhere'), "
            "(900004, 'Solo'), (1, 'Solo'), (900006, 'Solo')"
        )
        connection.execute(
            "insert into marts.fct_user_tracks values (900004, 999999, 2), (1, ?, 1)",
            [solo[0]],
        )
        connection.execute("delete from marts.dim_users where user_id = ?", [users["gone"]])
    return users


@pytest.mark.parametrize("kind", sorted(PARAMS))
def test_scoring_rows_are_the_model_s_or_a_cold_start_never_a_played_or_delisted_track(
    kind: str, world: World, listens: Interactions, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a training user who alone played a track no one else did: co-listen has no neighbour for it
    # (track id 0: the model's first column, and an id like any other)
    loner, lone = int(listens.user_ids.max()) + 1, 0
    known = listens.matrix.tocoo()
    trained = Interactions.from_pairs(
        np.append(listens.user_ids[known.row], loner),
        np.append(listens.track_ids[known.col], lone),
        np.append(known.data, 1.0),
    )
    model = MODEL_KINDS[kind](PARAMS[kind])
    model.fit(trained)
    counts = dict(zip(model.track_ids.tolist(), model.listener_counts.tolist(), strict=True))
    ranked = sorted(counts, key=lambda track: (-counts[track], track))
    solo = [lone, *ranked[1:3]]
    warehouse = tmp_path / "warehouse.duckdb"
    users = scoring_warehouse(warehouse, world, model, solo)
    settings = Settings(duckdb_path=warehouse, models_dir=tmp_path / "models", top_k=K)
    monkeypatch.setattr(scoring, "BATCH_USERS", 2)  # cold starts in batches of two users
    reports: list[str] = []
    tally = Tally()
    generated_at = np.datetime64("2026-01-02T03:04:05.000006", "us")
    tables = list(
        recommendation_batches(
            model,
            7,
            settings,
            Progress(reports.append, every_seconds=0),
            tally,
            generated_at=generated_at,
        )
    )
    table = pa.concat_tables(tables)
    rows: dict[int, list[dict]] = {}
    for row in table.to_pylist():
        rows.setdefault(row["user_id"], []).append(row)

    # what each user should get, read from the marts in Python
    genres = dict(query(warehouse, "select user_id, favorite_genre from marts.dim_users"))
    catalogue = dict(query(warehouse, "select track_id, genres from marts.dim_tracks"))
    played: dict[int, set[int]] = {}
    pairs = query(warehouse, "select user_id, track_id, listen_count from marts.fct_user_tracks")
    for user, track, _ in pairs:
        played.setdefault(user, set()).add(track)
    history = Interactions.from_pairs(*(np.array(column) for column in zip(*pairs, strict=True)))
    current = sorted(genres)
    served = recommend(
        model,
        history,
        np.flatnonzero(np.isin(history.user_ids, current)),
        K,
        np.array(sorted(catalogue)),
    )
    warm = {
        int(user): [(int(t), float(s)) for t, s in zip(top, scores, strict=True) if t >= 0]
        for user, top, scores in zip(
            history.user_ids[np.isin(history.user_ids, current)],
            served.track_ids,
            served.scores,
            strict=True,
        )
        if top[0] >= 0
    }
    listed = [track for track in ranked if track in catalogue]

    def cold(user: int) -> list[tuple[int, float]]:
        genre = genres[user]
        in_genre = [track for track in listed if genre in catalogue[track]] or listed
        mine = played.get(user, set())
        return [(track, counts[track]) for track in in_genre if track not in mine][:K]

    assert set(rows) == set(current) and users["gone"] not in rows
    for user in current:
        mine = rows[user]
        expected = warm.get(user) or cold(user)
        assert [r["track_id"] for r in mine] == [track for track, _ in expected]
        assert [r["score"] for r in mine] == pytest.approx([s for _, s in expected], rel=1e-9)
        assert [r["rank"] for r in mine] == list(range(1, len(mine) + 1))
        assert {(r["model_version"], r["is_cold_start"], r["generated_at"]) for r in mine} == {
            (7, user not in warm, generated_at.astype(object))
        }
        assert not {r["track_id"] for r in mine} & played.get(user, set())
        assert {r["track_id"] for r in mine} <= set(catalogue)
    # the constructed cases are what they claim to be
    cold_users = set(current) - set(warm)
    assert {users[what] for what in ("signed up", "no genre", "genre without tracks")} <= cold_users
    assert listens.track_ids.min() > 0 and model.track_ids[0] == lone
    for user in ("unknown track", "signed up, solo"):
        assert [r["track_id"] for r in rows[users[user]]] == [*solo[1:], lone]
    if kind == "co_listen":  # knows the lone track, has no neighbour of it to serve
        assert users["lone track"] in cold_users
        assert [r["track_id"] for r in rows[users["lone track"]]] == solo[1:]
    else:  # one listen the model knows is enough
        assert users["lone track"] not in cold_users and len(rows[users["lone track"]]) == K
    assert len(rows[users["no genre"]]) == K and rows[users["no genre"]][0]["track_id"] == listed[0]
    # batches, progress and the tally
    assert table.schema.field("rank").type == pa.int32()
    assert all(len(set(t["user_id"].to_pylist())) <= 2 for t in tables[1:])
    assert len(tables) == 1 + math.ceil(len(cold_users) / 2)
    cold_rows = sum(r["is_cold_start"] for r in table.to_pylist())
    assert (tally.rows, tally.users, tally.cold_rows) == (table.num_rows, len(current), cold_rows)
    assert reports[-1].startswith(f"scoring: {len(current):,}/{len(current):,} users")
    # every row at once (for checks on small data) is the same rows, generated now
    assert recommendations_table(model, 7, settings)["generated_at"].null_count == 0
    assert recommendations_table(model, 7, settings).drop_columns("generated_at").to_pylist() == (
        table.drop_columns("generated_at").to_pylist()
    )
    # scoring some users only gives them the very rows scoring everyone gives them
    some = np.array([*current[::7], users["lone track"], users["unknown track"]], dtype=np.int64)
    some_rows = pa.concat_tables(
        recommendation_batches(model, 7, settings, users=np.unique(some), generated_at=generated_at)
    ).to_pylist()
    assert sorted(some_rows, key=lambda r: (r["user_id"], r["rank"])) == [
        row for user in np.unique(some).tolist() for row in rows[user]
    ]


def test_als_serves_the_exact_top_k_when_its_tracks_take_several_chunks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """More tracks than one chunk of the pruned top-k holds (1,024): against every score."""
    monkeypatch.setattr(models, "_TOP_K_CELLS", 1)
    wide = world_listens(World(seed=8, users=200, tracks=4000, listens=15))
    model = Als(ALS)
    model.fit(wide)
    catalogue = np.setdiff1d(model.track_ids, model.track_ids[3::11])
    rows = np.arange(0, len(wide.user_ids), 3)
    top = recommend(model, wide, rows, K, catalogue)
    user_items = wide.on_tracks(model.track_ids)
    item_factors = model.model.item_factors
    factors = fold_in(
        item_factors,
        _gram(item_factors, ALS["regularization"]),
        model._weighted(user_items)[rows] * ALS["alpha"],
    )
    every = factors.astype(np.float64) @ item_factors.T.astype(np.float64)
    every[:, ~np.isin(model.track_ids, catalogue)] = -np.inf
    every[user_items[rows].nonzero()] = -np.inf
    best = np.argsort(-every, axis=1, kind="stable")[:, :K]

    assert len(model.track_ids) > 1024
    np.testing.assert_allclose(top.scores, np.take_along_axis(every, best, axis=1), rtol=1e-9)
    assert (top.track_ids == model.track_ids[best]).mean() > 0.99
