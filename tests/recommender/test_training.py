"""Training runs and the promotion gate, checked on the registry's rows and the saved artifacts.

One module warehouse sees three runs in turn: a deliberately bad candidate first (so the
popularity baseline becomes the champion, saying why), then the default ALS (promoted), then the
bad candidate again (rejected, the champion stays).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recommender.nightly import retrain_due
from recommender.settings import DEFAULT_CANDIDATES, Settings
from recommender.training import TrainingReport, train
from recommender.warehouse import ModelVersion, model_versions
from tests.recommender.conftest import BAD_CANDIDATE, TIME_SPLIT, BuiltWarehouse, settings_for
from tests.support import query


@pytest.fixture(scope="module")
def runs(
    built_warehouse: BuiltWarehouse, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Settings, list[tuple[TrainingReport, list[ModelVersion]]]]:
    """(settings, [(report, registry after the run)]) for the bad, good, bad sequence."""
    directory = tmp_path_factory.mktemp("training")
    good = settings_for(directory, built_warehouse.copy(directory))
    bad = settings_for(directory, good.duckdb_path, candidates=BAD_CANDIDATE)
    history = []
    for settings in (bad, good, bad):
        report = train(settings)
        history.append((report, model_versions(settings.duckdb_path)))
    return good, history


def statuses(registry: list[ModelVersion]) -> list[tuple[int, str, str]]:
    return [(v.model_version, v.model_name, v.status) for v in registry]


def test_with_no_learned_model_beating_popularity_popularity_becomes_the_champion(
    runs: tuple[Settings, list[tuple[TrainingReport, list[ModelVersion]]]],
) -> None:
    _, [(report, registry), *_] = runs
    assert statuses(registry) == [(1, "bad", "rejected"), (2, "popularity", "champion")]
    bad, popularity = registry
    assert bad.recall_at_10 < bad.baseline_metrics["popularity"]["recall_at_10"]
    assert "does not beat" in bad.status_reason
    assert popularity.status_reason.startswith("no learned candidate beat the popularity baseline")
    assert popularity.recall_at_10 == bad.baseline_metrics["popularity"]["recall_at_10"]
    assert report.champion_after == popularity


def test_a_better_candidate_is_promoted_and_the_old_champion_retired(
    runs: tuple[Settings, list[tuple[TrainingReport, list[ModelVersion]]]],
) -> None:
    _, [_, (report, registry), _] = runs
    assert statuses(registry) == [
        (1, "bad", "rejected"),
        (2, "popularity", "retired"),
        (3, "als", "champion"),
    ]
    als = registry[2]
    assert als.recall_at_10 > 1.05 * als.baseline_metrics["popularity"]["recall_at_10"]
    assert als.recall_at_10 > 1.05 * als.baseline_metrics["champion"]["recall_at_10"]
    assert als.baseline_metrics["champion"]["model_version"] == 2
    assert "replaced by v3" in registry[1].status_reason
    assert report.promoted


def test_a_worse_candidate_is_rejected_and_the_champion_stays(
    runs: tuple[Settings, list[tuple[TrainingReport, list[ModelVersion]]]],
) -> None:
    _, [*_, (report, registry)] = runs
    assert statuses(registry)[2:] == [(3, "als", "champion"), (4, "bad", "rejected")]
    bad = registry[3]
    assert bad.recall_at_10 < bad.baseline_metrics["champion"]["recall_at_10"]
    assert "champion v3 (als)" in bad.status_reason
    assert not report.promoted


def test_every_run_measures_candidates_and_baselines_on_one_holdout(
    runs: tuple[Settings, list[tuple[TrainingReport, list[ModelVersion]]]],
) -> None:
    settings, history = runs
    registry = history[-1][1]
    [(events,)] = query(settings.duckdb_path, "select count(*) from marts.fct_listen_events")
    for version in registry:
        assert version.split_kind == "random" and version.holdout_start_at is None
        assert 0 < version.train_listens < events  # a share of the pairs is held out
        assert version.holdout_users > 0 and version.holdout_tracks >= version.holdout_users
        assert set(version.baseline_metrics) >= {"popularity", "co_listen"}
        assert 0 < version.catalogue_coverage <= 1 and version.train_seconds >= 0
        saved = json.loads((Path(version.artifact_path) / "model.json").read_text())
        assert saved == {"kind": version.model_kind, "params": version.hyperparameters}
    # the same seeded holdout every run: the same users and held-out pairs, the same baselines
    assert len({(v.holdout_users, v.holdout_tracks, v.train_listens) for v in registry}) == 1
    assert len({v.baseline_metrics["popularity"]["recall_at_10"] for v in registry}) == 1
    rendered = history[1][0].render()
    for name in ("popularity (baseline)", "co_listen (baseline)", "als (v3)", "champion v2"):
        assert name in rendered


def test_a_history_of_enough_nights_gets_a_time_split(
    built_warehouse: BuiltWarehouse, tmp_path: Path
) -> None:
    candidates = {**DEFAULT_CANDIDATES, "item_item": {"kind": "co_listen", "neighbours": 50}}
    settings = settings_for(
        tmp_path, built_warehouse.copy(tmp_path), candidates=candidates, **TIME_SPLIT
    )
    report = train(settings)
    registry = model_versions(settings.duckdb_path)
    assert [(v.model_name, v.model_kind) for v in registry] == [
        ("als", "als"),
        ("item_item", "co_listen"),
    ]
    best, other = sorted(registry, key=lambda v: v.recall_at_10, reverse=True)
    assert best.status == "champion" and report.champion_after == best
    assert other.status == "rejected" and "below this run's best candidate" in other.status_reason
    version = registry[0]
    [(first_load, last_load, before_cutoff, new_pairs)] = query(
        settings.duckdb_path,
        "with pairs as (select user_id, track_id, min(first_seen_at) as first_seen_at "
        "from marts.fct_listen_events group by all) "
        "select (select min(first_seen_at) from marts.fct_listen_events), "
        "(select max(first_seen_at) from marts.fct_listen_events), "
        "(select count(*) from marts.fct_listen_events where first_seen_at < "
        "(select max(first_seen_at) from marts.fct_listen_events)), "
        "(select count(*) from pairs where first_seen_at = "
        "(select max(first_seen_at) from marts.fct_listen_events))",
    )
    assert version.split_kind == "time"
    assert (version.window_start_at, version.window_end_at) == (first_load, first_load)
    assert version.holdout_start_at == last_load
    assert version.train_listens == before_cutoff
    assert version.holdout_tracks <= new_pairs  # new to the user; users with no history left out


def test_retraining_is_due_when_the_listens_since_the_window_pass_the_share(
    built_warehouse: BuiltWarehouse, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, built_warehouse.copy(tmp_path), **TIME_SPLIT)
    assert retrain_due(settings) == "no model has been trained yet"
    train(settings)
    [(new_listens, trained_on)] = query(
        settings.duckdb_path,
        "select count(*) filter (where first_seen_at > (select min(first_seen_at) "
        "from marts.fct_listen_events)), count(*) filter (where first_seen_at = "
        "(select min(first_seen_at) from marts.fct_listen_events)) from marts.fct_listen_events",
    )
    share = new_listens / trained_on
    assert 0 < share < 0.2
    assert retrain_due(settings) is None
    lower = settings_for(tmp_path, settings.duckdb_path, retrain_share=share / 2)
    reason = retrain_due(lower)
    assert reason is not None and f"{new_listens:,} listens appeared" in reason
    assert "is 0 days old" in str(
        retrain_due(settings_for(tmp_path, settings.duckdb_path, retrain_after_days=0))
    )
