"""The nightly job's steps, in order: one line each in STEPS, so adding a step is one line.

Each function is the glue between the run and the module that does the work; it leaves its
result in a typed field of the run for the steps after it. They all write the private warehouse
only; `publish` alone writes the analysts' file, and only when no earlier step found a
data-quality error. With no API configured, `extract` serves the dev API's next day.
"""

from __future__ import annotations

import contextlib
import statistics
import time

from core.dbt import FAILED_STATUSES, DbtRun
from core.warehouse import RAW_SCHEMA
from dev_api.server import serve_next_day
from extract.pipeline import extract_verified, load_verified, make_pipeline
from extract.source import EndpointReport, ExtractionError
from nightly import engine
from nightly.changes import (
    Manifest,
    plan_build,
    publish_state,
    published_state_file,
    unchanged_since_publish,
)
from nightly.checks import duration_finding, listens_finding, new_test_warnings, volume_findings
from nightly.failures import DeadlineExceeded, StepFailed
from nightly.ledger import ERROR, INFO, Finding, RunRecord, TableVolume, utc_now
from nightly.measure import measure
from nightly.privacy import REQUEST, RETENTION, ErasureLog, apply_retention
from nightly.publish import publish as publish_snapshot
from nightly.runner import NightlyRun, Step, report_activity
from recommender.nightly import train_if_due
from recommender.scoring import score

LISTEN_HISTORY_TABLE = f"{RAW_SCHEMA}.listen_history"


def extract(run: NightlyRun) -> None:
    """Finish an interrupted run's verified package, then read the API into a verified package;
    stopped at its deadline, it says how fast the API served pages against usual."""
    paths, source = run.config.paths, run.config.source
    pipeline = make_pipeline(paths.warehouse, paths.pipelines_dir)
    api = (
        contextlib.nullcontext(source.api_url)
        if source.api_url
        else serve_next_day(paths.dev_api_day_file)
    )
    reports: dict[str, EndpointReport] = {}
    started = time.monotonic()
    try:
        with api as url:
            run.extraction = extract_verified(pipeline, url, source.api_token, reports)
    except ExtractionError as exc:
        raise StepFailed(f"extraction failed, raw tables unchanged: {exc}") from exc
    except DeadlineExceeded as exc:
        pace = api_pace(reports, time.monotonic() - started, run.history())
        raise DeadlineExceeded(f"{exc}; extraction aborted, raw tables unchanged; {pace}") from exc


def api_pace(reports: dict[str, EndpointReport], seconds: float, history: list[RunRecord]) -> str:
    """How fast the API served pages tonight against the usual pace of the last nights."""
    pages = sum(report.pages_read for report in reports.values())
    progress = ", ".join(
        f"{name} {report.pages_read}/{report.pages or '?'}" for name, report in reports.items()
    )
    per_minute = pages / max(seconds, 0.001) * 60
    tonight = f"the API served {pages} pages in {seconds:,.0f} s ({per_minute:,.1f}/min"
    usual = [pace for record in history if (pace := pages_per_minute(record)) is not None]
    if usual:
        tonight += f", usual {statistics.median(usual):,.1f}/min over {len(usual)} night(s)"
    return f"{tonight}; pages read: {progress or 'none'})"


def pages_per_minute(record: RunRecord) -> float | None:
    """The pace of a run's extraction: pages read per minute of its extract step."""
    pages = [v.pages_read for v in record.volumes if v.pages_read is not None]
    seconds = sum(t.seconds for t in record.steps if t.step == "extract" and t.outcome == "ok")
    return sum(pages) / seconds * 60 if pages and seconds > 0 else None


def load(run: NightlyRun) -> None:
    """Merge the verified package into raw and record what each table gained and lost."""
    assert run.extraction is not None, "load runs after extract"
    summary = run.loaded = load_verified(run.extraction)
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
            pages_read=run.extraction.reports[table.endpoint].pages_read,
        )
        for table in summary.tables
    ]


def privacy(run: NightlyRun) -> None:
    """Erase the personal data raw no longer may keep: users the service deleted more than
    `privacy.retention_days` ago, and what it sent again for users who asked to be forgotten."""
    erasures = apply_retention(run.config)
    for reason in (RETENTION, REQUEST):
        users = [e for e in erasures if e.reason == reason]
        if users:
            versions = sum(e.versions_erased for e in users)
            why = (
                f"deleted upstream over {run.config.privacy.retention_days:g} days ago"
                if reason == RETENTION
                else "who asked to be forgotten (sent again by the service)"
            )
            message = f"erased the personal columns of {len(users)} user(s) {why}"
            message += f": {versions} version(s)"
            run.add([Finding("privacy", INFO, "raw.users", message, len(users))])
            print(message)


def dbt_build(run: NightlyRun) -> None:
    """`dbt build` of what tonight's data reaches (nightly.changes: everything on a first night,
    after a failed one, with NIGHTLY__FULL_REBUILD, or on the Spark engine), on the configured
    engine (nightly.engine); the rest is recorded as skipped. A model that fails is a failed
    step, a test that fails a data-quality error."""
    paths = run.config.paths
    plan = plan_build(paths, run.settings.full_rebuild)
    args = plan.dbt_args()
    build = (
        engine.build(paths, args, inherit_fds=(run.lock_descriptor,))
        if args
        else DbtRun(("build",), 0, ())
    )
    skipped = []
    if plan.selectors is not None:
        skipped = Manifest(paths.dbt_target_dir / "manifest.json").skipped(
            build.nodes, f"not built: nothing it reads changed ({plan.reason})"
        )
    run.build = DbtRun(build.args, build.returncode, (*build.nodes, *skipped), build.output)
    build = run.build
    run.record.nodes = list(build.nodes)
    command = f"dbt {' '.join(args)}" if args else "dbt not run"
    message = f"{command}: {plan.reason}; {len(skipped)} models and tests skipped"
    run.add([Finding("dbt_build", INFO, "dbt", message, len(skipped))])
    print(message)
    print(build.render())
    if broken := build.broken_models():
        raise StepFailed(
            f"dbt build: {len(broken)} model(s) failed, first {broken[0].name}: "
            f"{broken[0].describe()}"
        )
    failed_tests = build.tests(*FAILED_STATUSES)
    if build.returncode != 0 and not failed_tests:  # dbt itself failed (parse, connection...)
        raise StepFailed(f"dbt build exited {build.returncode}: see its output above")
    run.add(
        Finding("dbt_test", ERROR, node.name, f"dbt test {node.name} failed: {node.describe()}")
        for node in failed_tests
    )
    run.add(new_test_warnings(build.nodes, run.earlier))
    if build.returncode == 0 and not failed_tests:
        plan.keep_as_built(paths)


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
    measured = measure(run.config.paths.warehouse, previous.load_id if previous else None)
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


def training(run: NightlyRun) -> None:
    """Train the recommender when it has no champion yet (a fresh warehouse) or the retraining
    rule fires (recommender.nightly.retraining), so that scoring uses tonight's champion;
    otherwise say why no retraining was due. After a data-quality error it trains nothing and
    says which error. A training run that fails fails the night (nothing is scored or published).
    """
    outcome = train_if_due(
        run.config.recommender,
        run.data_error_summary(),
        progress=lambda activity: report_activity(run, activity),
    )
    print(outcome.render())
    # trained or not, and why, in the run record
    registered = len(outcome.report.registered) if outcome.report else 0
    run.add([Finding("training", INFO, "ml.model_versions", outcome.summary(), registered)])


def scoring(run: NightlyRun) -> None:
    """Score the users who need it with the champion training left, once; after a data-quality
    error it scores nothing and says which error and that yesterday's recommendations stay."""
    report = score(
        run.config.recommender,
        run.data_error_summary(),
        progress=lambda activity: report_activity(run, activity),
    )
    print(report.render())
    if report.scored:  # who was re-scored and who kept yesterday's rows, in the run record
        run.add(
            [Finding("scoring", INFO, "ml.recommendations", report.message, report.users_rescored)]
        )


def publish(run: NightlyRun) -> None:
    """Judge the night's duration, then swap in a new analysts' file (runs only when no step
    found a data-quality error), so the published run record says what the ledger will."""
    elapsed = (utc_now() - run.record.started_at).total_seconds()
    run.add([duration_finding(elapsed, run.history(), run.settings)])
    paths = run.config.paths
    state = publish_state(paths)
    unchanged = frozenset() if run.settings.full_rebuild else unchanged_since_publish(paths, state)
    publication = publish_snapshot(
        paths.warehouse,
        paths.analytics,
        run.records_as_published(),
        ErasureLog(paths).table(),
        mode=run.config.privacy.analytics_mode,
        group=run.config.privacy.analytics_group,
        unchanged=unchanged,
    )
    state.write(published_state_file(paths))
    run.record.published_at = utc_now()
    print(publication.render())


STEPS: tuple[Step, ...] = (
    Step("extract", extract),
    Step("load", load),
    Step("privacy", privacy),
    Step("dbt_build", dbt_build),
    Step("checks", checks, after_data_error=True),
    Step("training", training, after_data_error=True),
    Step("scoring", scoring, after_data_error=True),
    Step("publish", publish),
)


def steps_through(last: str) -> tuple[Step, ...]:
    """STEPS up to and including `last` (tests and benchmarks that need only part of a night)."""
    names = [step.name for step in STEPS]
    return STEPS[: names.index(last) + 1]
