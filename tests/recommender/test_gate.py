"""The promotion gate: its decision on measured evaluations (`decide`), and what a training run
records of it in the registry, on a tiny warehouse built without dbt (tests/recommender/tiny.py).

Which contender wins depends on the data; these tests never rely on it: the gate's inputs are
built here, or a run's outcome is checked against its own measured evaluations.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest

from dev_api.world import World
from recommender import RecommenderError
from recommender.evaluation import Evaluation, paired_gain
from recommender.models import load
from recommender.settings import Settings
from recommender.training import decide, train
from recommender.warehouse import champion, model_versions, read_listens
from tests.recommender.tiny import FIRST_LOAD, a_version, write_warehouse

USERS = 400


def measured(name: str, per_user: np.ndarray) -> Evaluation:
    return Evaluation(name, float(per_user.mean()), 0.0, 0.0, 0.0, per_user)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(duckdb_path=tmp_path / "w.duckdb", models_dir=tmp_path / "models")


@pytest.fixture(scope="module")
def popularity() -> Evaluation:
    return measured("popularity", np.random.default_rng(1).uniform(0.1, 0.3, USERS))


def better(reference: Evaluation, by: float, name: str, noise: float = 0.01) -> Evaluation:
    """`reference`'s per-user recall plus `by` (and a little seeded noise)."""
    jitter = np.random.default_rng(len(name)).normal(0, noise, USERS)
    return measured(name, reference.per_user_recall + by + jitter)


def test_no_candidate_no_decision(settings: Settings, popularity: Evaluation) -> None:
    assert decide([], popularity, None, None, settings) == {}


def test_the_best_contender_clearly_above_popularity_is_champion_and_the_rest_rejected(
    settings: Settings, popularity: Evaluation
) -> None:
    good, best = better(popularity, 0.03, "good"), better(popularity, 0.08, "best")
    decisions = decide(
        [(a_version(1), good), (a_version(2), best)], popularity, None, None, settings
    )

    assert set(decisions) == {1, 2}
    assert decisions[2][0] == "champion"
    assert decisions[2][1].startswith(f"recall@10 {best.recall_at_10:.4f} beats by more than 5%")
    gain, z = paired_gain(best, popularity)
    assert f"popularity {popularity.recall_at_10:.4f}, {gain:+.1%}, z {z:.1f}" in decisions[2][1]
    assert decisions[1] == (
        "rejected",
        f"recall@10 {good.recall_at_10:.4f} below this run's best candidate, "
        f"v2 ({best.recall_at_10:.4f})",
    )


def test_a_contender_between_popularity_and_the_champion_is_rejected_and_the_champion_kept(
    settings: Settings, popularity: Evaluation
) -> None:
    incumbent = better(popularity, 0.15, "champion v3 (als)")
    between = better(popularity, 0.08, "between")
    assert popularity.recall_at_10 < between.recall_at_10 < incumbent.recall_at_10
    decisions = decide([(a_version(4), between)], popularity, a_version(3), incumbent, settings)

    assert list(decisions) == [4]
    status, reason = decisions[4]
    assert status == "rejected"
    assert reason.startswith(f"recall@10 {between.recall_at_10:.4f} does not beat")
    assert f"champion v3 (als) {incumbent.recall_at_10:.4f}, -" in reason


def test_a_contender_above_both_is_champion_and_retires_the_old_one(
    settings: Settings, popularity: Evaluation
) -> None:
    incumbent = better(popularity, 0.05, "champion v3 (als)")
    best = better(popularity, 0.15, "best")
    decisions = decide([(a_version(4), best)], popularity, a_version(3), incumbent, settings)

    assert decisions == {
        4: ("champion", decisions[4][1]),
        3: ("retired", "replaced by v4, which beat it on the same holdout"),
    }
    assert "; champion v3 (als) " in decisions[4][1] and "popularity" in decisions[4][1]


def test_a_champion_without_its_artifact_is_judged_against_popularity_alone(
    settings: Settings, popularity: Evaluation
) -> None:
    best = better(popularity, 0.1, "best")
    decisions = decide([(a_version(4), best)], popularity, a_version(3), None, settings)

    assert decisions[4][0] == "champion"
    assert decisions[4][1].startswith("recall@10 ")
    assert decisions[4][1].endswith("; champion v3's artifact is missing")
    assert decisions[3][0] == "retired"


@pytest.mark.parametrize("edge", ["margin", "z"])
def test_the_margin_must_be_exceeded_and_the_z_score_reached(
    edge: str, settings: Settings, popularity: Evaluation
) -> None:
    best = better(popularity, 0.02, "best", noise=0.2)
    gain, z = paired_gain(best, popularity)
    assert gain > 0 and z > 0

    def status(**gate: float) -> str:
        base = {"promotion_margin": gain / 2, "promotion_min_z": z / 2}
        tuned = Settings(settings.duckdb_path, settings.models_dir, **{**base, **gate})
        return decide([(a_version(1), best)], popularity, None, None, tuned)[1][0]

    if edge == "margin":  # a gain equal to the margin is not above it
        assert (status(promotion_margin=gain), status(promotion_margin=gain * 0.999)) == (
            "rejected",
            "champion",
        )
    else:  # a z equal to the minimum reaches it
        assert (status(promotion_min_z=z), status(promotion_min_z=z * 1.001)) == (
            "champion",
            "rejected",
        )


# ---- a training run on a tiny warehouse --------------------------------------------------------

CANDIDATES: dict[str, dict[str, Any]] = {
    "small_als": {
        "kind": "als",
        "factors": 8,
        "regularization": 0.05,
        "alpha": 2.0,
        "iterations": 3,
        "bm25_k1": 100.0,
        "bm25_b": 0.8,
        "random_state": 7,
    },
    "tuned_co_listen": {"kind": "co_listen", "neighbours": 30, "popularity_exponent": [0.0, 0.5]},
}


@pytest.fixture(scope="module")
def world() -> World:
    return World(seed=9, users=200, tracks=100, listens=12)


def run_settings(tmp_path: Path, world: World, **gate: float) -> Settings:
    database = tmp_path / "warehouse.duckdb"
    if not database.exists():
        write_warehouse(database, world)
    return Settings(
        duckdb_path=database,
        models_dir=tmp_path / "models",
        candidates=CANDIDATES,
        co_listen_neighbours=30,
        **gate,
    )


def test_a_run_nothing_passes_makes_popularity_the_champion_and_records_every_contender(
    tmp_path: Path, world: World
) -> None:
    settings = run_settings(tmp_path, world, promotion_margin=100.0)
    steps: list[str] = []
    started = time.monotonic()
    report = train(settings, steps.append)
    elapsed = time.monotonic() - started
    registry = model_versions(settings.duckdb_path)

    names = ["co_listen", "small_als", "tuned_co_listen", "popularity"]
    assert [(v.model_version, v.model_name) for v in registry] == list(enumerate(names, 1))
    assert registry == list(report.registered)
    assert [v.status for v in registry] == ["rejected"] * 3 + ["champion"]
    assert champion(settings.duckdb_path) == registry[-1] == report.champion_after
    assert report.champion_before is None and report.promoted
    # the fallback names why the best contender (by recall@10) failed
    contenders = report.evaluations[1:]
    best = max(range(3), key=lambda i: contenders[i].recall_at_10)
    assert registry[-1].status_reason == (
        f"no candidate beat the popularity baseline ({registry[best].status_reason})"
    )
    assert registry[1].status_reason.startswith("recall@10 ")  # untuned: no phrase first
    assert registry[2].status_reason.startswith("popularity_exponent=")
    assert "chosen on the validation split (random" in registry[2].status_reason
    assert registry[0].status_reason.startswith("the co-listen baseline; recall@10")
    listens = read_listens(settings.duckdb_path)
    for version, evaluation in zip(registry, (*contenders, report.evaluations[0]), strict=True):
        assert evaluation.name == (
            "popularity (baseline)"
            if version.model_name == "popularity"
            else f"{version.model_name} (v{version.model_version})"
        )
        assert (version.recall_at_10, version.ndcg_at_10) == (
            round(evaluation.recall_at_10, 6),
            round(evaluation.ndcg_at_10, 6),
        )
        assert version.baseline_metrics == {
            "popularity": report.evaluations[0].metrics(),
            "co_listen": contenders[0].metrics(),
        }
        model = load(Path(version.artifact_path))
        assert (model.kind, model.params) == (version.model_kind, version.hyperparameters)
        assert Path(version.artifact_path) == settings.models_dir / str(version.model_version)
        assert (version.split_kind, version.window_start_at, version.window_end_at) == (
            "random",
            FIRST_LOAD,
            FIRST_LOAD,
        )
        assert version.holdout_start_at is None
        assert version.train_listens + version.holdout_tracks <= listens.listens.sum()
        assert version.train_listens == report.split.train.listens
        assert version.train_users == len(np.unique(listens.user_ids))
        assert version.train_tracks == len(report.split.train.track_ids)
        assert version.eval_users == len(report.rows) == version.holdout_users
        assert version.holdout_tracks == report.split.holdout.matrix.nnz
    assert registry[1].hyperparameters == {
        k: v for k, v in CANDIDATES["small_als"].items() if k != "kind"
    }
    assert registry[2].hyperparameters["popularity_exponent"] in (0.0, 0.5)
    users = f"{len(report.rows):,} users"
    assert steps == [
        "training: reading listens",
        "training: fitting popularity (baseline)",
        f"training: evaluating popularity (baseline): {users}",
        "training: tuning tuned_co_listen {'popularity_exponent': 0.0}",
        "training: tuning tuned_co_listen {'popularity_exponent': 0.5}",
        "training: fitting co_listen",
        f"training: evaluating co_listen: {users}",
        "training: fitting small_als: 3 iterations",
        f"training: evaluating small_als: {users}",
        "training: fitting tuned_co_listen",
        f"training: evaluating tuned_co_listen: {users}",
        "training: registering and gating",
    ]
    assert all(0 < version.train_seconds <= elapsed for version in registry)
    # coverage: the share of the catalogue (dim_tracks) the evaluated users were served
    assert all(0 < version.catalogue_coverage <= 1 for version in registry)
    rendered = report.render()
    lines = rendered.splitlines()
    split, rows = report.split, report.rows
    assert lines[:3] == [
        f"Trained on {split.train.listens:,} listens of {len(split.train.user_ids):,} users and "
        f"{len(split.train.track_ids):,} tracks first seen {FIRST_LOAD} to {FIRST_LOAD};",
        "random split: a seeded share of each user's tracks held out; evaluated on "
        f"{len(rows):,} users with {split.holdout.matrix[rows].nnz:,} held-out tracks",
        f"  {'model':<34} {'recall@10':>9} {'ndcg@10':>8} {'coverage':>8} {'train s':>8}",
    ]
    for evaluation in report.evaluations:
        assert f"  {evaluation.name:<34} {evaluation.recall_at_10:>9.4f}" in rendered
    for version in registry:
        assert (
            f"version {version.model_version} ({version.model_name}): {version.status}" in rendered
        )
    assert rendered.endswith("champion: v4 (popularity)")
    assert "random split: a seeded share of each user's tracks held out" in rendered


def test_a_run_whose_best_passes_retires_the_champion_measured_on_the_same_holdout(
    tmp_path: Path, world: World
) -> None:
    train(run_settings(tmp_path, world, promotion_margin=100.0))
    first = model_versions(run_settings(tmp_path, world).duckdb_path)
    settings = run_settings(tmp_path, world, promotion_margin=-1.0, promotion_min_z=-np.inf)
    steps: list[str] = []
    report = train(settings, steps.append)
    registry = model_versions(settings.duckdb_path)

    second = registry[len(first) :]
    contenders = report.evaluations[1:-1]
    best = max(range(len(second)), key=lambda i: contenders[i].recall_at_10)
    assert [v.model_version for v in second] == [5, 6, 7]  # no popularity fallback this time
    assert report.champion_before == first[-1]
    assert report.champion_after == registry[4 + best] == champion(settings.duckdb_path)
    assert registry[3].status == "retired"
    assert registry[3].status_reason == (
        f"replaced by v{5 + best}, which beat it on the same holdout"
    )
    assert registry[:3] == first[:3]  # the first run's rejections stand
    assert [v.status for v in second] == [
        "champion" if i == best else "rejected" for i in range(len(second))
    ]
    # the old champion is measured on this run's holdout, and recorded as a baseline
    assert report.evaluations[-1].name == "champion v4 (popularity)"
    assert "; champion v4 (popularity) " in report.champion_after.status_reason
    assert "artifact is missing" not in report.champion_after.status_reason
    assert steps[-2:] == [
        f"training: evaluating champion v4 (popularity): {len(report.rows):,} users",
        "training: registering and gating",
    ]
    assert second[0].baseline_metrics["champion"] == {
        "model_version": 4,
        **report.evaluations[-1].metrics(),
    }
    assert report.render().endswith(
        f"champion: v{5 + best} ({second[best].model_name}), replacing v4"
    )


def test_enough_loads_make_a_time_split_unless_the_champion_has_seen_them_all(
    tmp_path: Path, world: World
) -> None:
    def settings(database: Path, **split: float) -> Settings:
        if not database.exists():
            write_warehouse(database, world, loads=3)
        return Settings(
            duckdb_path=database,
            models_dir=database.with_suffix(".models"),
            candidates={},
            co_listen_neighbours=30,
            eval_users=50,
            **split,
        )

    time_split = {"time_split_min_nights": 2, "holdout_nights": 1}
    # three loads, four needed: a random split, and a champion whose window holds all three
    first = train(settings(tmp_path / "seen.duckdb"))
    # a time split now would measure that champion on listens it trained on: random again
    second = train(settings(tmp_path / "seen.duckdb", **time_split))
    # the same loads and no champion: the last load is held out (and the gate let through)
    fresh = train(
        settings(
            tmp_path / "fresh.duckdb", **time_split, promotion_margin=-1, promotion_min_z=-np.inf
        )
    )

    assert first.champion_after is not None
    assert first.champion_after.window_end_at == FIRST_LOAD + timedelta(days=2)
    assert (first.split.kind, second.split.kind, fresh.split.kind) == ("random", "random", "time")
    # a seeded sample of eval_users users: the same users in both runs on one warehouse
    assert len(first.rows) == len(second.rows) == 50
    np.testing.assert_array_equal(first.rows, second.rows)
    assert all(v.eval_users == 50 < v.holdout_users for v in second.registered)
    cutoff = FIRST_LOAD + timedelta(days=2)
    assert (fresh.split.holdout_start_at, fresh.split.window_end_at) == (
        cutoff,
        FIRST_LOAD + timedelta(days=1),
    )
    assert all(v.holdout_start_at == cutoff for v in fresh.registered)
    # a contender passed: no popularity fallback is registered beside it
    assert [(v.model_name, v.status) for v in fresh.registered] == [("co_listen", "champion")]
    assert (
        fresh.render()
        .splitlines()[1]
        .startswith(
            f"time split: holdout = tracks first played from {cutoff}; evaluated on 50 users"
        )
    )


def test_no_listens_nothing_to_train_on(tmp_path: Path, world: World) -> None:
    database = write_warehouse(tmp_path / "warehouse.duckdb", world)
    with duckdb.connect(str(database)) as connection:
        connection.execute("delete from marts.fct_listen_events")
    with pytest.raises(RecommenderError) as refused:
        train(Settings(duckdb_path=database, models_dir=tmp_path / "models"))

    assert str(refused.value) == "marts.fct_listen_events is empty: nothing to train on yet"
    assert model_versions(database) == []
