"""`make status` from the ledger alone: freshness, the dead-man's switch, runs in progress."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from core import lock
from nightly.ledger import Ledger, RunRecord, utc_now
from tests.nightly.support import past_run, status, webhook_receiver


def test_no_run_ever_is_stale_and_the_dead_man_alerts(tmp_path: Path) -> None:
    with webhook_receiver() as (url, received):
        checked = status(tmp_path, "--alert-if-stale", NIGHTLY__ALERT_WEBHOOK_URL=url)

    assert checked.returncode == 1
    freshness = [line.split() for line in checked.stdout.splitlines() if "raw.users" in line]
    assert freshness == [["raw.users", "loaded", "never", "STALE"]]
    [alert] = received
    assert alert["text"].startswith("MooVitamix nightly: STALE, nothing succeeded in the last 26 h")
    assert "raw.users never loaded" in alert["text"]


def test_a_load_older_than_26_hours_is_stale_and_a_newer_one_is_not(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "runs")
    ledger.write(past_run(utc_now() - timedelta(hours=30)))
    with webhook_receiver() as (url, received):
        stale = status(tmp_path, "--alert-if-stale", NIGHTLY__ALERT_WEBHOOK_URL=url)
        ledger.write(past_run(utc_now() - timedelta(hours=2)))
        fresh = status(tmp_path, "--alert-if-stale", NIGHTLY__ALERT_WEBHOOK_URL=url)

    assert stale.returncode == 1
    [users] = [line.split() for line in stale.stdout.splitlines() if "raw.users" in line]
    assert (users[1], users[4], users[5]) == ("loaded", "30.0", "STALE")
    assert [message["text"].count("last loaded 30 h ago") for message in received] == [3]
    assert fresh.returncode == 0
    assert "STALE" not in fresh.stdout


def test_a_run_in_progress_shows_as_running_and_one_whose_holder_died_as_killed(
    tmp_path: Path,
) -> None:
    record = RunRecord.start()
    record.current_step = "load"
    Ledger(tmp_path / "runs").write(record)

    without_lock = status(tmp_path)
    with lock.exclusive(tmp_path / "nightly.lock"):
        with_lock = status(tmp_path)

    def status_of_the_run(output: str) -> str:
        [line] = [line for line in output.splitlines() if record.run_id in line]
        assert line.rstrip().endswith("load")
        return line.split()[3]

    assert status_of_the_run(without_lock.stdout) == "killed?"
    assert status_of_the_run(with_lock.stdout) == "running"
