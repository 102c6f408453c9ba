"""The models: popularity and item-item co-listen baselines, and `implicit`'s ALS; one scoring path.

Every model is fitted on a users x tracks matrix of listen counts and keeps its own track index.
`recommend_batches` is the only way any of them is scored, for the nightly recommendations and
for the evaluation alike: it lays tonight's listens on the model's tracks and scores users in
batches of bounded size (memory bounded whatever the number of users, cost linear in users and
tracks), drops the played tracks and those gone from the catalogue, and returns track ids. A
model scores a user from the listens it is given, so new users and new listens count without
retraining; new tracks need a retraining.

Threads: BLAS is limited to 1 thread (threadpoolctl) in fit and scoring alike: implicit's own
OpenMP threads (one per core) run the fits, and BLAS threads on top of them only oversubscribe
the cores (measured: implicit's ALS top-k for 50,000 users over 100,000 tracks took 4.7 s with 1
BLAS thread, 7.5 s with 2, on 2 cores). Co-listen's scoring is a compiled kernel on every core
(recommender/kernels.py); ALS's fold-in and pruned top-k are NumPy on one core.
"""

from __future__ import annotations

import json
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from implicit.nearest_neighbours import CosineRecommender, bm25_weight
from implicit.utils import ParameterWarning
from threadpoolctl import threadpool_limits

from recommender.data import Interactions, positions
from recommender.progress import Progress

# implicit marks a filtered or missing slot with this score (and id -1 for item-item models)
_NO_SCORE = float(np.finfo(np.float32).min)
# users scored at once: bounds the memory of a batch (its factors, candidates and output rows)
BATCH_USERS = 10_000
# fold-in: (users x listens x factors) gathered at once, at most (float64: 64 MB)
_FOLD_IN_CELLS = 8_000_000
# pruned top-k: (users x tracks) scores computed at once, at most (float32: 32 MB, and 64 MB
# of argpartition's indices)
_TOP_K_CELLS = 8_000_000

# (columns, scores) of a batch of users, best first; -1 / _NO_SCORE past the end
Scorer = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class TopK:
    """Recommendations of a batch of users: track ids best first, -1 (score NaN) past the end."""

    track_ids: np.ndarray  # (users, k) int64
    scores: np.ndarray  # (users, k) float64

    @classmethod
    def concatenate(cls, parts: list[TopK], k: int) -> TopK:
        if not parts:
            return cls(np.empty((0, k), dtype=np.int64), np.empty((0, k)))
        return cls(
            np.concatenate([part.track_ids for part in parts]),
            np.concatenate([part.scores for part in parts]),
        )


class Model(ABC):
    """A recommender over the track index it was fitted on, saved to and loaded from a folder."""

    kind: ClassVar[str]
    # set by fit or load: the track index the model was fitted on (sorted), and the distinct
    # listeners of each track in the training data, the cold-start fallback of every model
    track_ids: np.ndarray  # int64
    listener_counts: np.ndarray  # float32

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params

    def fit(self, train: Interactions, progress: Progress | None = None) -> None:
        self.track_ids = train.track_ids
        self.listener_counts = np.diff(train.matrix.tocsc().indptr).astype(np.float32)
        with threadpool_limits(1, "blas"):  # implicit's own threads do the work (its advice)
            self._fit(train.matrix, progress)

    @property
    def scores_each_user_alone(self) -> bool:
        """True when a user's recommendations depend on nothing but this model, the catalogue
        and the user's own listens (and favourite genre, for a cold start): then a user whose
        listens did not change keeps yesterday's. Popularity and co-listen keep every
        statistic they score with in the model (listener counts, similarities)."""
        return True

    @abstractmethod
    def _fit(self, matrix: sp.csr_matrix, progress: Progress | None) -> None: ...

    @abstractmethod
    def _scorer(self, user_items: sp.csr_matrix, k: int, banned: np.ndarray) -> Scorer:
        """Scores batches of rows of `user_items` (every user, this model's columns): the top
        `k` columns of each, never one the user played nor a `banned` one."""

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "model.json").write_text(json.dumps({"kind": self.kind, "params": self.params}))
        np.savez(folder / "tracks.npz", track_ids=self.track_ids, listeners=self.listener_counts)
        self._save(folder)

    @abstractmethod
    def _save(self, folder: Path) -> None:
        """Save what the model holds beyond its track index and listener counts."""

    @abstractmethod
    def _load(self, folder: Path) -> None:
        """Read back what _save wrote."""


def first_unplayed(order: np.ndarray, played: sp.csr_matrix, k: int) -> np.ndarray:
    """For each row of `played`, the first `k` columns of `order` (one ranking for everyone,
    best first) that the row's user did not play; -1 past the end of `order`.

    Exact at the cost of the played tracks, however many a user played: with a user's played
    tracks ranked p_0 < p_1 < ... in `order`, p_i - i unplayed ones come before the i-th, so the
    j-th unplayed is at position j + #{i : p_i - i <= j}. (Scanning k + the batch's most played
    count of candidates instead costs batch x 3,000 for one user with 3,000 played tracks.)
    """
    users = played.shape[0]
    rank_of = np.full(played.shape[1], -1, dtype=np.int64)
    rank_of[order] = np.arange(len(order))
    ranks = rank_of[played.indices]
    user = np.repeat(np.arange(users), np.diff(played.indptr))
    ranked = ranks >= 0  # a played track outside `order` hides nothing
    ranks, user = ranks[ranked], user[ranked]
    by_rank = np.lexsort((ranks, user))
    ranks, user = ranks[by_rank], user[by_rank]
    first_of_user = np.searchsorted(user, np.arange(users))
    before = ranks - (np.arange(len(ranks)) - first_of_user[user])  # unplayed ones before it
    cells = user * (k + 1) + np.minimum(before, k)  # unplayed ones before it, k: k or more
    hidden = np.bincount(cells, minlength=users * (k + 1)).reshape(users, k + 1)
    position = np.arange(k) + np.cumsum(hidden[:, :k], axis=1)
    return np.append(order, -1)[np.minimum(position, len(order))]


class Popularity(Model):
    """Baseline: the tracks with the most distinct listeners, the same order for everyone."""

    kind = "popularity"

    def _fit(self, matrix: sp.csr_matrix, progress: Progress | None) -> None:
        """Nothing beyond the listener counts."""

    def _save(self, folder: Path) -> None:
        """Nothing beyond the listener counts."""

    def _load(self, folder: Path) -> None:
        """Nothing beyond the listener counts."""

    def _scorer(self, user_items: sp.csr_matrix, k: int, banned: np.ndarray) -> Scorer:
        allowed = np.ones(len(self.track_ids), dtype=bool)
        allowed[banned] = False
        order = np.lexsort((self.track_ids, -self.listener_counts))  # most listeners first
        order = order[allowed[order]]

        def score(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            columns = first_unplayed(order, user_items[rows], k)
            return columns, np.where(columns >= 0, self.listener_counts[columns], _NO_SCORE)

        return score


class CoListen(Model):
    """Baseline: item-item nearest neighbours, cosine similarity of the tracks' listeners."""

    kind = "co_listen"

    def _fit(self, matrix: sp.csr_matrix, progress: Progress | None) -> None:
        self.model = CosineRecommender(K=self.params["neighbours"])
        with warnings.catch_warnings():  # implicit hands itself a coo matrix here, and says so
            warnings.simplefilter("ignore", ParameterWarning)
            self.model.fit(matrix, show_progress=False)
        # implicit's own scorer, a C++ copy of the similarities (225 MB at 100,000 tracks), is
        # never used (see `_scorer`)
        self.model.scorer = None
        exponent = self.params.get("popularity_exponent", 0.0)
        if exponent:
            self._tilt(self.model.similarity, exponent)

    def _tilt(self, cosine: sp.csr_matrix, exponent: float) -> None:
        """A track's score leans towards popular neighbours by (listeners + 1) ** exponent: the
        listens of a taste mix its own tracks with its genre's and everyone's popular ones."""
        tilt = sp.diags((self.listener_counts.astype(np.float64) + 1.0) ** exponent)
        self.model.similarity = (cosine @ tilt).tocsr()

    def tilted(self, exponent: float) -> CoListen:
        """This untilted fit with `popularity_exponent` = `exponent`: the very model a fit with
        it gives (the neighbours are chosen on the cosine alone), without a fit."""
        assert not self.params.get("popularity_exponent"), "tilted from the plain cosine"
        other = CoListen({**self.params, "popularity_exponent": exponent})
        other.track_ids, other.listener_counts = self.track_ids, self.listener_counts
        other.model = CosineRecommender(K=self.params["neighbours"])
        other.model.similarity = self.model.similarity
        if exponent:
            other._tilt(self.model.similarity, exponent)
        return other

    def _scorer(self, user_items: sp.csr_matrix, k: int, banned: np.ndarray) -> Scorer:
        """recommender/kernels.py scores batches of users on every core; implicit's own scorer
        takes one user per call (its batch `recommend` loops over them in Python), which cost
        more than the night's extraction at 1,000,000 users."""
        # imported here: Numba takes over a second to import, which only co-listen's scoring
        # needs (a quiet night, or any other model, never pays it)
        from recommender.kernels import co_listen_top_k

        similarity = self.model.similarity
        if len(banned):  # a banned track is nobody's neighbour, so never a candidate
            allowed = np.ones(similarity.shape[1])
            allowed[banned] = 0.0
            similarity = (similarity @ sp.diags(allowed)).tocsr()
            similarity.eliminate_zeros()
        # the arrays as the compiled kernel's one signature takes them (no copy when they are)
        indptr = user_items.indptr.astype(np.int64, copy=False)
        indices = user_items.indices.astype(np.int32, copy=False)
        weights = user_items.data.astype(np.float64)
        neighbours = (
            similarity.indptr.astype(np.int64, copy=False),
            similarity.indices.astype(np.int32, copy=False),
            similarity.data.astype(np.float64, copy=False),
        )

        def score(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            columns, scores = co_listen_top_k(
                rows.astype(np.int64, copy=False), indptr, indices, weights, *neighbours, k
            )
            return columns, np.where(columns >= 0, scores, _NO_SCORE)

        return score

    def _save(self, folder: Path) -> None:
        self.model.save(str(folder / "model.npz"))

    def _load(self, folder: Path) -> None:
        """implicit's file, read without implicit's `load`: that also builds implicit's scorer,
        a second copy of the similarities (225 MB at 100,000 tracks) that is never used."""
        with np.load(folder / "model.npz") as saved:
            self.model = CosineRecommender(K=int(saved["K"]))
            self.model.similarity = sp.csr_matrix(
                (saved["data"], saved["indices"], saved["indptr"]), shape=tuple(saved["shape"])
            )


class Als(Model):
    """Learned: implicit's ALS on BM25-weighted listen counts.

    Users are folded in when scored (`fold_in`: the least-squares fit of each user's factors to
    the track factors that implicit's `recalculate_user` computes, in bounded batches), so the
    artifact keeps only the track factors.
    """

    kind = "als"

    def __init__(self, params: dict[str, Any]) -> None:
        super().__init__(params)
        # BM25's statistics of the training matrix, kept with the model: each track's idf and
        # the mean listens per user. None for an artifact saved before they were kept, whose
        # weighting then uses the statistics of the matrix it is given (every user's)
        self.idf: np.ndarray | None = None
        self.average_length: np.floating | None = None

    @property
    def scores_each_user_alone(self) -> bool:
        return self.idf is not None

    def _weighted(self, matrix: sp.csr_matrix) -> sp.csr_matrix:
        """BM25 damps repeats and heavy listeners, the weighting implicit's authors advise:
        implicit's `bm25_weight` with the training matrix's idf and mean length, so that a
        user's weights depend on their own listens only."""
        if self.idf is None or self.average_length is None:
            weighted = bm25_weight(matrix, K1=self.params["bm25_k1"], B=self.params["bm25_b"])
            return weighted.tocsr().astype(np.float32)
        k1, b = self.params["bm25_k1"], self.params["bm25_b"]
        # the same arithmetic as bm25_weight's, per row (so the training matrix weighs the same)
        row_sums = np.ravel(matrix.sum(axis=1))
        length_norm = (1.0 - b) + b * row_sums / self.average_length
        rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
        data = matrix.data * (k1 + 1.0) / (k1 * length_norm[rows] + matrix.data)
        data = data * self.idf[matrix.indices]
        return sp.csr_matrix(
            (data.astype(np.float32), matrix.indices, matrix.indptr), shape=matrix.shape
        )

    def _fit(self, matrix: sp.csr_matrix, progress: Progress | None) -> None:
        # implicit's bm25_weight statistics, of the training matrix (every row, listened or not)
        self.idf = np.log(float(matrix.shape[0])) - np.log1p(
            np.bincount(matrix.indices, minlength=matrix.shape[1])
        )
        self.average_length = np.ravel(matrix.sum(axis=1)).mean()
        self.model = AlternatingLeastSquares(
            factors=self.params["factors"],
            regularization=self.params["regularization"],
            alpha=self.params["alpha"],
            iterations=self.params["iterations"],
            random_state=self.params["random_state"],
        )

        def iteration_done(iteration: int, seconds: float, loss: float) -> None:
            if progress is not None:
                progress.advance(1)

        self.model.fit(self._weighted(matrix), show_progress=False, callback=iteration_done)
        self.model.user_factors = None  # recomputed from each user's listens when scored

    def _scorer(self, user_items: sp.csr_matrix, k: int, banned: np.ndarray) -> Scorer:
        # weighted over every user, as in training; the played tracks are filtered on the raw
        # counts, since a BM25 weight can be 0 or negative (a track nearly everyone played)
        weighted = self._weighted(user_items)
        if self.model.alpha != 1.0:
            weighted.data *= self.model.alpha
        item_factors = self.model.item_factors
        gram = _gram(item_factors, self.model.regularization)
        # the tracks that may be recommended, largest factor norm first (for the pruned top-k)
        norms = np.linalg.norm(item_factors.astype(np.float64), axis=1)
        allowed = np.ones(len(norms), dtype=bool)
        allowed[banned] = False
        by_norm = np.argsort(-norms, kind="stable")
        by_norm = by_norm[allowed[by_norm]]

        def score(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            user_factors = fold_in(item_factors, gram, weighted[rows])
            columns, scores = pruned_top_k(
                user_factors, item_factors, by_norm, norms[by_norm], user_items[rows], k
            )
            return _exact_scores(user_factors, item_factors, columns, scores)

        return score

    def _save(self, folder: Path) -> None:
        self.model.save(str(folder / "model.npz"))
        assert self.idf is not None, "a fitted ALS has its BM25 statistics"
        np.savez(folder / "bm25.npz", idf=self.idf, average_length=self.average_length)

    def _load(self, folder: Path) -> None:
        self.model = AlternatingLeastSquares.load(str(folder / "model.npz"))
        if (folder / "bm25.npz").exists():
            with np.load(folder / "bm25.npz") as bm25:
                self.idf, self.average_length = bm25["idf"], bm25["average_length"][()]


def pruned_top_k(
    user_factors: np.ndarray,
    item_factors: np.ndarray,
    by_norm: np.ndarray,
    sorted_norms: np.ndarray,
    played: sp.csr_matrix,
    k: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The exact top `k` unplayed items of each user by dot product, among `by_norm` (item
    indexes, largest norm first; `sorted_norms` their norms), scanning items in that order.

    A user is done once their k-th best score reaches |u| x the largest norm left (Cauchy-
    Schwarz: no item left can score more), so only the items that can still matter are
    multiplied: with ALS's track factors, whose norms follow popularity, a few thousand of
    100,000 tracks per user instead of all of them. Memory: (users x chunk) scores, at most
    _TOP_K_CELLS (and 1,024 tracks per user).
    """
    users = len(user_factors)
    best_columns = np.full((users, k), -1, dtype=np.int64)
    best_scores = np.full((users, k), -np.inf, dtype=np.float32)
    user_norms = np.linalg.norm(user_factors.astype(np.float64), axis=1)
    rank_of = np.full(len(item_factors), -1, dtype=np.int64)
    rank_of[by_norm] = np.arange(len(by_norm))
    played_user = np.repeat(np.arange(users), np.diff(played.indptr))
    played_rank = rank_of[played.indices]
    active = np.arange(users)
    start = 0
    while len(active) and start < len(by_norm):
        stop = min(len(by_norm), start + max(1024, _TOP_K_CELLS // len(active)))
        chunk = by_norm[start:stop]
        scores = user_factors[active] @ item_factors[chunk].T
        position = np.full(users, -1, dtype=np.int64)
        position[active] = np.arange(len(active))
        hit = (played_rank >= start) & (played_rank < stop) & (position[played_user] >= 0)
        scores[position[played_user[hit]], played_rank[hit] - start] = -np.inf
        # the chunk's own best k first, then merged with the best so far (small arrays)
        width = min(k, len(chunk))
        top = np.argpartition(-scores, width - 1, axis=1)[:, :width]
        merged_scores = np.concatenate(
            [best_scores[active], np.take_along_axis(scores, top, axis=1)], axis=1
        )
        merged_columns = np.concatenate([best_columns[active], chunk[top]], axis=1)
        del scores, top
        keep = np.argpartition(-merged_scores, k - 1, axis=1)[:, :k]
        best_scores[active] = np.take_along_axis(merged_scores, keep, axis=1)
        best_columns[active] = np.take_along_axis(merged_columns, keep, axis=1)
        if stop == len(by_norm):
            break
        # float32 products may exceed the float64 bound by rounding: a margin keeps it exact
        bound = user_norms[active] * sorted_norms[stop] * (1 + 1e-4) + 1e-6
        active = active[best_scores[active].min(axis=1) < bound]
        start = stop
    best_columns[~np.isfinite(best_scores)] = -1
    return best_columns, np.where(best_columns >= 0, best_scores, _NO_SCORE)


def _exact_scores(
    user_factors: np.ndarray, item_factors: np.ndarray, columns: np.ndarray, scores: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The chosen columns' scores again, one float64 dot product each, best first.

    BLAS's float32 products differ in the last bits with the number of users multiplied at once
    (a batch of one takes another kernel than a batch of 10,000): recomputed per user, a user's
    scores are the same whichever users are scored beside them, as incremental scoring needs.
    """
    chosen = columns >= 0
    exact = np.einsum(
        "uf,ukf->uk",
        user_factors.astype(np.float64),
        item_factors[columns.clip(min=0)].astype(np.float64),
    )
    exact = np.where(chosen, exact, scores)
    order = np.argsort(np.where(chosen, -exact, np.inf), axis=1, kind="stable")
    return np.take_along_axis(columns, order, axis=1), np.take_along_axis(exact, order, axis=1)


def _gram(item_factors: np.ndarray, regularization: float) -> np.ndarray:
    factors = item_factors.astype(np.float64)
    return factors.T @ factors + regularization * np.eye(factors.shape[1])


def fold_in(item_factors: np.ndarray, gram: np.ndarray, confidence: sp.csr_matrix) -> np.ndarray:
    """Each row's factors given the item factors Y: implicit ALS's closed form.

    x_u = (YtY + Yt(Cu - I)Y + λI)^-1 Yt Cu p(u), with implicit's conventions (a confidence
    c <= 0 counts as |c| in A and adds nothing to b; a row with no listens gets zeros), for
    rows grouped by listen count and solved as stacked 48 x 48 systems: cost linear in users
    and their listens, memory bounded by _FOLD_IN_CELLS. `gram` is YtY + λI (float64).
    """
    users, factors = confidence.shape[0], item_factors.shape[1]
    result = np.zeros((users, factors), dtype=item_factors.dtype)
    lengths = np.diff(confidence.indptr)
    order = np.argsort(lengths, kind="stable")
    order = order[lengths[order] > 0]
    # groups of users with the same number of listens: no padding, and each user's numbers are
    # computed the same way whoever else is in the batch (a re-scored user gets the very
    # factors a full re-score gives)
    bounds = np.flatnonzero(np.diff(lengths[order])) + 1
    for same_length in np.split(order, bounds):
        if not len(same_length):
            continue
        width = int(lengths[same_length[0]])
        step = max(1, _FOLD_IN_CELLS // (width * factors))
        for start in range(0, len(same_length), step):
            group = same_length[start : start + step]
            entries = confidence.indptr[group][:, None] + np.arange(width)
            weight = confidence.data[entries].astype(np.float64)
            gathered = item_factors[confidence.indices[entries]].astype(np.float64)  # (g, w, f)
            a = gram + np.matmul(
                gathered.transpose(0, 2, 1) * (np.abs(weight) - 1.0)[:, None, :], gathered
            )
            b = np.einsum("gw,gwf->gf", np.where(weight > 0, weight, 0.0), gathered)
            result[group] = np.linalg.solve(a, b[..., None])[..., 0]
    return result


MODEL_KINDS: dict[str, type[Model]] = {kind.kind: kind for kind in (Popularity, CoListen, Als)}


def load(folder: Path) -> Model:
    """The model saved in `folder`, as it was when saved."""
    saved = json.loads((folder / "model.json").read_text())
    model = MODEL_KINDS[saved["kind"]](saved["params"])
    with np.load(folder / "tracks.npz") as tracks:
        model.track_ids, model.listener_counts = tracks["track_ids"], tracks["listeners"]
    with threadpool_limits(1, "blas"):
        model._load(folder)
    return model


def recommend_batches(
    model: Model,
    interactions: Interactions,
    rows: np.ndarray,
    k: int,
    catalogue: np.ndarray,
    progress: Progress | None = None,
    batch_users: int = BATCH_USERS,
) -> Iterator[tuple[np.ndarray, TopK]]:
    """(rows, top k) for batches of at most `batch_users` of the `rows` of `interactions`,
    among the sorted `catalogue`.

    Never a track the user played. A user none of whose tracks the model knows gets nothing
    (-1): the model has nothing to go on, and the caller treats them as a cold start.
    """
    user_items = interactions.on_tracks(model.track_ids)
    banned = np.flatnonzero(positions(model.track_ids, catalogue) < 0).astype(np.int32)
    k = min(k, len(model.track_ids))
    known = np.diff(user_items.indptr) > 0
    with threadpool_limits(1, "blas"):
        score = model._scorer(user_items, k, banned)
        for start in range(0, len(rows), batch_users):
            batch = rows[start : start + batch_users]
            columns, scores = score(batch)
            valid = (columns >= 0) & (scores > _NO_SCORE) & known[batch][:, None]
            yield (
                batch,
                TopK(
                    np.where(valid, model.track_ids[columns.clip(min=0)], -1),
                    np.where(valid, scores.astype(np.float64), np.nan),
                ),
            )
            if progress is not None:
                progress.advance(len(batch))


def recommend(
    model: Model,
    interactions: Interactions,
    rows: np.ndarray,
    k: int,
    catalogue: np.ndarray,
    progress: Progress | None = None,
) -> TopK:
    """Top `k` tracks for the users at `rows`, all at once (evaluation: a bounded sample)."""
    batches = recommend_batches(model, interactions, rows, k, catalogue, progress)
    return TopK.concatenate([top for _, top in batches], min(k, len(model.track_ids)))
