"""A second night while an analyst holds the published file open, a second run is attempted and
`make status` is asked: the run neither waits for nor blocks any of them."""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dev_api.faults import Fault, FaultPlan
from dev_api.server import running_api
from nightly.runner import EXIT_LOCKED
from tests.nightly.support import (
    AnalystSession,
    api_world,
    job_environment,
    records,
    run_job,
    start_job,
    status,
    wait_for,
)
from tests.support import REPO_ROOT

pytestmark = pytest.mark.dbt


@dataclass(frozen=True)
class SecondNight:
    data_dir: Path
    job: subprocess.CompletedProcess[str]
    seen_before: dict[str, Any]
    seen_by_the_open_session_after: dict[str, Any]
    seen_after_reconnecting: dict[str, Any]
    second_run: subprocess.CompletedProcess[str]
    second_run_seconds: float
    status_during: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def second_night(first_night: Path, tmp_path_factory: pytest.TempPathFactory) -> SecondNight:
    data_dir = Path(shutil.copytree(first_night, tmp_path_factory.mktemp("second") / "data"))
    analyst = AnalystSession(data_dir / "analytics.duckdb")
    seen_before = analyst.ask()
    # The slow page holds the run in its extract step for 15 s whatever the machine's speed,
    # so the second run and `status` below surely meet it running.
    faults = FaultPlan(
        [
            Fault("users", 1, "rate_limit", arg=1),
            Fault("tracks", 2, "status", arg=503),
            Fault("listen_history", 2, "slow", arg=15),
        ]
    )
    with running_api(api_world(day=1), faults=faults) as api:
        job = start_job(data_dir, api.url, RUNTIME__REQUEST_TIMEOUT="60")
        wait_for(lambda: api.request_count("listen_history", 2) > 0, "the run to hit the slow page")
        started = time.monotonic()
        second_run = run_job(data_dir, api.url)
        second_run_seconds = time.monotonic() - started
        status_during = status(data_dir)
        stdout, stderr = job.communicate(timeout=120)
    seen_after = analyst.ask()
    seen_after_reconnecting = analyst.ask("reconnect")
    analyst.close()
    return SecondNight(
        data_dir=data_dir,
        job=subprocess.CompletedProcess(job.args, job.returncode, stdout, stderr),
        seen_before=seen_before,
        seen_by_the_open_session_after=seen_after,
        seen_after_reconnecting=seen_after_reconnecting,
        second_run=second_run,
        second_run_seconds=second_run_seconds,
        status_during=status_during,
    )


def test_an_open_analyst_session_does_not_stop_the_run_and_sees_it_after_reconnecting(
    second_night: SecondNight,
) -> None:
    assert second_night.job.returncode == 0, second_night.job.stderr[-3000:]
    first, second, _ = records(second_night.data_dir)
    before = second_night.seen_before
    assert before["runs"] == [first.run_id]
    # the open session still reads the snapshot it opened, although the file was replaced
    assert second_night.seen_by_the_open_session_after == before
    after = second_night.seen_after_reconnecting
    assert after["runs"] == [first.run_id, second.run_id]
    assert after["listen_events"] > before["listen_events"]


def test_the_record_counts_each_table_s_rows_retries_and_429s(second_night: SecondNight) -> None:
    _, second, _ = records(second_night.data_dir)
    counts = {
        volume.table_name: (volume.read_rows, volume.retried_requests, volume.rate_limited_requests)
        for volume in second.volumes
        if volume.table_name.startswith("raw.")
    }
    world = api_world(day=1)
    assert counts == {
        "raw.users": (len(world.keys("users")), 1, 1),
        "raw.tracks": (len(world.keys("tracks")), 1, 0),
        "raw.listen_history": (len(world.keys("listen_history")), 0, 0),
    }
    marts = {v.table_name: v.table_rows for v in second.volumes}
    assert marts["marts.dim_users"] == len(world.keys("users"))
    assert marts["marts.fct_listen_events"] == second_night.seen_after_reconnecting["listen_events"]


def test_a_second_run_while_one_runs_exits_at_once_with_its_own_code(
    second_night: SecondNight,
) -> None:
    refused = second_night.second_run
    assert refused.returncode == EXIT_LOCKED
    assert "another nightly run holds" in refused.stderr
    assert second_night.second_run_seconds < 15  # interpreter start and imports, no waiting
    statuses = [(r.status, r.exit_code) for r in records(second_night.data_dir)]
    assert statuses == [("success", 0), ("success", 0), ("refused", EXIT_LOCKED)]


def test_status_shows_the_run_in_progress_then_every_run(second_night: SecondNight) -> None:
    first, second, refused = records(second_night.data_dir)
    during = second_night.status_during
    assert during.returncode == 0, during.stderr
    [line] = [line for line in during.stdout.splitlines() if second.run_id in line]
    assert line.split()[3] == "running" and "extract" in line

    after = subprocess.run(
        # -o: a test never re-creates the venv, even if pyproject.toml is newer
        ["make", "--no-print-directory", "-s", "-o", ".venv/bin/.installed", "status"],
        cwd=REPO_ROOT,
        env=job_environment(second_night.data_dir, None),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert after.returncode == 0, after.stderr
    lines = after.stdout.splitlines()
    [newest, middle, oldest] = [
        next(line for line in lines if run.run_id in line) for run in (refused, second, first)
    ]
    assert lines.index(newest) < lines.index(middle) < lines.index(oldest)
    # run, date, time, status, exit, seconds, then rows read per endpoint
    assert oldest.split()[3:5] == ["success", "0"]
    assert oldest.split()[6:9] == ["200", "150", "200"]
    assert middle.split()[3:5] == ["success", "0"]
    assert newest.split()[3:5] == ["refused", "75"] and "another nightly run holds" in newest
    freshness = [line.split() for line in lines if line.lstrip().startswith("raw.")]
    assert [(cells[0], cells[1], cells[-1]) for cells in freshness] == [
        ("raw.users", "loaded", "ok"),
        ("raw.tracks", "loaded", "ok"),
        ("raw.listen_history", "loaded", "ok"),
    ]
