"""The recommender's nightly step: bootstrap and score after a good build, nothing after a bad one.

The failed build is real: a contract-breaking value in raw makes an error-level test fail, and
`dbt build` exits non-zero; yesterday's recommendations must then stay exactly as they were.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from recommender.nightly import NightlyReport, run
from recommender.settings import Settings
from recommender.warehouse import model_versions
from tests.dbt.support import run_dbt
from tests.recommender.conftest import TIME_SPLIT, BuiltWarehouse, settings_for
from tests.support import REPO_ROOT, query

RECOMMENDATIONS = "select * from ml.recommendations order by user_id, rank"


@pytest.fixture(scope="module")
def first_night(
    built_warehouse: BuiltWarehouse, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Settings, NightlyReport]:
    directory = tmp_path_factory.mktemp("nightly")
    settings = settings_for(directory, built_warehouse.copy(directory))
    return settings, run(settings)


def test_a_fresh_warehouse_gets_a_champion_then_recommendations(
    first_night: tuple[Settings, NightlyReport],
) -> None:
    settings, report = first_night
    assert report.scored
    assert "No champion yet: bootstrap training." in report.render()
    assert "No retraining due." in report.render()
    # the first scoring scores every current user; the report says how many, for the run record
    [scoring] = report.scorings
    [(users,)] = query(settings.duckdb_path, "select count(*) from marts.dim_users")
    assert (scoring.users_rescored, scoring.users_kept) == (users, 0)
    assert scoring.everyone_because is not None
    [champion] = [v for v in model_versions(settings.duckdb_path) if v.status == "champion"]
    assert query(settings.duckdb_path, "select distinct model_version from ml.recommendations") == [
        (champion.model_version,)
    ]


def test_a_failed_build_leaves_yesterdays_recommendations_in_place(
    first_night: tuple[Settings, NightlyReport], tmp_path: Path
) -> None:
    settings, _ = first_night
    yesterday = query(settings.duckdb_path, RECOMMENDATIONS)
    assert yesterday
    with duckdb.connect(str(settings.duckdb_path)) as connection:
        connection.execute(
            "update raw.users set gender = 'Robot' where id = "
            "(select min(id) from raw.users where _dlt_valid_to is null)"
        )
    build = run_dbt(settings.duckdb_path, tmp_path, "build")
    assert build.returncode != 0
    assert build.statuses()["stg_moovitamix__users_gender_in_contract_list"] == "fail"

    report = run(settings, refused="dbt test stg_moovitamix__users_gender_in_contract_list failed")
    assert not report.scored
    assert report.render().startswith(
        "dbt test stg_moovitamix__users_gender_in_contract_list failed: no scoring"
    )
    assert f"holds {len(yesterday):,} rows" in report.render()
    assert query(settings.duckdb_path, RECOMMENDATIONS) == yesterday

    # `python -m recommender score --build-failed` (what make would call) refuses the same way
    cli = subprocess.run(
        [sys.executable, "-m", "recommender", "score", "--build-failed"],
        cwd=REPO_ROOT,
        env={
            **os.environ,
            "MOOVITAMIX_DATA_DIR": str(tmp_path),
            "MOOVITAMIX_DUCKDB_PATH": str(settings.duckdb_path),
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert cli.returncode == 2, cli.stderr
    assert "yesterday's recommendations stay" in cli.stdout
    assert query(settings.duckdb_path, RECOMMENDATIONS) == yesterday


def test_a_night_past_the_retrain_share_trains_again(
    built_warehouse: BuiltWarehouse, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, built_warehouse.copy(tmp_path), **TIME_SPLIT)
    run(settings)
    runs_before = {v.trained_at for v in model_versions(settings.duckdb_path)}
    eager = settings_for(tmp_path, settings.duckdb_path, retrain_share=0.0, **TIME_SPLIT)
    report = run(eager)
    assert "Retraining: " in report.render()
    assert len({v.trained_at for v in model_versions(settings.duckdb_path)}) == len(runs_before) + 1
