"""Offline metrics on the holdout: recall@10, NDCG@10 and catalogue coverage, per model.

Every model, both baselines and the dev API's ceiling are measured by `evaluate` on the same
users and held-out tracks, from the track ids they recommend.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from recommender.data import PAIR_KEY, Split, contains, distinct

K = 10
_DISCOUNTS = 1.0 / np.log2(np.arange(K) + 2.0)


@dataclass(frozen=True)
class Evaluation:
    """A model's metrics on a holdout; `per_user_recall` feeds the gate's paired comparison."""

    name: str
    recall_at_10: float
    ndcg_at_10: float
    catalogue_coverage: float
    train_seconds: float
    per_user_recall: np.ndarray = field(repr=False)

    def metrics(self) -> dict[str, float]:
        return {
            "recall_at_10": round(self.recall_at_10, 6),
            "ndcg_at_10": round(self.ndcg_at_10, 6),
            "catalogue_coverage": round(self.catalogue_coverage, 6),
            "train_seconds": round(self.train_seconds, 3),
        }


def evaluate(
    name: str,
    recommended: np.ndarray,
    split: Split,
    rows: np.ndarray,
    catalogue_size: int,
    train_seconds: float = 0.0,
) -> Evaluation:
    """Metrics of the top 10 of `recommended` (track ids, one row per user at `rows`).

    recall@10: held-out tracks in the top 10 over min(10, held-out tracks), averaged over users;
    NDCG@10: binary relevance, log2 discount; coverage: distinct tracks recommended to anyone
    over the catalogue's size.
    """
    top = recommended[:, :K]
    held_out = split.holdout.matrix[rows]
    relevant = (
        np.repeat(np.arange(len(rows)), np.diff(held_out.indptr)) * PAIR_KEY
        + split.holdout.track_ids[held_out.indices]
    )
    keys = np.arange(len(rows))[:, None] * PAIR_KEY + top
    hits = contains(keys, relevant) & (top >= 0)
    relevant_count = np.minimum(np.diff(held_out.indptr), K)
    per_user_recall = hits.sum(axis=1) / relevant_count
    ideal = np.cumsum(_DISCOUNTS)[relevant_count - 1]
    ndcg = (hits * _DISCOUNTS[: top.shape[1]]).sum(axis=1) / ideal
    recommended_tracks = distinct(top[top >= 0])
    return Evaluation(
        name=name,
        recall_at_10=float(per_user_recall.mean()) if len(rows) else 0.0,
        ndcg_at_10=float(ndcg.mean()) if len(rows) else 0.0,
        catalogue_coverage=len(recommended_tracks) / max(catalogue_size, 1),
        train_seconds=train_seconds,
        per_user_recall=per_user_recall,
    )


def paired_gain(candidate: Evaluation, reference: Evaluation) -> tuple[float, float]:
    """Candidate over reference: (relative gain in recall@10, z of the mean per-user gain)."""
    gain = (
        candidate.recall_at_10 / reference.recall_at_10 - 1.0
        if reference.recall_at_10 > 0
        else (np.inf if candidate.recall_at_10 > 0 else 0.0)
    )
    differences = candidate.per_user_recall - reference.per_user_recall
    spread = differences.std(ddof=1) / np.sqrt(len(differences)) if len(differences) > 1 else 0.0
    mean = differences.mean() if len(differences) else 0.0
    z = mean / spread if spread > 0 else (np.inf if mean > 0 else 0.0)
    return float(gain), float(z)
