"""Training runs and the promotion gate, checked on the registry's rows and the saved artifacts.

One module warehouse sees three runs in turn: a deliberately bad candidate beside the co-listen
baseline under an unreachable margin first (so the popularity baseline becomes the champion,
saying why), then the default candidates (the best is promoted), then the bad candidate again
(the co-listen baseline, between popularity and the champion, is rejected; the champion stays).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recommender.settings import DEFAULT_CANDIDATES, Settings
from recommender.training import TrainingReport, train
from recommender.warehouse import ModelVersion, model_versions
from tests.recommender.conftest import BAD_CANDIDATE, TIME_SPLIT, BuiltWarehouse, settings_for
from tests.support import query


@pytest.fixture(scope="module")
def runs(
    built_warehouse: BuiltWarehouse, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Settings, list[tuple[TrainingReport, list[ModelVersion]]]]:
    """(settings, [(report, registry after the run)]) for the unreachable, good, bad sequence."""
    directory = tmp_path_factory.mktemp("training")
    good = settings_for(directory, built_warehouse.copy(directory))
    unreachable = settings_for(
        directory, good.duckdb_path, candidates=BAD_CANDIDATE, promotion_margin=10.0
    )
    bad = settings_for(directory, good.duckdb_path, candidates=BAD_CANDIDATE)
    history = []
    for settings in (unreachable, good, bad):
        report = train(settings)
        history.append((report, model_versions(settings.duckdb_path)))
    return good, history


def statuses(registry: list[ModelVersion]) -> list[tuple[int, str, str]]:
    return [(v.model_version, v.model_name, v.status) for v in registry]


def test_with_no_contender_passing_the_gate_popularity_becomes_the_champion(
    runs: tuple[Settings, list[tuple[TrainingReport, list[ModelVersion]]]],
) -> None:
    _, [(report, registry), *_] = runs
    assert statuses(registry) == [
        (1, "co_listen", "rejected"),
        (2, "bad", "rejected"),
        (3, "popularity", "champion"),
    ]
    co_listen, bad, popularity = registry
    assert bad.recall_at_10 < bad.baseline_metrics["popularity"]["recall_at_10"]
    assert "below this run's best candidate, v1" in bad.status_reason
    # the co-listen baseline beats popularity, but not by the 1000% margin asked for
    assert co_listen.recall_at_10 > popularity.recall_at_10
    assert "does not beat by more than 1000%" in co_listen.status_reason
    assert popularity.status_reason.startswith("no candidate beat the popularity baseline")
    assert popularity.recall_at_10 == bad.baseline_metrics["popularity"]["recall_at_10"]
    assert report.champion_after == popularity


def test_the_best_contender_is_promoted_and_the_old_champion_retired(
    runs: tuple[Settings, list[tuple[TrainingReport, list[ModelVersion]]]],
) -> None:
    _, [_, (report, registry), _] = runs
    this_run = registry[3:]
    assert [v.model_name for v in this_run] == ["co_listen", "als", "co_listen_tilted"]
    best = max(this_run, key=lambda v: v.recall_at_10)
    assert best.status == "champion" and report.champion_after == best
    for other in this_run:
        if other != best:
            assert other.status == "rejected"
            assert f"below this run's best candidate, v{best.model_version}" in (
                other.status_reason
            )
    assert registry[2].status == "retired"
    assert f"replaced by v{best.model_version}" in registry[2].status_reason
    assert best.recall_at_10 > 1.05 * best.baseline_metrics["popularity"]["recall_at_10"]
    assert best.recall_at_10 > 1.05 * best.baseline_metrics["champion"]["recall_at_10"]
    assert best.baseline_metrics["champion"]["model_version"] == 3
    # the grid candidate says what the validation split chose, from the values it was given
    tilted = this_run[2]
    grid = DEFAULT_CANDIDATES["co_listen_tilted"]["popularity_exponent"]
    assert tilted.hyperparameters["popularity_exponent"] in grid
    assert (
        f"popularity_exponent={tilted.hyperparameters['popularity_exponent']} chosen on the "
        "validation split" in tilted.status_reason
    )
    assert f"best of {len(grid)}" in tilted.status_reason
    assert report.promoted


def test_a_contender_between_popularity_and_the_champion_is_rejected(
    runs: tuple[Settings, list[tuple[TrainingReport, list[ModelVersion]]]],
) -> None:
    _, [_, (_, before), (report, registry)] = runs
    [champion] = [v for v in before if v.status == "champion"]
    co_listen, bad = registry[-2:]
    assert (co_listen.model_name, bad.model_name) == ("co_listen", "bad")
    popularity = co_listen.baseline_metrics["popularity"]["recall_at_10"]
    assert popularity < co_listen.recall_at_10 < champion.recall_at_10
    assert co_listen.status == "rejected" and bad.status == "rejected"
    assert "does not beat" in co_listen.status_reason
    assert f"champion v{champion.model_version} ({champion.model_name})" in co_listen.status_reason
    assert [v for v in registry if v.status == "champion"] == [champion]
    assert not report.promoted


def test_the_co_listen_baseline_can_be_promoted(
    built_warehouse: BuiltWarehouse, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, built_warehouse.copy(tmp_path), candidates=BAD_CANDIDATE)
    report = train(settings)
    co_listen, bad = model_versions(settings.duckdb_path)
    assert (co_listen.model_name, co_listen.model_kind, co_listen.status) == (
        "co_listen",
        "co_listen",
        "champion",
    )
    assert co_listen.status_reason.startswith("the co-listen baseline; recall@10")
    assert co_listen.hyperparameters == {"neighbours": settings.co_listen_neighbours}
    assert bad.status == "rejected"
    assert report.champion_after == co_listen


def test_every_run_measures_candidates_and_baselines_on_one_holdout(
    runs: tuple[Settings, list[tuple[TrainingReport, list[ModelVersion]]]],
) -> None:
    settings, history = runs
    registry = history[-1][1]
    [(events,)] = query(settings.duckdb_path, "select count(*) from marts.fct_listen_events")
    for version in registry:
        assert version.split_kind == "random" and version.holdout_start_at is None
        assert version.eval_users == version.holdout_users  # fewer than eval_users: all of them
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
    for name in ("popularity (baseline)", "co_listen (v4)", "als (v5)", "champion v3"):
        assert name in rendered


def test_a_history_of_enough_nights_gets_a_time_split(
    built_warehouse: BuiltWarehouse, tmp_path: Path
) -> None:
    candidates = {**DEFAULT_CANDIDATES, "item_item": {"kind": "co_listen", "neighbours": 50}}
    settings = settings_for(
        tmp_path,
        built_warehouse.copy(tmp_path),
        candidates=candidates,
        eval_users=100,
        **TIME_SPLIT,
    )
    report = train(settings)
    registry = model_versions(settings.duckdb_path)
    assert [(v.model_name, v.model_kind) for v in registry] == [
        ("co_listen", "co_listen"),
        ("als", "als"),
        ("co_listen_tilted", "co_listen"),
        ("item_item", "co_listen"),
    ]
    best, *others = sorted(registry, key=lambda v: v.recall_at_10, reverse=True)
    assert best.status == "champion" and report.champion_after == best
    for other in others:
        assert other.status == "rejected" and "below this run's best candidate" in (
            other.status_reason
        )
    # evaluated on a seeded sample of 100 of the users with held-out tracks, the same for all
    assert {(v.eval_users, v.holdout_users) for v in registry} == {(100, registry[0].holdout_users)}
    assert registry[0].holdout_users > 100 and len(report.rows) == 100
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
