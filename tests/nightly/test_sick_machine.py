"""When the machine or the API is sick: the night fails early, says why, alerts, and the next one
recovers.

The disk tests put the data folder on a small tmpfs the test mounts (root only: CI runs as root)
and fill it with a ballast file; the others run anywhere.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from core import lock
from core.paths import Paths
from core.warehouse import DuckDBSettings
from dev_api.faults import FOREVER, Fault, FaultPlan
from dev_api.server import running_api
from extract.endpoints import ENDPOINTS
from nightly.failures import EXIT_DEADLINE, EXIT_NO_SPACE, EXIT_OUT_OF_MEMORY
from nightly.ledger import Ledger, utc_now
from nightly.runner import EXIT_SUCCESS, NightlyRun, Step, run_night
from tests.nightly.support import (
    TIMEOUT_SECONDS,
    api_world,
    digest,
    night_config,
    past_run,
    records,
    run_job,
    start_job,
    status,
    wait_for,
    webhook_receiver,
)
from tests.support import REPO_ROOT, query

SMALL_DISK_MB = 96  # room for the small world's data folder (about 16 MB) and a night
# The small world's nights need about 45 MB by the preflight's reckoning; the default floor
# (256 MB) would not fit this disk at all.
SMALL_DISK_ENV = {"NIGHTLY__MIN_FREE_MB": "20"}


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 96 MB tmpfs mounted for the test (root only; `.ci/run` runs as root)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small filesystem needs root; CI (.ci/run) runs as root")
    mount_point = tmp_path / "small_disk"
    mount_point.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SMALL_DISK_MB}m", "tmpfs", str(mount_point)],
        check=True,
    )
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "--lazy", str(mount_point)], check=True)


def fill(folder: Path, leave_bytes: int = 0) -> Path:
    """A ballast file that leaves about `leave_bytes` free on the filesystem of `folder`."""
    ballast = folder / "ballast"
    usage = os.statvfs(folder)
    size = usage.f_bavail * usage.f_frsize - leave_bytes
    descriptor = os.open(ballast, os.O_CREAT | os.O_WRONLY)
    try:
        os.posix_fallocate(descriptor, 0, size)
    finally:
        os.close(descriptor)
    return ballast


def raw_rows(data_dir: Path) -> dict[str, int]:
    """Every version of every raw table: what a night that did not load must leave alone."""
    return {
        endpoint.name: query(
            data_dir / "moovitamix.duckdb", f"select count(*) from raw.{endpoint.name}"
        )[0][0]
        for endpoint in ENDPOINTS
    }


def test_too_little_space_refuses_to_start_alerts_and_the_next_night_runs(
    first_night: Path, small_disk: Path
) -> None:
    data_dir = Path(shutil.copytree(first_night, small_disk / "data"))
    analytics = data_dir / "analytics.duckdb"
    published, raw_before = digest(analytics), raw_rows(data_dir)
    ballast = fill(small_disk, leave_bytes=5_000_000)
    with webhook_receiver() as (url, received), running_api(api_world(day=1)) as api:
        refused = run_job(data_dir, api.url, NIGHTLY__ALERT_WEBHOOK_URL=url, **SMALL_DISK_ENV)
        dead_man = status(data_dir, "--alert-if-stale", NIGHTLY__ALERT_WEBHOOK_URL=url)
        refused_state = (digest(analytics), raw_rows(data_dir))
        ballast.unlink()
        next_night = run_job(data_dir, api.url, **SMALL_DISK_ENV)

    assert refused.returncode == EXIT_NO_SPACE, refused.stdout[-3000:]
    run = records(data_dir)[-2]
    assert (run.status, run.failing_step, run.exit_code) == ("failed", "preflight", 3)
    assert [t.step for t in run.steps] == ["preflight"]  # not one step started
    needed = run.limits["needed_bytes"]
    assert run.limits["free_bytes"] < 5_500_000 < 20_000_000 <= needed
    assert refused_state == (published, raw_before)
    alert = received[0]["text"]
    assert "FAILED at step preflight (exit 3)" in alert
    assert "not enough disk space to start: " in alert and str(data_dir) in alert
    assert "What to do: free space on the disk of" in alert
    last_line = refused.stdout.strip().splitlines()[-1]
    assert last_line.startswith(f"Nightly run {run.run_id}: failed at step preflight")
    assert "What to do:" in last_line
    # the dead-man's switch runs the same check: it alerts and exits 1 though nothing is stale
    assert dead_man.returncode == 1
    assert "TOO LITTLE for the next night" in dead_man.stdout
    assert "STALE" not in dead_man.stdout
    assert received[1]["text"].startswith("MooVitamix nightly: NOT ENOUGH DISK for the next night")
    assert next_night.returncode == 0, next_night.stdout[-3000:]
    assert digest(analytics) != published


def test_a_disk_that_fills_up_mid_night_alerts_first_and_the_next_night_recovers(
    first_night: Path, small_disk: Path
) -> None:
    data_dir = Path(shutil.copytree(first_night, small_disk / "data"))
    analytics = data_dir / "analytics.duckdb"
    published, raw_before = digest(analytics), raw_rows(data_dir)
    # a slow page holds the run in its extraction while the disk fills up
    plan = FaultPlan([Fault("listen_history", 2, "slow", arg=2)])
    with webhook_receiver() as (url, received), running_api(api_world(1), faults=plan) as api:
        job = start_job(data_dir, api.url, NIGHTLY__ALERT_WEBHOOK_URL=url, **SMALL_DISK_ENV)
        wait_for(lambda: api.request_count("listen_history", 2) > 0, "the run to hit the slow page")
        ballast = fill(small_disk)
        stdout, stderr = job.communicate(timeout=120)
        failed_raw, failed_digest = raw_rows(data_dir), digest(analytics)
        ballast.unlink()
        next_night = run_job(data_dir, api.url, **SMALL_DISK_ENV)

    assert job.returncode == EXIT_NO_SPACE, stdout[-2000:] + stderr[-3000:]
    assert (failed_digest, failed_raw) == (published, raw_before)
    failed, recovered = records(data_dir)[-2:]
    # the record was written although the disk was full (the ledger's reserve)
    assert (failed.status, failed.failing_step, failed.exit_code) == ("failed", "extract", 3)
    assert failed.error_message.startswith(f"the disk is full (0.0 MB free in {data_dir})")
    assert "No space left on device" in failed.error_message
    [message] = received
    assert message["text"] == failed.alert
    assert "FAILED at step extract (exit 3)" in failed.alert
    assert "Free space in the data folder: 0.0 MB" in failed.alert
    last_line = stdout.strip().splitlines()[-1]
    assert last_line.startswith(f"Nightly run {failed.run_id}: failed at step extract")
    assert "What to do: free space on the disk of" in last_line
    assert "Traceback" not in stderr.strip().splitlines()[-1]
    assert next_night.returncode == 0, next_night.stdout[-3000:]
    assert recovered.status == "success"  # nothing to close: the failed night said so itself
    assert raw_rows(data_dir) != raw_before


def test_an_api_slower_than_the_deadline_is_stopped_named_and_alerted(data_dir: Path) -> None:
    analytics = data_dir / "analytics.duckdb"
    published, raw_before = digest(analytics), raw_rows(data_dir)
    deadline_seconds = 6
    plan = FaultPlan([Fault("*", None, "slow", times=FOREVER, arg=1.5)], rate=1.0)
    with webhook_receiver() as (url, received):
        with running_api(api_world(day=1), faults=plan) as api:
            started = time.monotonic()
            slow = run_job(
                data_dir,
                api.url,
                NIGHTLY__ALERT_WEBHOOK_URL=url,
                NIGHTLY__NIGHT_DEADLINE_MINUTES=str(deadline_seconds / 60),
                NIGHTLY__STEP_DEADLINE_SHARE="1",
            )
            seconds = time.monotonic() - started
        lock_free = not lock.is_held(data_dir / "nightly.lock")
        stopped = (digest(analytics), raw_rows(data_dir))
        with running_api(api_world(day=1)) as api:
            next_night = run_job(data_dir, api.url)

    assert slow.returncode == EXIT_DEADLINE, slow.stdout[-3000:]
    assert seconds < deadline_seconds + 60
    assert lock_free
    assert stopped == (published, raw_before)
    failed = records(data_dir)[-2]
    assert (failed.status, failed.failing_step, failed.exit_code) == ("failed", "extract", 124)
    assert failed.error_message.startswith(
        "step extract stopped at the night's deadline (NIGHTLY__NIGHT_DEADLINE_MINUTES=0.1); "
        "extraction aborted, raw tables unchanged; the API served "
    )
    # the pace tonight against the first night's, which read every page in a second or two
    pace = re.search(r"\(([\d,.]+)/min, usual ([\d,.]+)/min over 1 night", failed.error_message)
    assert pace is not None, failed.error_message
    tonight, usual = (float(number.replace(",", "")) for number in pace.groups())
    assert tonight < 60 < usual
    [message] = received
    assert "FAILED at step extract (exit 124)" in message["text"]
    assert "/min, usual " in message["text"]
    assert next_night.returncode == 0, next_night.stdout[-3000:]


def test_a_memory_limit_too_small_fails_naming_the_setting(data_dir: Path) -> None:
    analytics = data_dir / "analytics.duckdb"
    published = digest(analytics)
    with webhook_receiver() as (url, received), running_api(api_world(day=1)) as api:
        starved = run_job(
            data_dir, api.url, NIGHTLY__ALERT_WEBHOOK_URL=url, NIGHTLY__DUCKDB_MEMORY_LIMIT="1MB"
        )
        next_night = run_job(data_dir, api.url)

    assert starved.returncode == EXIT_OUT_OF_MEMORY, starved.stdout[-3000:]
    assert digest(analytics) != published  # by the next night, which had the default limit
    failed, recovered = records(data_dir)[-2:]
    assert failed.limits["duckdb_memory_limit"] == "1MB"
    assert failed.error_message.startswith(
        "out of memory under NIGHTLY__DUCKDB_MEMORY_LIMIT=1MB: Out of Memory Error"
    )
    [message] = received
    assert "(exit 4)" in message["text"]
    assert "What to do: raise NIGHTLY__DUCKDB_MEMORY_LIMIT (now 1MB" in message["text"]
    last_line = starved.stdout.strip().splitlines()[-1]
    assert last_line.startswith(f"Nightly run {failed.run_id}: failed at step ")
    assert "NIGHTLY__DUCKDB_MEMORY_LIMIT" in last_line
    assert next_night.returncode == 0, next_night.stdout[-3000:]
    assert recovered.limits["duckdb_memory_limit"].endswith("MiB")  # the machine's default


def test_a_killed_job_leaves_no_dev_api_running(tmp_path: Path) -> None:
    job = start_job(tmp_path, None)  # no API configured: the job serves the dev API itself

    def dev_api_children() -> list[int]:
        children = []
        for entry in Path("/proc").iterdir():
            try:
                stat = (entry / "stat").read_text()
                command = (entry / "cmdline").read_bytes()
            except (OSError, ValueError):
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            if parent == job.pid and b"dev_api" in command:
                children.append(int(entry.name))
        return children

    assert job.stderr is not None
    for line in job.stderr:  # the job logs the dev API's URL once the API serves
        if "no API configured: serving the dev API" in line:
            break
    [child] = dev_api_children()
    job.kill()
    job.wait()  # not communicate(): an orphan would hold the job's stderr open
    for pipe in (job.stdout, job.stderr):
        pipe.close()

    def gone() -> bool:
        try:
            state = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        return state in ("Z", "X")  # exited; its new parent has yet to reap it

    try:
        wait_for(gone, "the orphaned dev API to stop", timeout=10)
    finally:
        if not gone():  # never leave one behind, even when the test fails
            os.kill(child, signal.SIGKILL)


def test_status_and_the_dead_man_check_the_room_for_the_next_night(tmp_path: Path) -> None:
    Ledger(tmp_path / "runs").write(past_run(utc_now() - timedelta(hours=2)))  # not stale
    free_mb = shutil.disk_usage(tmp_path).free / 1e6
    with webhook_receiver() as (url, received):
        short = status(
            tmp_path,
            "--alert-if-stale",
            NIGHTLY__ALERT_WEBHOOK_URL=url,
            NIGHTLY__MIN_FREE_MB=str(round(free_mb * 2)),
        )
        roomy = status(tmp_path, "--alert-if-stale", NIGHTLY__ALERT_WEBHOOK_URL=url)

    assert short.returncode == 1
    [line] = [line for line in short.stdout.splitlines() if line.startswith("Disk: ")]
    assert line.endswith("TOO LITTLE for the next night")
    assert f"at least NIGHTLY__MIN_FREE_MB={round(free_mb * 2)}" in line
    [alert] = received
    assert alert["text"].startswith("MooVitamix nightly: NOT ENOUGH DISK for the next night")
    assert "STALE" not in alert["text"]
    assert roomy.returncode == 0
    assert "Disk: " in roomy.stdout and roomy.stdout.rstrip().endswith(": ok")


# The runner's part, in this process with stand-in steps.


def night(paths: Paths, steps: list[Step], **settings: float) -> int:
    return run_night(steps, night_config(paths, **settings)).exit_code


def test_a_step_past_its_deadline_is_stopped_and_the_night_fails_with_124(
    tmp_path: Path,
) -> None:
    paths = Paths.under(tmp_path)

    def hangs(run: NightlyRun) -> None:
        time.sleep(60)

    started = time.monotonic()
    exit_code = night(
        paths, [Step("extract", hangs)], night_deadline_minutes=0.05, step_deadline_share=0.25
    )

    assert exit_code == EXIT_DEADLINE
    assert time.monotonic() - started < 10
    [record] = Ledger(paths.runs_dir).records()
    assert record.error_message == (
        "step extract stopped at its deadline of 0.0125 min (NIGHTLY__STEP_DEADLINE_SHARE=0.25 "
        "of NIGHTLY__NIGHT_DEADLINE_MINUTES=0.05)"
    )
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert signal.getsignal(signal.SIGALRM) == signal.SIG_DFL


def test_a_full_disk_in_any_step_is_told_apart_from_other_failures(tmp_path: Path) -> None:
    paths = Paths.under(tmp_path)

    def full(run: NightlyRun) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", "x.parquet")

    assert night(paths, [Step("load", full)]) == EXIT_NO_SPACE
    [record] = Ledger(paths.runs_dir).records()
    assert record.error_message.startswith("the disk is full (")
    assert record.error_message.endswith(
        f" MB free in {tmp_path}): [Errno 28] No space left on device: 'x.parquet'"
    )
    assert record.action and record.action.startswith(f"free space on the disk of {tmp_path}")
    assert night(paths, [Step("load", lambda run: None)]) == EXIT_SUCCESS


def test_memory_exhausted_in_duckdb_or_in_python_is_told_apart(tmp_path: Path) -> None:
    paths = Paths.under(tmp_path)

    def duckdb_over_its_limit(run: NightlyRun) -> None:
        with duckdb.connect(":memory:", config={"memory_limit": "1MB"}) as connection:
            connection.execute("select count(distinct md5(range::varchar)) from range(300000)")

    def python_out_of_memory(run: NightlyRun) -> None:
        raise MemoryError

    assert night(paths, [Step("dbt_build", duckdb_over_its_limit)]) == EXIT_OUT_OF_MEMORY
    assert night(paths, [Step("scoring", python_out_of_memory)]) == EXIT_OUT_OF_MEMORY
    in_duckdb, in_python = Ledger(paths.runs_dir).records()
    limit = DuckDBSettings.from_config().duckdb_memory_limit
    assert in_duckdb.error_message.startswith(
        f"out of memory under NIGHTLY__DUCKDB_MEMORY_LIMIT={limit}: Out of Memory Error: "
    )
    assert in_python.error_message == (
        "the machine ran out of memory outside DuckDB (MemoryError); DuckDB may use up to "
        f"NIGHTLY__DUCKDB_MEMORY_LIMIT={limit}"
    )
    assert in_python.action and in_python.action.startswith("lower NIGHTLY__DUCKDB_MEMORY_LIMIT")


@pytest.mark.parametrize(
    ("machine_gib", "expected"),
    [(24, "1024MiB"), (1, "512MiB")],  # this machine's size; a small one: half of it
)
def test_the_default_memory_limit_is_1_gib_or_half_a_smaller_machine(
    monkeypatch: pytest.MonkeyPatch, machine_gib: int, expected: str
) -> None:
    monkeypatch.delenv("NIGHTLY__DUCKDB_MEMORY_LIMIT", raising=False)
    monkeypatch.setattr("core.warehouse.machine_memory_bytes", lambda: machine_gib * 2**30)
    assert DuckDBSettings.from_config().duckdb_memory_limit == expected
    monkeypatch.setenv("NIGHTLY__DUCKDB_MEMORY_LIMIT", "6GB")  # a configured limit stays
    assert DuckDBSettings.from_config().duckdb_memory_limit == "6GB"


def test_dbt_runs_under_the_same_duckdb_settings(tmp_path: Path) -> None:
    """dbt-duckdb reads the settings core.dbt passes (profiles.yml `settings:`)."""
    spill = tmp_path / "spill"
    environment = {
        "NIGHTLY__DUCKDB_MEMORY_LIMIT": "123MB",
        "NIGHTLY__DUCKDB_TEMP_DIRECTORY": str(spill),
    }
    shown = subprocess.run(
        [sys.executable, "-c", SHOW_SETTINGS, str(tmp_path)],
        cwd=REPO_ROOT,
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
    )

    assert shown.returncode == 0, shown.stdout[-2000:] + shown.stderr[-2000:]
    [row] = [line for line in shown.stdout.splitlines() if "MiB" in line]
    # DuckDB shows the limit in binary units
    limit = f"{123e6 / 2**20:.1f} MiB"
    assert [cell.strip() for cell in row.strip("| ").split("|")] == [limit, "True"]


SHOW_SETTINGS = """
import os, sys
from pathlib import Path
from core.dbt import run_dbt
from core.paths import Paths
from core.warehouse import DuckDBSettings
spill = os.environ["NIGHTLY__DUCKDB_TEMP_DIRECTORY"]
shown = run_dbt(
    Paths.under(Path(sys.argv[1])), "show", "--inline",
    "select current_setting('memory_limit') as m, "
    f"current_setting('temp_directory') = '{spill}' as t",
    capture=True,
)
print(shown.output)
sys.exit(shown.returncode)
"""
