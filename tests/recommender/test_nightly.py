"""The recommender's nightly training: a fresh warehouse trains its first champion, a night with
little new trains nothing and says why, a night past the retraining rule trains again, and a
failed build trains and scores nothing.

The failed build is real: a contract-breaking value in raw makes an error-level test fail, and
`dbt build` exits non-zero; the champion and yesterday's recommendations must then stay exactly
as they were.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from recommender.nightly import NightlyTraining, Retraining, retraining, train_if_due
from recommender.scoring import ScoringReport, score
from recommender.settings import Settings
from recommender.training import train
from recommender.warehouse import champion, model_versions
from tests.dbt.support import run_dbt
from tests.recommender.conftest import TIME_SPLIT, BuiltWarehouse, settings_for
from tests.support import REPO_ROOT, query

RECOMMENDATIONS = "select * from ml.recommendations order by user_id, rank"


@pytest.fixture(scope="module")
def first_night(
    built_warehouse: BuiltWarehouse, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Settings, NightlyTraining, ScoringReport]:
    """A fresh warehouse's training step, then its scoring step."""
    directory = tmp_path_factory.mktemp("nightly")
    settings = settings_for(directory, built_warehouse.copy(directory))
    return settings, train_if_due(settings), score(settings)


def cli(settings: Settings, data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m recommender ...` on the warehouse of `settings`."""
    return subprocess.run(
        [sys.executable, "-m", "recommender", *args],
        cwd=REPO_ROOT,
        env={
            **os.environ,
            "MOOVITAMIX_DATA_DIR": str(data_dir),
            "MOOVITAMIX_DUCKDB_PATH": str(settings.duckdb_path),
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_fresh_warehouse_trains_a_champion_which_then_scores_everyone(
    first_night: tuple[Settings, NightlyTraining, ScoringReport],
) -> None:
    settings, training, scoring = first_night
    assert training.report is not None
    assert (
        training.message == "Training: no champion yet, a bootstrap training run picks the first."
    )
    after = champion(settings.duckdb_path)
    assert after is not None and after == training.report.champion_after
    assert training.render() == f"{training.message}\n{training.report.render()}"
    assert training.summary() == (
        f"{training.message} {len(training.report.registered)} version(s) registered; "
        f"champion v{after.model_version} ({after.model_name}) promoted"
    )
    # the first scoring scores every current user; the report says how many, for the run record
    [(users,)] = query(settings.duckdb_path, "select count(*) from marts.dim_users")
    assert scoring.scored and (scoring.users_rescored, scoring.users_kept) == (users, 0)
    assert scoring.everyone_because is not None
    assert query(settings.duckdb_path, "select distinct model_version from ml.recommendations") == [
        (after.model_version,)
    ]


def test_the_night_after_trains_nothing_and_says_why(
    first_night: tuple[Settings, NightlyTraining, ScoringReport],
) -> None:
    settings, _, _ = first_night
    versions = model_versions(settings.duckdb_path)
    quiet = train_if_due(settings)
    assert quiet.report is None
    assert quiet.render() == quiet.summary() == quiet.message
    assert quiet.message.startswith(
        "No retraining due: the latest training run is 0 days old (retrain every 7) and 0 "
        "listens appeared after the latest run's data window, 0% of the "
    )
    assert model_versions(settings.duckdb_path) == versions


def test_a_failed_build_trains_nothing_and_leaves_yesterdays_recommendations_in_place(
    first_night: tuple[Settings, NightlyTraining, ScoringReport], tmp_path: Path
) -> None:
    settings, _, _ = first_night
    yesterday = query(settings.duckdb_path, RECOMMENDATIONS)
    versions = model_versions(settings.duckdb_path)
    assert yesterday
    with duckdb.connect(str(settings.duckdb_path)) as connection:
        connection.execute(
            "update raw.users set gender = 'Robot' where id = "
            "(select min(id) from raw.users where _dlt_valid_to is null)"
        )
    build = run_dbt(settings.duckdb_path, tmp_path, "build")
    assert build.returncode != 0
    assert build.statuses()["stg_moovitamix__users_gender_in_contract_list"] == "fail"

    refused = "dbt test stg_moovitamix__users_gender_in_contract_list failed"
    # even a retraining that would be due (every run is 0 days old) is not run on refused data
    eager = settings_for(tmp_path, settings.duckdb_path, retrain_after_days=0)
    assert retraining(eager).due
    training = train_if_due(eager, refused=refused)
    current = champion(settings.duckdb_path)
    assert current is not None and training.report is None
    assert training.message == (
        f"{refused}: no training on data that failed its checks; champion "
        f"v{current.model_version} ({current.model_name}) stays"
    )
    assert model_versions(settings.duckdb_path) == versions

    report = score(settings, refused=refused)
    assert not report.scored
    assert report.render().startswith(f"{refused}: no scoring")
    assert f"holds {len(yesterday):,} rows" in report.render()
    assert query(settings.duckdb_path, RECOMMENDATIONS) == yesterday

    # `python -m recommender score --build-failed` (what make would call) refuses the same way
    refusal = cli(settings, tmp_path, "score", "--build-failed")
    assert refusal.returncode == 2, refusal.stderr
    assert "yesterday's recommendations stay" in refusal.stdout
    assert query(settings.duckdb_path, RECOMMENDATIONS) == yesterday


def test_a_night_past_the_retrain_share_trains_again(
    built_warehouse: BuiltWarehouse, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, built_warehouse.copy(tmp_path), **TIME_SPLIT)
    train_if_due(settings)
    runs_before = {v.trained_at for v in model_versions(settings.duckdb_path)}
    eager = settings_for(tmp_path, settings.duckdb_path, retrain_share=0.0, **TIME_SPLIT)
    again = train_if_due(eager)
    assert again.report is not None
    assert again.message.startswith("Training: ") and "listens appeared after" in again.message
    assert len({v.trained_at for v in model_versions(settings.duckdb_path)}) == len(runs_before) + 1


def test_retraining_is_due_when_the_listens_since_the_window_pass_the_share(
    built_warehouse: BuiltWarehouse, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, built_warehouse.copy(tmp_path), **TIME_SPLIT)
    assert retraining(settings) == Retraining(
        True, "no champion yet, a bootstrap training run picks the first"
    )
    train(settings)
    [(new_listens, trained_on)] = query(
        settings.duckdb_path,
        "select count(*) filter (where first_seen_at > (select min(first_seen_at) "
        "from marts.fct_listen_events)), count(*) filter (where first_seen_at = "
        "(select min(first_seen_at) from marts.fct_listen_events)) from marts.fct_listen_events",
    )
    share = new_listens / trained_on
    assert 0 < share < 0.2
    not_due = retraining(settings)
    assert not not_due.due and f"{new_listens:,} listens appeared" in not_due.reason
    lower = retraining(settings_for(tmp_path, settings.duckdb_path, retrain_share=share / 2))
    assert lower.due and f"{new_listens:,} listens appeared" in lower.reason
    old = retraining(settings_for(tmp_path, settings.duckdb_path, retrain_after_days=0))
    assert old.due and old.reason == "the latest training run is 0 days old (retrain every 0)"


def test_scoring_from_the_command_line_trains_a_first_champion_when_there_is_none(
    built_warehouse: BuiltWarehouse, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, built_warehouse.copy(tmp_path))
    first = cli(settings, tmp_path, "score")
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("No champion yet: training one first.\n")
    after = champion(settings.duckdb_path)
    assert after is not None
    assert query(settings.duckdb_path, "select distinct model_version from ml.recommendations") == [
        (after.model_version,)
    ]
    versions = model_versions(settings.duckdb_path)
    again = cli(settings, tmp_path, "score")  # a champion now: it only scores
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("Nothing changed since the last scoring")
    assert model_versions(settings.duckdb_path) == versions
