"""The recommender's two nightly steps, `training` then `scoring`, on record and in the warehouse:
a first night trains the first champion and scores with it; a night with nothing due trains
nothing and says why; a night that promotes scores once, with the new champion; a night with a
data-quality error trains nothing; a training that fails fails the night before scoring.

The first night is the session's published one (`first_night`, run as cron runs it); the nights
after it run the two steps (and what they need around them) in this process on a copy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from nightly import steps
from nightly.ledger import ERROR, INFO, Finding, RunRecord
from nightly.runner import (
    EXIT_DATA_QUALITY,
    EXIT_FAILED,
    EXIT_SUCCESS,
    NightlyRun,
    Step,
    report_activity,
    run_night,
)
from nightly.settings import NightConfig
from nightly.steps import STEPS
from recommender.warehouse import ModelVersion, champion, model_versions
from tests.nightly.support import digest, records
from tests.support import query

pytestmark = pytest.mark.dbt

BY_NAME = {step.name: step for step in STEPS}


def night(data_dir: Path, names: list[str], *extra: Step, **recommender: Any) -> RunRecord:
    """A night of the named steps (after `extra` stand-ins) on `data_dir`, recommender settings
    overridden by `recommender`; its record."""
    config = NightConfig.for_data_dir(data_dir, **recommender)
    outcome = run_night([*extra, *(BY_NAME[name] for name in names)], config)
    assert outcome.record.exit_code == outcome.exit_code
    return outcome.record


def outcomes(record: RunRecord) -> list[tuple[str, str]]:
    return [(timing.step, timing.outcome) for timing in record.steps]


def messages(record: RunRecord, step: str) -> list[str]:
    """The info findings of `step`: what training and scoring did, one each."""
    return [f.message for f in record.findings if f.step == step and f.level == INFO]


def champion_of(data_dir: Path) -> ModelVersion:
    version = champion(data_dir / "moovitamix.duckdb")
    assert version is not None
    return version


def recommended_versions(data_dir: Path) -> list[tuple[int]]:
    return query(
        data_dir / "moovitamix.duckdb", "select distinct model_version from ml.recommendations"
    )


def test_a_first_night_trains_the_first_champion_then_scores_with_it(first_night: Path) -> None:
    [record] = records(first_night)
    steps = outcomes(record)
    assert steps.index(("checks", "ok")) < steps.index(("training", "ok"))
    assert steps.index(("training", "ok")) + 1 == steps.index(("scoring", "ok"))
    version = champion_of(first_night)
    [trained] = messages(record, "training")
    assert trained.startswith("Training: no champion yet, a bootstrap training run picks the first")
    assert trained.endswith(f"champion v{version.model_version} ({version.model_name}) promoted")
    [scored] = messages(record, "scoring")
    assert scored.startswith("Scored ") and f"with champion v{version.model_version} " in scored
    assert recommended_versions(first_night) == [(version.model_version,)]
    # the run record splits the night's recommender time in two, for the analysts too
    for warehouse in ("moovitamix.duckdb", "analytics.duckdb"):
        [(training, scoring)] = query(
            first_night / warehouse,
            "select training_seconds, scoring_seconds from ops.pipeline_runs",
        )
        assert training > 0 and scoring > 0


def test_a_night_with_no_retraining_due_trains_nothing_says_why_and_scores(
    data_dir: Path,
) -> None:
    warehouse = data_dir / "moovitamix.duckdb"
    versions = model_versions(warehouse)
    record = night(data_dir, ["training", "scoring"])

    assert record.exit_code == EXIT_SUCCESS
    assert outcomes(record)[-2:] == [("training", "ok"), ("scoring", "ok")]
    [not_due] = messages(record, "training")
    assert not_due.startswith("No retraining due: the latest training run is 0 days old")
    assert model_versions(warehouse) == versions
    [scored] = messages(record, "scoring")
    assert scored.startswith("Nothing changed since the last scoring")


def test_a_night_that_promotes_scores_once_with_the_new_champion(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = champion_of(data_dir)
    activities: list[tuple[str | None, str]] = []  # what `make status` showed, step by step

    def shown(run: NightlyRun, activity: str) -> None:
        activities.append((run.record.current_step, activity))
        report_activity(run, activity)

    monkeypatch.setattr(steps, "report_activity", shown)
    # retraining due (every run is old enough), and any contender passes the gate
    record = night(
        data_dir,
        ["training", "scoring"],
        retrain_after_days=0,
        promotion_margin=-1.0,
        promotion_min_z=-1e9,
    )

    assert record.exit_code == EXIT_SUCCESS
    after = champion_of(data_dir)
    assert after.model_version > before.model_version
    [trained] = messages(record, "training")
    assert trained.startswith("Training: the latest training run is 0 days old")
    assert trained.endswith(f"champion v{after.model_version} ({after.model_name}) promoted")
    # one scoring, everyone, with the new champion
    [scored] = messages(record, "scoring")
    assert f"the champion changed (v{before.model_version} -> v{after.model_version})" in scored
    assert [t.step for t in record.steps].count("scoring") == 1
    assert recommended_versions(data_dir) == [(after.model_version,)]
    # training's progress reached the ledger (make status) under its own step, then scoring's
    assert ("training", "training: reading listens") in activities
    shown_in = [step for step, _ in activities]
    trained, scored = shown_in.count("training"), shown_in.count("scoring")
    assert trained and scored and shown_in == ["training"] * trained + ["scoring"] * scored


def test_a_night_with_a_data_quality_error_trains_nothing(data_dir: Path) -> None:
    warehouse = data_dir / "moovitamix.duckdb"
    versions = model_versions(warehouse)
    recommendations = query(warehouse, "select * from ml.recommendations order by all")
    published = digest(data_dir / "analytics.duckdb")

    def failed_test(run: NightlyRun) -> None:
        run.add([Finding("dbt_test", ERROR, "unique_dim_users", "dbt test failed: 2 rows")])

    record = night(
        data_dir,
        ["checks", "training", "scoring", "publish"],
        Step("dbt_build", failed_test),
        retrain_after_days=0,  # retraining would be due
    )

    assert record.exit_code == EXIT_DATA_QUALITY
    assert outcomes(record)[-3:] == [("training", "ok"), ("scoring", "ok"), ("publish", "skipped")]
    [refused] = messages(record, "training")
    version = champion_of(data_dir)
    assert refused == (
        "1 data-quality error(s) tonight, first: dbt test failed: 2 rows: no training on data "
        f"that failed its checks; champion v{version.model_version} ({version.model_name}) stays"
    )
    assert model_versions(warehouse) == versions
    assert messages(record, "scoring") == []  # refused: nothing scored
    assert query(warehouse, "select * from ml.recommendations order by all") == recommendations
    assert digest(data_dir / "analytics.duckdb") == published


def test_a_training_that_fails_fails_the_night_before_scoring(data_dir: Path) -> None:
    warehouse = data_dir / "moovitamix.duckdb"
    recommendations = query(warehouse, "select * from ml.recommendations order by all")
    published = digest(data_dir / "analytics.duckdb")
    with duckdb.connect(str(warehouse)) as connection:  # nothing left to train on
        connection.execute("delete from marts.fct_listen_events")

    record = night(data_dir, ["training", "scoring", "publish"], retrain_after_days=0)

    assert record.exit_code == EXIT_FAILED
    assert (record.status, record.failing_step) == ("failed", "training")
    assert record.error_message is not None and "nothing to train on" in record.error_message
    assert outcomes(record) == [("training", "failed")]  # neither scored nor published
    assert query(warehouse, "select * from ml.recommendations order by all") == recommendations
    assert digest(data_dir / "analytics.duckdb") == published
