"""The job when things go wrong: killed mid-load, an API that fails, a drop in users.

Whatever happens, raw history stays whole, the analysts' file is published only by a run that
passed every gate, and the run record says what happened.
"""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import pytest

from dev_api.faults import FOREVER, Fault, FaultPlan
from dev_api.server import running_api
from dev_api.world import World
from tests.nightly.support import (
    api_world,
    current_step,
    digest,
    records,
    run_job,
    start_job,
    wait_for,
    webhook_receiver,
)
from tests.support import query

pytestmark = pytest.mark.dbt

SECRET = "T0000/B0000/webhook-secret-never-logged"


def expected_listens(world: World) -> int:
    """Non-null track ids in the API's current lists: the rows of marts.fct_listens."""
    return sum(
        sum(item is not None for item in record["items"] or [])
        for record in world.records("listen_history")
    )


def test_a_run_killed_mid_load_is_recorded_and_the_next_run_loses_and_doubles_nothing(
    data_dir: Path,
) -> None:
    world = api_world(day=1)
    with running_api(world) as api:
        job = start_job(data_dir, api.url)
        wait_for(lambda: current_step(data_dir) == "load", "the run to reach its load step")
        job.send_signal(signal.SIGSTOP)  # freeze it, then check it is still loading
        step_when_killed = current_step(data_dir)
        job.kill()
        job.communicate()
        completed = run_job(data_dir, api.url)

    assert step_when_killed == "load"
    assert completed.returncode == 0, completed.stderr[-3000:]
    killed, finished = records(data_dir)[-2:]
    assert (killed.status, killed.failing_step, killed.exit_code) == ("failed", "load", None)
    assert "killed" in (killed.error_message or "")
    assert [f.check for f in finished.findings_at("warning")] == ["interrupted_run"]
    warehouse = data_dir / "moovitamix.duckdb"
    for table, key in (("users", "id"), ("tracks", "id"), ("listen_history", "user_id")):
        current = query(
            warehouse, f"select {key} from raw.{table} where _dlt_valid_to is null order by 1"
        )
        assert [key for (key,) in current] == sorted(world.keys(table)), table
        assert not query(
            warehouse,
            f"select {key}, _row_hash from raw.{table} group by all having count(*) > 1",
        ), f"duplicate versions in raw.{table}"
    # day 0's versions are all still there: nothing of the first night was lost
    [(first_night_users,)] = query(
        warehouse,
        "select count(*) from raw.users "
        "where _dlt_load_id = (select min(load_id) from raw._dlt_loads)",
    )
    assert first_night_users == len(api_world(day=0).keys("users"))
    analytics = data_dir / "analytics.duckdb"
    assert query(analytics, "select count(*), count(distinct user_id) from marts.dim_users") == [
        (len(world.keys("users")), len(world.keys("users")))
    ]
    assert query(analytics, "select count(*) from marts.fct_listens") == [
        (expected_listens(world),)
    ]


def test_a_failed_run_publishes_nothing_and_records_the_failure(data_dir: Path) -> None:
    analytics = data_dir / "analytics.duckdb"
    published = (digest(analytics), analytics.stat().st_ino)
    with socket.socket() as closed:  # a webhook that is down: nothing listens on this port
        closed.bind(("127.0.0.1", 0))
        webhook_down = f"http://127.0.0.1:{closed.getsockname()[1]}/services/{SECRET}"
    plan = FaultPlan([Fault("tracks", 2, "status", times=FOREVER, arg=503)])
    with running_api(api_world(day=1), faults=plan) as api:
        completed = run_job(data_dir, api.url, NIGHTLY__ALERT_WEBHOOK_URL=webhook_down)

    assert completed.returncode == 1
    assert (digest(analytics), analytics.stat().st_ino) == published
    assert not list(data_dir.glob(".analytics.duckdb*"))
    failed = records(data_dir)[-1]
    assert (failed.status, failed.failing_step, failed.exit_code) == ("failed", "extract", 1)
    assert "tracks page 2" in (failed.error_message or "")
    assert failed.published_at is None
    assert query(
        data_dir / "moovitamix.duckdb",
        "select status, failing_step, exit_code, error_message from ops.pipeline_runs "
        "where run_id = ?",
        failed.run_id,
    ) == [("failed", "extract", 1, failed.error_message)]
    assert "could not post the alert to the webhook" in completed.stderr
    assert "at step extract (exit 1)" in completed.stderr
    ledger_text = "".join(path.read_text() for path in (data_dir / "runs").glob("*.json"))
    assert SECRET not in completed.stdout + completed.stderr + ledger_text


def test_half_the_users_gone_fails_the_volume_gate_publishes_nothing_and_alerts(
    data_dir: Path,
) -> None:
    analytics = data_dir / "analytics.duckdb"
    published = digest(analytics)
    users_before, users_now = (
        len(api_world(0).keys("users")),
        len(api_world(1, users=100).keys("users")),
    )
    with webhook_receiver() as (url, received), running_api(api_world(1, users=100)) as api:
        completed = run_job(
            data_dir,
            api.url,
            NIGHTLY__MIN_HISTORY_RUNS="1",
            NIGHTLY__ALERT_WEBHOOK_URL=f"{url}/services/{SECRET}",
        )

    assert completed.returncode == 2, completed.stderr[-3000:]
    assert digest(analytics) == published
    run = records(data_dir)[-1]
    assert (run.status, run.failing_step, run.exit_code) == ("failed", "checks", 2)
    assert [t.outcome for t in run.steps if t.step == "publish"] == ["skipped"]
    errors = {f.subject: (f.observed, f.usual) for f in run.findings_at("error")}
    assert users_now / users_before < 0.55
    assert errors["raw.users"] == errors["marts.dim_users"] == (users_now, users_before)
    assert [message["path"] for message in received] == [f"/services/{SECRET}"]
    alert = received[0]["text"]
    assert alert == run.alert
    assert f"run {run.run_id}: FAILED at step checks (exit 2); nothing published" in alert
    change = users_now / users_before - 1
    assert f"raw.users: {users_now} rows, usual {users_before} ({change:+.0%})" in alert
    # the alert names the run report, written for a failed night too
    report = data_dir / "report.html"
    assert alert.endswith(f"\nRun report: {report.resolve()}")
    assert f"Newest night {run.run_id}: <b>failed</b> at step checks" in report.read_text()
    assert SECRET not in completed.stdout + completed.stderr
    # scoring says why it scored nothing: the volume check's error, not a failed dbt build
    assert "dbt build failed" not in completed.stdout
    assert "1 data-quality error(s) tonight" not in completed.stdout  # two tables dropped
    assert "data-quality error(s) tonight, first: raw.users" in completed.stdout
    assert "no scoring on data that failed its checks" in completed.stdout
