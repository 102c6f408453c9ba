"""The nightly job's steps, in order: one line each in STEPS, so adding a step is one line.

Each function is the glue between the run and the module that does the work. They all write
the private warehouse only; `publish` alone writes the analysts' file, and only when no earlier
step found a data-quality error.
"""

from __future__ import annotations

import time

from extract import settings as paths
from extract.api import tonights_api
from extract.pipeline import (
    RAW_SCHEMA,
    extract_verified,
    load_verified,
    make_pipeline,
    recover_pending_packages,
)
from extract.source import ExtractionError
from nightly.checks import listens_finding, new_test_warnings, volume_findings
from nightly.dbt_build import FAILED_STATUSES, describe, run_build
from nightly.ledger import ERROR, Finding, TableVolume, utc_now
from nightly.measure import measure
from nightly.publish import publish as publish_snapshot
from nightly.runner import NightlyRun, Step, StepFailed
from recommender.nightly import run as recommend_tonight

LISTEN_HISTORY_TABLE = f"{RAW_SCHEMA}.listen_history"


def extract(run: NightlyRun) -> None:
    """Finish an interrupted run's verified package, then read the API into a verified package."""
    pipeline = make_pipeline(paths.DUCKDB_PATH, paths.PIPELINES_DIR)
    started = time.monotonic()
    recovered = recover_pending_packages(pipeline)
    try:
        with tonights_api() as (url, token):
            reports = extract_verified(pipeline, url, token)
    except ExtractionError as exc:
        raise StepFailed(f"extraction failed, raw tables unchanged: {exc}") from exc
    run.carry["extraction"] = (pipeline, reports, recovered, started)


def load(run: NightlyRun) -> None:
    """Merge the verified package into raw and record what each table gained and lost."""
    pipeline, reports, recovered, started = run.carry.pop("extraction")
    summary = load_verified(pipeline, reports, recovered, started)
    print(summary.render())
    run.record.load_id = summary.load_id
    run.record.volumes = [
        TableVolume(
            table_name=f"{RAW_SCHEMA}.{table.endpoint}",
            announced_rows=table.announced,
            read_rows=table.read,
            new_rows=table.new,
            changed_rows=table.changed,
            retired_rows=table.retired,
            quarantined_rows=table.quarantined,
            retried_requests=table.error_responses,
            rate_limited_requests=table.rate_limited,
        )
        for table in summary.tables
    ]


def dbt_build(run: NightlyRun) -> None:
    """`dbt build`; a model that fails is a failed step, a test that fails a data-quality error."""
    build = run_build(
        paths.DUCKDB_PATH, paths.DBT_TARGET_DIR, paths.DBT_LOG_DIR, (run.lock_descriptor,)
    )
    run.record.nodes = list(build.nodes)
    print(build.render())
    if broken := build.broken_models():
        raise StepFailed(
            f"dbt build: {len(broken)} model(s) failed, first {broken[0].name}: "
            f"{describe(broken[0])}"
        )
    failed_tests = build.tests(*FAILED_STATUSES)
    if build.returncode != 0 and not failed_tests:  # dbt itself failed (parse, connection...)
        raise StepFailed(f"dbt build exited {build.returncode}: see its output above")
    previous = next((r for r in reversed(run.earlier) if r.nodes), None)
    run.add(
        Finding("dbt_test", ERROR, node.name, f"dbt test {node.name} failed: {describe(node)}")
        for node in failed_tests
    )
    run.add(new_test_warnings(build.nodes, previous))


def checks(run: NightlyRun) -> None:
    """Count every raw and analyst table and compare with history (runs after a dbt test error
    too, so that a bad night's volumes are on record)."""
    previous = next(
        (
            record
            for record in reversed(run.earlier)
            if (volume := record.volume(LISTEN_HISTORY_TABLE)) and volume.listens is not None
        ),
        None,
    )
    measured = measure(paths.DUCKDB_PATH, previous.load_id if previous else None)
    for table, rows in measured.table_rows.items():
        volume = run.record.volume(table)
        if volume is None:
            volume = TableVolume(table)
            run.record.volumes.append(volume)
        volume.table_rows = rows
        if table == LISTEN_HISTORY_TABLE:
            volume.listens = measured.listens
    print(
        "\n".join(f"  {table:<40} {rows:>12,} rows" for table, rows in measured.table_rows.items())
    )
    run.add(volume_findings(measured.table_rows, run.history(), run.settings))
    previous_listens = previous.volume(LISTEN_HISTORY_TABLE).listens if previous else None
    run.add(
        [listens_finding(measured.listens, measured.listens_of_retired_users, previous_listens)]
    )


def scoring(run: NightlyRun) -> None:
    """Score every user with the champion (training one first on a fresh warehouse), retrain when
    due; after a data-quality error it scores nothing and says yesterday's recommendations stay."""
    print(recommend_tonight(build_succeeded=not run.has_data_error).render())


def publish(run: NightlyRun) -> None:
    """Swap in a new analysts' file (runs only when no step found a data-quality error)."""
    publication = publish_snapshot(
        paths.DUCKDB_PATH, paths.ANALYTICS_DUCKDB_PATH, run.records_as_published()
    )
    run.record.published_at = utc_now()
    print(publication.render())


STEPS: tuple[Step, ...] = (
    Step("extract", extract),
    Step("load", load),
    Step("dbt_build", dbt_build),
    Step("checks", checks, after_data_error=True),
    Step("scoring", scoring, after_data_error=True),
    Step("publish", publish),
)
