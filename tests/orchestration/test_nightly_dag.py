"""The nightly DAG under Airflow's own test runner against the dev API: the same night as `make
elt` (marts, run record, published file), a failing page, and a second run while one runs."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from dev_api.faults import FOREVER, Fault, FaultPlan
from dev_api.server import running_api
from nightly.ledger import RunRecord
from tests.nightly.support import (
    api_world,
    digest,
    records,
    run_job,
    wait_for,
    webhook_receiver,
)
from tests.orchestration.support import DagRun, finish_dag, fresh_home, run_dag, start_dag
from tests.support import query

pytestmark = pytest.mark.dbt

NIGHTLY = "moovitamix_nightly"
ANALYST_SCHEMAS = ("marts", "features")


def mart_fingerprints(warehouse: Path) -> dict[str, tuple]:
    """Every marts and features table: its row count and a hash of each column that does not
    depend on when it was loaded (`*_at`, load ids, and `days_since_*`, which count whole days to
    the night's load: two loads seconds apart can fall either side of a record's day boundary),
    so two warehouses of the same day compare."""
    tables = query(
        warehouse,
        "select table_schema || '.' || table_name from information_schema.tables "
        f"where table_schema in {ANALYST_SCHEMAS} order by 1",
    )
    fingerprints = {}
    for (table,) in tables:
        (row,) = query(
            warehouse,
            "select count(*), sum(hash(columns(lambda c: c not like '%\\_at' escape '\\' "
            f"and c not like '%load_id%' and c not like 'days_since%'))) from {table}",
        )
        fingerprints[table] = row
    return fingerprints


def record_shape(record: RunRecord) -> dict[str, object]:
    """What a night did, without its timings and ids."""
    return {
        "status": record.status,
        "exit_code": record.exit_code,
        "steps": [(t.step, t.outcome) for t in record.steps],
        "volumes": sorted(
            (v.table_name, v.read_rows, v.new_rows, v.changed_rows, v.retired_rows, v.table_rows)
            for v in record.volumes
        ),
        "nodes": sorted((n.unique_id, n.status) for n in record.nodes),
        "findings": sorted((f.check, f.level, f.subject) for f in record.findings),
    }


@dataclass(frozen=True)
class Nights:
    cron_dir: Path
    airflow_dir: Path
    first: DagRun
    second: DagRun
    cron_marts: dict[str, tuple]
    airflow_marts_after_first: dict[str, tuple]
    published_after_first: str


@pytest.fixture(scope="module")
def nights(airflow_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Nights:
    """Day 0 under cron and under Airflow in two data folders, then day 1 under Airflow."""
    root = tmp_path_factory.mktemp("nights")
    cron_dir, airflow_dir = root / "cron", root / "airflow"
    with running_api(api_world(day=0)) as api:
        cron = run_job(cron_dir, api.url)
        assert cron.returncode == 0, cron.stderr[-3000:]
        home = fresh_home(airflow_template, root / "home")
        first = run_dag(NIGHTLY, home, airflow_dir, api.url)
        airflow_marts = mart_fingerprints(airflow_dir / "moovitamix.duckdb")
        published = digest(airflow_dir / "analytics.duckdb")
        api.set_day(1)
        second = run_dag(NIGHTLY, home, airflow_dir, api.url)
    return Nights(
        cron_dir=cron_dir,
        airflow_dir=airflow_dir,
        first=first,
        second=second,
        cron_marts=mart_fingerprints(cron_dir / "moovitamix.duckdb"),
        airflow_marts_after_first=airflow_marts,
        published_after_first=published,
    )


def test_a_night_under_airflow_runs_every_task_and_succeeds(nights: Nights) -> None:
    assert nights.first.state == "success", nights.first.log[-5000:]
    assert set(nights.first.tasks.values()) <= {"success", "skipped"}
    assert nights.second.state == "success", nights.second.log[-5000:]
    # the first night has no model yet: its training step trains one, before scoring
    (first, second) = records(nights.airflow_dir)
    [trained] = [f.message for f in first.findings if f.check == "training"]
    assert trained.startswith("Training: no champion yet")
    steps = [t.step for t in first.steps]
    assert steps.index("training") + 1 == steps.index("scoring")
    assert [f.check for f in second.findings].count("training") == 1


def test_a_night_under_airflow_leaves_the_marts_and_record_of_make_elt(nights: Nights) -> None:
    assert nights.airflow_marts_after_first == nights.cron_marts
    assert len(nights.cron_marts) >= 8
    assert all(rows > 0 for rows, *_ in nights.cron_marts.values())
    (cron_record,) = records(nights.cron_dir)
    airflow_record = records(nights.airflow_dir)[0]
    assert record_shape(airflow_record) == record_shape(cron_record)
    assert (cron_record.orchestrator_run_id, airflow_record.orchestrator_run_id) == (
        None,
        nights.first.run_id,
    )


def test_each_run_is_recorded_with_airflow_s_run_id_and_replaces_the_published_file(
    nights: Nights,
) -> None:
    ledger = records(nights.airflow_dir)
    assert [(r.orchestrator_run_id, r.status) for r in ledger] == [
        (nights.first.run_id, "success"),
        (nights.second.run_id, "success"),
    ]
    analytics = nights.airflow_dir / "analytics.duckdb"
    assert digest(analytics) != nights.published_after_first
    published = query(
        analytics, "select run_id, orchestrator_run_id from ops.pipeline_runs order by run_id"
    )
    assert published == [(r.run_id, r.orchestrator_run_id) for r in ledger]
    in_warehouse = query(
        nights.airflow_dir / "moovitamix.duckdb",
        "select run_id, status, orchestrator_run_id, finished_at is not null "
        "from ops.pipeline_runs order by run_id",
    )
    assert in_warehouse == [(r.run_id, r.status, r.orchestrator_run_id, True) for r in ledger]


def test_a_failing_page_fails_the_run_skips_publish_and_sends_the_alert(
    nights: Nights, airflow_template: Path, tmp_path: Path
) -> None:
    data_dir = Path(shutil.copytree(nights.airflow_dir, tmp_path / "data"))
    analytics = data_dir / "analytics.duckdb"
    published = digest(analytics)
    plan = FaultPlan([Fault("tracks", 2, "status", times=FOREVER, arg=503)])
    with webhook_receiver() as (url, received), running_api(api_world(day=2), faults=plan) as api:
        run = run_dag(
            NIGHTLY,
            fresh_home(airflow_template, tmp_path / "home"),
            data_dir,
            api.url,
            NIGHTLY__ALERT_WEBHOOK_URL=url,
        )
        tracks_page_2_requests = api.request_count("tracks", 2)

    assert run.state == "failed", run.log[-5000:]
    assert run.tasks["extract_load"] == "failed"
    assert run.tasks["publish"] == "upstream_failed"
    assert run.tasks["finish_night"] == "failed"  # it closed the record, then failed the run
    assert digest(analytics) == published
    failed = records(data_dir)[-1]
    assert (failed.status, failed.failing_step, failed.exit_code) == ("failed", "extract", 1)
    assert failed.orchestrator_run_id == run.run_id
    assert "tracks page 2" in (failed.error_message or "")
    assert failed.published_at is None
    # extract_load was retried once (ORCHESTRATION__EXTRACT_RETRIES=1), and the record says so
    assert [f.check for f in failed.findings].count("retried_step") == 1
    assert tracks_page_2_requests >= 4  # two attempts of the task, two requests each
    # one alert, the night's own (the failure callback stays quiet about a recorded failure)
    assert [message["text"] for message in received] == [failed.alert]
    assert failed.alert.startswith(
        f"MooVitamix nightly run {failed.run_id}: FAILED at step extract"
    )


def test_a_second_dag_run_while_one_runs_does_not_run_a_second_night(
    nights: Nights, airflow_template: Path, tmp_path: Path
) -> None:
    data_dir = Path(shutil.copytree(nights.airflow_dir, tmp_path / "data"))
    # A slow page holds the first night open for 15 s at least, whatever the machine's speed.
    plan = FaultPlan([Fault("listen_history", 2, "slow", arg=15)])
    with webhook_receiver() as (url, received), running_api(api_world(day=2), faults=plan) as api:
        first = start_dag(
            NIGHTLY,
            fresh_home(airflow_template, tmp_path / "home1"),
            data_dir,
            api.url,
            NIGHTLY__ALERT_WEBHOOK_URL=url,
            RUNTIME__REQUEST_TIMEOUT="60",
        )
        wait_for(
            lambda: api.request_count("listen_history", 2) > 0, "the first run's slow page", 120
        )
        second = run_dag(
            NIGHTLY,
            fresh_home(airflow_template, tmp_path / "home2"),
            data_dir,
            api.url,
            NIGHTLY__ALERT_WEBHOOK_URL=url,
        )
        running_when_second_ended = [r for r in records(data_dir) if r.status == "running"]
        first_run = finish_dag(first)

    assert second.state == "failed"
    assert second.tasks["begin_night"] == "failed"
    assert {second.tasks[t] for t in second.tasks if t != "begin_night"} <= {
        "upstream_failed",
        "skipped",
        None,
    }
    assert first_run.state == "success", first_run.log[-5000:]
    by_airflow_run = {r.orchestrator_run_id: r for r in records(data_dir)[-2:]}
    refused = by_airflow_run[second.run_id]
    assert (refused.status, refused.exit_code, refused.steps) == ("refused", 75, [])
    assert by_airflow_run[first_run.run_id].status == "success"
    # the second run ended while the first night was still open (in a step or between two)
    assert [r.run_id for r in running_when_second_ended] == [
        by_airflow_run[first_run.run_id].run_id
    ]
    assert [m["text"] for m in received] == [refused.alert]
