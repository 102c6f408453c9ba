"""A training run: split, fit every candidate and both baselines, evaluate, register, gate.

What passes the gate is what serves: the champion is the very model that was evaluated (fitted
on the training side of the split), so its measured metrics are its real ones, and the next
run's holdout is data it has never seen.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from recommender import RecommenderError
from recommender.data import Split, split, utc_now
from recommender.evaluation import Evaluation, K, evaluate, paired_gain
from recommender.models import MODEL_KINDS, CoListen, Model, Popularity, load, recommend
from recommender.settings import Settings
from recommender.warehouse import (
    ModelVersion,
    champion,
    next_model_version,
    read_catalogue,
    read_listens,
    register,
    set_statuses,
)


@dataclass(frozen=True)
class TrainingReport:
    """What a training run saw, measured and decided."""

    split: Split
    rows: np.ndarray  # the evaluated users' rows in split.train
    catalogue: np.ndarray  # the tracks that could be recommended (dim_tracks), sorted
    evaluations: tuple[Evaluation, ...]  # baselines, candidates, then the incumbent champion
    registered: tuple[ModelVersion, ...]  # this run's rows of ml.model_versions, as decided
    champion_before: ModelVersion | None
    champion_after: ModelVersion | None

    @property
    def promoted(self) -> bool:
        return self.champion_after != self.champion_before

    def render(self) -> str:
        split, rows = self.split, self.rows
        if split.kind == "time":
            holdout = f"time split: holdout = tracks first played from {split.holdout_start_at}"
        else:
            holdout = "random split: a seeded share of each user's tracks held out"
        lines = [
            f"Trained on {split.train.listens:,} listens of {len(split.train.user_ids):,} users "
            f"and {len(split.train.track_ids):,} tracks first seen {split.window_start_at} to "
            f"{split.window_end_at};",
            f"{holdout}; evaluated on {len(rows):,} users with "
            f"{split.holdout.matrix[rows].nnz:,} held-out tracks",
            f"  {'model':<34} {'recall@10':>9} {'ndcg@10':>8} {'coverage':>8} {'train s':>8}",
        ]
        lines += [
            f"  {e.name:<34} {e.recall_at_10:>9.4f} {e.ndcg_at_10:>8.4f} "
            f"{e.catalogue_coverage:>8.1%} {e.train_seconds:>8.2f}"
            for e in self.evaluations
        ]
        lines += [
            f"  version {v.model_version} ({v.model_name}): {v.status}: {v.status_reason}"
            for v in self.registered
        ]
        before, after = self.champion_before, self.champion_after
        if after is not None:
            replacing = f", replacing v{before.model_version}" if self.promoted and before else ""
            lines.append(f"  champion: v{after.model_version} ({after.model_name}){replacing}")
        return "\n".join(lines)


def train(settings: Settings) -> TrainingReport:
    """One training run over tonight's marts; the registry and artifacts record its outcome."""
    database = settings.duckdb_path
    listens = read_listens(database)
    if not len(listens.user_ids):
        raise RecommenderError("marts.fct_listen_events is empty: nothing to train on yet")
    catalogue = np.array(sorted(read_catalogue(database)), dtype=np.int64)
    incumbent = champion(database)
    data = split(listens, settings, incumbent.window_end_at if incumbent else None)
    rows = data.evaluation_rows()
    trained_at = utc_now()

    def fit_and_evaluate(name: str, model: Model) -> Evaluation:
        started = time.monotonic()
        model.fit(data.train)
        seconds = time.monotonic() - started
        return measure(name, model, data, rows, catalogue, seconds)

    popularity = Popularity({})
    baselines = (
        fit_and_evaluate("popularity (baseline)", popularity),
        fit_and_evaluate(
            "co_listen (baseline)", CoListen({"neighbours": settings.co_listen_neighbours})
        ),
    )
    baseline_metrics = {"popularity": baselines[0].metrics(), "co_listen": baselines[1].metrics()}

    incumbent_evaluation = None
    if incumbent is not None and Path(incumbent.artifact_path).exists():
        incumbent_evaluation = measure(
            f"champion v{incumbent.model_version} ({incumbent.model_name})",
            load(Path(incumbent.artifact_path)),
            data,
            rows,
            catalogue,
            incumbent.train_seconds,
        )
        baseline_metrics["champion"] = {
            "model_version": incumbent.model_version,
            **incumbent_evaluation.metrics(),
        }

    def record(
        name: str, model: Model, evaluation: Evaluation, status: str, why: str
    ) -> ModelVersion:
        version = next_model_version(database)
        artifact = settings.models_dir / str(version)
        model.save(artifact)
        row = ModelVersion(
            model_version=version,
            model_name=name,
            model_kind=model.kind,
            status=status,
            status_reason=why,
            trained_at=trained_at,
            split_kind=data.kind,
            window_start_at=data.window_start_at,
            window_end_at=data.window_end_at,
            holdout_start_at=data.holdout_start_at,
            train_listens=data.train.listens,
            train_users=int((np.diff(data.train.matrix.indptr) > 0).sum()),
            train_tracks=len(data.train.track_ids),
            holdout_users=len(rows),
            holdout_tracks=int(data.holdout.matrix[rows].nnz),
            hyperparameters=model.params,
            baseline_metrics=baseline_metrics,
            artifact_path=str(artifact),
            **evaluation.metrics(),
        )
        register(database, row)
        return row

    candidates: list[tuple[ModelVersion, Evaluation]] = []
    for name, spec in settings.candidates.items():
        model = MODEL_KINDS[spec["kind"]]({key: spec[key] for key in spec if key != "kind"})
        evaluation = fit_and_evaluate(name, model)
        version = record(name, model, evaluation, "candidate", "awaiting the gate")
        candidates.append((version, replace(evaluation, name=f"{name} (v{version.model_version})")))

    decisions = decide(candidates, baselines[0], incumbent, incumbent_evaluation, settings)
    registered = [
        replace(version, status=status, status_reason=reason)
        for version, _ in candidates
        for status, reason in [decisions[version.model_version]]
    ]
    if incumbent is None and not any(status == "champion" for status, _ in decisions.values()):
        # no learned model beats popularity (e.g. uniformly random listens): it serves itself
        best = max(candidates, key=lambda pair: pair[1].recall_at_10, default=None)
        best_reason = decisions[best[0].model_version][1] if best else "no candidate configured"
        registered.append(
            record(
                "popularity",
                popularity,
                baselines[0],
                "champion",
                f"no learned candidate beat the popularity baseline ({best_reason})",
            )
        )
    set_statuses(database, decisions)
    return TrainingReport(
        split=data,
        rows=rows,
        catalogue=catalogue,
        evaluations=(
            *baselines,
            *(evaluation for _, evaluation in candidates),
            *((incumbent_evaluation,) if incumbent_evaluation else ()),
        ),
        registered=tuple(registered),
        champion_before=incumbent,
        champion_after=champion(database),
    )


def measure(
    name: str,
    model: Model,
    data: Split,
    rows: np.ndarray,
    catalogue: np.ndarray,
    train_seconds: float,
) -> Evaluation:
    """The model's top 10 for the evaluated users, from their training listens, scored."""
    recommended = recommend(model, data.train, rows, K, catalogue)
    return evaluate(name, recommended.track_ids, data, rows, len(catalogue), train_seconds)


def decide(
    candidates: list[tuple[ModelVersion, Evaluation]],
    popularity: Evaluation,
    incumbent: ModelVersion | None,
    incumbent_evaluation: Evaluation | None,
    settings: Settings,
) -> dict[int, tuple[str, str]]:
    """The gate: {model_version: (status, reason)} for this run's candidates and the incumbent.

    The run's best candidate by recall@10 becomes champion only if it beats the popularity
    baseline and the current champion, each by the margin; the others are rejected.
    """
    if not candidates:
        return {}
    ranked = sorted(candidates, key=lambda pair: pair[1].recall_at_10, reverse=True)
    best_version, best = ranked[0]
    decisions = {
        version.model_version: (
            "rejected",
            f"recall@10 {evaluation.recall_at_10:.4f} below this run's best candidate, "
            f"v{best_version.model_version} ({best.recall_at_10:.4f})",
        )
        for version, evaluation in ranked[1:]
    }
    references = [popularity, *([incumbent_evaluation] if incumbent_evaluation else [])]
    verdicts = []
    for reference in references:
        gain, z = paired_gain(best, reference)
        passed = gain > settings.promotion_margin and z >= settings.promotion_min_z
        verdicts.append(
            (passed, f"{reference.name} {reference.recall_at_10:.4f}, {gain:+.1%}, z {z:.1f}")
        )
    passed = all(ok for ok, _ in verdicts)
    reason = (
        f"recall@10 {best.recall_at_10:.4f} {'beats' if passed else 'does not beat'} "
        f"by more than {settings.promotion_margin:.0%} (z >= {settings.promotion_min_z:g}): "
        + "; ".join(text for _, text in verdicts)
    )
    if incumbent is not None and incumbent_evaluation is None:
        reason += f"; champion v{incumbent.model_version}'s artifact is missing"
    decisions[best_version.model_version] = ("champion" if passed else "rejected", reason)
    if passed and incumbent is not None:
        decisions[incumbent.model_version] = (
            "retired",
            f"replaced by v{best_version.model_version}, which beat it on the same holdout",
        )
    return decisions
