"""A training run: split, tune, fit every candidate and both baselines, evaluate, register, gate.

Every contender, the co-listen baseline included, is measured on one holdout and may become
champion; the popularity baseline is the floor every champion must beat. A candidate whose
hyper-parameters are lists is tuned first: each combination is fitted and measured on a
validation split carved from the training window, never on the holdout that decides promotion.
Evaluation runs on a seeded sample of `eval_users` users, enough for the gate's standard errors.

What passes the gate is what serves: the champion is the very model that was evaluated (fitted
on the training side of the split), so its measured metrics are its real ones, and the next
run's holdout is data it has never seen.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from recommender import RecommenderError
from recommender.data import Split, split, training_window, utc_now, validation_split
from recommender.evaluation import Evaluation, K, evaluate, paired_gain
from recommender.models import MODEL_KINDS, CoListen, Model, Popularity, load, recommend
from recommender.progress import Progress
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


def train(settings: Settings, progress: Callable[[str], None] | None = None) -> TrainingReport:
    """One training run over tonight's marts; the registry and artifacts record its outcome.

    `progress` receives a short description at each sub-step and progress report.
    """
    reporter = Progress(progress)
    database = settings.duckdb_path
    reporter.step("training: reading listens")
    listens = read_listens(database)
    if not len(listens.user_ids):
        raise RecommenderError("marts.fct_listen_events is empty: nothing to train on yet")
    catalogue = np.array(sorted(read_catalogue(database)), dtype=np.int64)
    incumbent = champion(database)
    data = split(listens, settings, incumbent.window_end_at if incumbent else None)
    # tuning needs a validation split carved from the training side only, built once here so
    # that the 16 M listens at 1,000,000 users (then the window's) are gone before any fit
    tuning = any(_grid(spec) for spec in settings.candidates.values())
    window = training_window(listens, data, settings) if tuning else None
    del listens
    validation = validation_split(window, settings) if window is not None else None
    del window
    eligible = data.evaluation_rows()
    rows = data.evaluation_rows(settings.eval_users, settings.split_seed)
    trained_at = utc_now()

    def fit_and_evaluate(name: str, model: Model) -> Evaluation:
        reporter.step(f"training: fitting {name}", model.params.get("iterations", 0), "iterations")
        started = time.monotonic()
        model.fit(data.train, reporter)
        seconds = time.monotonic() - started
        reporter.step(f"training: evaluating {name}", len(rows), "users")
        return measure(name, model, data, rows, catalogue, seconds, reporter)

    popularity = Popularity({})
    popularity_evaluation = fit_and_evaluate("popularity (baseline)", popularity)
    contenders: list[tuple[str, Model, str]] = [
        (
            "co_listen",
            CoListen({"neighbours": settings.co_listen_neighbours}),
            "the co-listen baseline; ",
        )
    ]
    for name, spec in settings.candidates.items():
        params, tuning = tune(name, spec, validation, catalogue, settings, reporter)
        contenders.append((name, MODEL_KINDS[spec["kind"]](params), tuning))
    del validation  # the fits below are the run's peak
    evaluated = [
        (name, model, tuning, fit_and_evaluate(name, model)) for name, model, tuning in contenders
    ]
    baseline_metrics: dict[str, Any] = {
        "popularity": popularity_evaluation.metrics(),
        "co_listen": evaluated[0][3].metrics(),
    }

    incumbent_evaluation = None
    if incumbent is not None and Path(incumbent.artifact_path).exists():
        name = f"champion v{incumbent.model_version} ({incumbent.model_name})"
        reporter.step(f"training: evaluating {name}", len(rows), "users")
        incumbent_evaluation = measure(
            name,
            load(Path(incumbent.artifact_path)),
            data,
            rows,
            catalogue,
            incumbent.train_seconds,
            reporter,
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
            holdout_users=len(eligible),
            holdout_tracks=int(data.holdout.matrix[eligible].nnz),
            hyperparameters=model.params,
            baseline_metrics=baseline_metrics,
            artifact_path=str(artifact),
            eval_users=len(rows),
            **evaluation.metrics(),
        )
        register(database, row)
        return row

    reporter.step("training: registering and gating")
    candidates: list[tuple[ModelVersion, Evaluation]] = []
    tunings: dict[int, str] = {}
    for name, model, tuning, evaluation in evaluated:
        version = record(name, model, evaluation, "candidate", "awaiting the gate")
        tunings[version.model_version] = tuning
        candidates.append((version, replace(evaluation, name=f"{name} (v{version.model_version})")))

    decisions = {
        model_version: (status, tunings.get(model_version, "") + reason)
        for model_version, (status, reason) in decide(
            candidates, popularity_evaluation, incumbent, incumbent_evaluation, settings
        ).items()
    }
    registered = [
        replace(version, status=status, status_reason=reason)
        for version, _ in candidates
        for status, reason in [decisions[version.model_version]]
    ]
    if incumbent is None and not any(status == "champion" for status, _ in decisions.values()):
        # nothing beats popularity (e.g. uniformly random listens): it serves itself
        best = max(candidates, key=lambda pair: pair[1].recall_at_10, default=None)
        best_reason = decisions[best[0].model_version][1] if best else "no candidate configured"
        registered.append(
            record(
                "popularity",
                popularity,
                popularity_evaluation,
                "champion",
                f"no candidate beat the popularity baseline ({best_reason})",
            )
        )
    set_statuses(database, decisions)
    return TrainingReport(
        split=data,
        rows=rows,
        catalogue=catalogue,
        evaluations=(
            popularity_evaluation,
            *(evaluation for _, evaluation in candidates),
            *((incumbent_evaluation,) if incumbent_evaluation else ()),
        ),
        registered=tuple(registered),
        champion_before=incumbent,
        champion_after=champion(database),
    )


def _grid(spec: dict[str, Any]) -> dict[str, list[Any]]:
    """A candidate's grid axes: its hyper-parameters given as lists."""
    return {key: value for key, value in spec.items() if isinstance(value, list)}


def tune(
    name: str,
    spec: dict[str, Any],
    validation: Split | None,
    catalogue: np.ndarray,
    settings: Settings,
    progress: Progress,
) -> tuple[dict[str, Any], str]:
    """The candidate's hyper-parameters, and how they were chosen (a phrase for the registry).

    A list value is a grid axis: every combination is fitted on the validation split (carved
    from the training window; None when no candidate has a grid) and the best recall@10 wins; a
    spec without lists is taken as it is.
    """
    fixed = {key: value for key, value in spec.items() if key != "kind"}
    axes = _grid(fixed)
    if not axes:
        return fixed, ""
    assert validation is not None, "a validation split is built when a candidate has a grid"
    rows = validation.evaluation_rows(settings.eval_users, settings.split_seed)
    scored = []
    # co-listen's tilt applies after the neighbours are chosen: one plain fit per neighbourhood
    # serves every exponent (CoListen.tilted), not one fit each
    plain: tuple[dict[str, Any], CoListen] | None = None
    for values in itertools.product(*axes.values()):
        params = {**fixed, **dict(zip(axes, values, strict=True))}
        progress.step(f"training: tuning {name} {dict(zip(axes, values, strict=True))}")
        model = MODEL_KINDS[spec["kind"]](params)
        if isinstance(model, CoListen):
            untilted = {**params, "popularity_exponent": 0.0}
            if plain is None or plain[0] != untilted:
                plain = (untilted, CoListen(untilted))
                plain[1].fit(validation.train, progress)
            model = plain[1].tilted(params.get("popularity_exponent", 0.0))
        else:
            model.fit(validation.train, progress)
        evaluation = measure(name, model, validation, rows, catalogue, 0.0, progress)
        scored.append((evaluation.recall_at_10, params))
    recall, best = max(scored, key=lambda pair: pair[0])
    chosen = ", ".join(f"{key}={best[key]}" for key in axes)
    return best, (
        f"{chosen} chosen on the validation split ({validation.kind}, {len(rows):,} users, "
        f"before the holdout): recall@10 {recall:.4f}, best of {len(scored)}; "
    )


def measure(
    name: str,
    model: Model,
    data: Split,
    rows: np.ndarray,
    catalogue: np.ndarray,
    train_seconds: float,
    progress: Progress | None = None,
) -> Evaluation:
    """The model's top 10 for the evaluated users, from their training listens, scored."""
    recommended = recommend(model, data.train, rows, K, catalogue, progress)
    return evaluate(name, recommended.track_ids, data, rows, len(catalogue), train_seconds)


def decide(
    candidates: list[tuple[ModelVersion, Evaluation]],
    popularity: Evaluation,
    incumbent: ModelVersion | None,
    incumbent_evaluation: Evaluation | None,
    settings: Settings,
) -> dict[int, tuple[str, str]]:
    """The gate: {model_version: (status, reason)} for this run's candidates and the incumbent.

    The run's best contender by recall@10 (the co-listen baseline is one) becomes champion only
    if it beats the popularity baseline and the current champion, each by the margin and
    `promotion_min_z` standard errors; the others are rejected.
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
