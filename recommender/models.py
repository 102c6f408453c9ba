"""The models: popularity and item-item co-listen baselines, and `implicit`'s ALS; one scoring path.

Every model is fitted on a users x tracks matrix of listen counts and keeps its own track index.
`recommend` is the only way any of them is scored, for the nightly recommendations and for the
evaluation alike: it lays tonight's listens on the model's tracks, drops the played tracks and
those gone from the catalogue, and returns track ids. A model scores a user from the listens it
is given, so new users and new listens count without retraining; new tracks need a retraining.
"""

from __future__ import annotations

import json
import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from implicit.cpu.topk import topk
from implicit.nearest_neighbours import CosineRecommender, bm25_weight
from implicit.utils import ParameterWarning
from threadpoolctl import threadpool_limits

from recommender.data import Interactions, positions

# implicit marks a filtered or missing slot with this score (and id -1 for item-item models)
_NO_SCORE = float(np.finfo(np.float32).min)


@dataclass(frozen=True)
class TopK:
    """Recommendations of a batch of users: track ids best first, -1 (score NaN) past the end."""

    track_ids: np.ndarray  # (users, k) int64
    scores: np.ndarray  # (users, k) float64


class Model(ABC):
    """A recommender over the track index it was fitted on, saved to and loaded from a folder."""

    kind: ClassVar[str]

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params
        self.track_ids = np.empty(0, dtype=np.int64)
        # distinct listeners per track in the training data: the cold-start fallback of every model
        self.listener_counts = np.empty(0, dtype=np.float32)

    def fit(self, train: Interactions) -> None:
        self.track_ids = train.track_ids
        self.listener_counts = np.diff(train.matrix.tocsc().indptr).astype(np.float32)
        with threadpool_limits(1, "blas"):  # implicit's own threads do the work (its advice)
            self._fit(train.matrix)

    @abstractmethod
    def _fit(self, matrix: sp.csr_matrix) -> None: ...

    @abstractmethod
    def _top_k(
        self, user_items: sp.csr_matrix, rows: np.ndarray, k: int, banned: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """implicit's (columns, scores) for `rows` of `user_items` (all users, this model's
        columns), never a column the user played nor a `banned` one."""

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


class Popularity(Model):
    """Baseline: the tracks with the most distinct listeners, the same order for everyone."""

    kind = "popularity"

    def _fit(self, matrix: sp.csr_matrix) -> None:
        """Nothing beyond the listener counts."""

    def _save(self, folder: Path) -> None:
        """Nothing beyond the listener counts."""

    def _load(self, folder: Path) -> None:
        """Nothing beyond the listener counts."""

    def _top_k(
        self, user_items: sp.csr_matrix, rows: np.ndarray, k: int, banned: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        # a one-factor model: each track's factor is its listener count, each user's is 1
        return topk(
            self.listener_counts[:, None],
            np.ones((len(rows), 1), dtype=np.float32),
            k,
            filter_query_items=user_items[rows],
            filter_items=banned,
        )


class CoListen(Model):
    """Baseline: item-item nearest neighbours, cosine similarity of the tracks' listeners."""

    kind = "co_listen"

    def _fit(self, matrix: sp.csr_matrix) -> None:
        self.model = CosineRecommender(K=self.params["neighbours"])
        with warnings.catch_warnings():  # implicit hands itself a coo matrix here, and says so
            warnings.simplefilter("ignore", ParameterWarning)
            self.model.fit(matrix, show_progress=False)

    def _top_k(
        self, user_items: sp.csr_matrix, rows: np.ndarray, k: int, banned: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        return self.model.recommend(
            np.arange(len(rows)), user_items[rows], N=k, filter_items=banned
        )

    def _save(self, folder: Path) -> None:
        self.model.save(str(folder / "model.npz"))

    def _load(self, folder: Path) -> None:
        self.model = CosineRecommender.load(str(folder / "model.npz"))


class Als(Model):
    """Learned: implicit's ALS on BM25-weighted listen counts.

    Users are folded in when scored (`recalculate_user`: a least-squares fit of the user's
    factors to the track factors), so the artifact keeps only the track factors.
    """

    kind = "als"

    def _weighted(self, matrix: sp.csr_matrix) -> sp.csr_matrix:
        """BM25 damps repeats and heavy listeners, the weighting implicit's authors advise."""
        weighted = bm25_weight(matrix, K1=self.params["bm25_k1"], B=self.params["bm25_b"])
        return weighted.tocsr().astype(np.float32)

    def _fit(self, matrix: sp.csr_matrix) -> None:
        self.model = AlternatingLeastSquares(
            factors=self.params["factors"],
            regularization=self.params["regularization"],
            alpha=self.params["alpha"],
            iterations=self.params["iterations"],
            random_state=self.params["random_state"],
        )
        self.model.fit(self._weighted(matrix), show_progress=False)
        self.model.user_factors = None  # recomputed from each user's listens when scored

    def _top_k(
        self, user_items: sp.csr_matrix, rows: np.ndarray, k: int, banned: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        # weighted over every user, as in training; the played tracks are filtered on the raw
        # counts, since a BM25 weight can be 0 or negative (a track nearly everyone played)
        weighted = self._weighted(user_items)[rows]
        return topk(
            self.model.item_factors,
            self.model.recalculate_user(np.arange(len(rows)), weighted),
            k,
            filter_query_items=user_items[rows],
            filter_items=banned,
        )

    def _save(self, folder: Path) -> None:
        self.model.save(str(folder / "model.npz"))

    def _load(self, folder: Path) -> None:
        self.model = AlternatingLeastSquares.load(str(folder / "model.npz"))


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


def recommend(
    model: Model, interactions: Interactions, rows: np.ndarray, k: int, catalogue: np.ndarray
) -> TopK:
    """Top `k` tracks for the users at `rows` of `interactions`, among the sorted `catalogue`.

    Never a track the user played. A user none of whose tracks the model knows gets nothing
    (-1): the model has nothing to go on, and the caller treats them as a cold start.
    """
    user_items = interactions.on_tracks(model.track_ids)
    banned = np.flatnonzero(positions(model.track_ids, catalogue) < 0)
    k = min(k, len(model.track_ids))
    with threadpool_limits(1, "blas"):
        columns, scores = model._top_k(
            user_items, rows, k, banned.astype(np.int32) if len(banned) else None
        )
    known = np.diff(user_items.indptr)[rows] > 0
    valid = (columns >= 0) & (scores > _NO_SCORE) & known[:, None]
    return TopK(
        np.where(valid, model.track_ids[columns.clip(min=0)], -1),
        np.where(valid, scores.astype(np.float64), np.nan),
    )
