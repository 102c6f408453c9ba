"""The run record published in the analysts' file says what the ledger says at the end."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from dev_api.server import running_api
from nightly.ledger import Ledger, new_run_id
from tests.nightly.support import api_world, records, run_job
from tests.support import query


def test_a_slow_night_is_published_as_warned_and_unfinished_like_its_ledger_says(
    data_dir: Path,
) -> None:
    """Three earlier nights of half a second make tonight's night slow (a duration warning):
    the published row must already say `warned`, and its finished_at is null (the run had not
    ended when it published) while the ledger, written after, has it."""
    ledger = Ledger(data_dir / "runs")
    [first] = ledger.records()
    for hours in (72, 48, 24):
        started = first.started_at - timedelta(hours=hours)
        quick = timedelta(seconds=0.5)
        ledger.write(
            replace(
                first,
                run_id=new_run_id(started),
                started_at=started,
                finished_at=started + quick,
                published_at=started + quick,
            )
        )
    with running_api(api_world(day=1)) as api:
        completed = run_job(
            data_dir,
            api.url,
            NIGHTLY__MIN_HISTORY_RUNS="3",
            NIGHTLY__DURATION_WARN_MIN_SECONDS="0",
        )

    assert completed.returncode == 0, completed.stderr[-3000:]
    run = records(data_dir)[-1]
    assert run.status == "warned" and run.finished_at is not None
    assert [f.check for f in run.findings if f.check == "duration"] == ["duration"]
    [(status, finished_at, published_at)] = query(
        data_dir / "analytics.duckdb",
        "select status, finished_at, published_at from ops.pipeline_runs where run_id = ?",
        run.run_id,
    )
    assert (status, finished_at) == ("warned", None) and published_at is not None
    assert query(
        data_dir / "analytics.duckdb",
        "select level from ops.run_findings where run_id = ? and check_name = 'duration'",
        run.run_id,
    ) == [("warning",)]
