"""The run report, opened in Chromium after three nights of the dev API: every chart drew, with
one mark per measured value, the volumes inside the band the check applied, and `make report`
rewrites it from the ledger."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from playwright.sync_api import Page

from core.dbt import FAILED_STATUSES, TEST_KINDS
from nightly.report import model_versions
from tests.browser.conftest import MIN_HISTORY_RUNS, NIGHTS, screenshot
from tests.nightly.support import job_environment, records
from tests.support import REPO_ROOT

pytestmark = [pytest.mark.browser, pytest.mark.dbt]

CHARTS = """() => Object.fromEntries([...document.querySelectorAll('figure.chart')].map(figure => [
    figure.dataset.chart,
    {
        marks: [...figure.querySelectorAll('svg .mark')].filter(mark => {
            const box = mark.getBoundingClientRect();
            return box.width > 0 && box.height > 0;
        }).length,
        titles: [...figure.querySelectorAll('svg .mark title')].map(title => title.textContent),
        bands: [...figure.querySelectorAll('svg rect.band')].filter(band => {
            const box = band.getBoundingClientRect();
            return box.width > 0 && box.height > 0;
        }).length,
    },
]))"""


@pytest.fixture(scope="module")
def report(three_nights: Path) -> Path:
    """The report as `make report` writes it (each night also wrote it)."""
    path = three_nights / "report.html"
    assert path.exists(), "the nightly run wrote no report"
    path.unlink()
    completed = subprocess.run(
        ["make", "--no-print-directory", "-s", "-o", ".venv/bin/.installed", "report"],
        cwd=REPO_ROOT,
        env=job_environment(three_nights, None, NIGHTLY__MIN_HISTORY_RUNS=MIN_HISTORY_RUNS),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    assert f"Run report: {path}" in completed.stdout
    return path


def test_every_chart_of_the_report_drew_a_mark_per_measured_value(
    report: Path, three_nights: Path, page: Page
) -> None:
    nights = records(three_nights)
    assert len(nights) == NIGHTS and all(night.status == "success" for night in nights)
    page.goto(report.as_uri())
    charts = page.evaluate(CHARTS)
    screenshot(page, "run-report", full_page=True)

    assert {"durations", "tests", "models", "freshness"} <= charts.keys()
    assert all(chart["marks"] > 0 for chart in charts.values()), charts
    # durations: one bar segment per step that took time, each night
    timings = [t for night in nights for t in night.steps if t.seconds and t.outcome == "ok"]
    assert charts["durations"]["marks"] == len(timings)
    # volumes: one chart per measured table, one point per night, in the check's band at last
    tables = {v.table_name for v in nights[-1].volumes if v.table_rows is not None}
    assert {f"volume-{table}" for table in tables} <= charts.keys()
    for table in tables:
        chart = charts[f"volume-{table}"]
        rows = [night.volume(table).table_rows for night in nights]
        assert chart["marks"] == NIGHTS
        assert [int(t.split(": ")[1].split()[0].replace(",", "")) for t in chart["titles"]] == rows
        # drawn for each night that had enough history before it: the last one
        assert chart["bands"] == NIGHTS - int(MIN_HISTORY_RUNS), table
    # tests: passed, warned and failed segments add up to every test of each build
    segments = 0
    for night in nights:
        statuses = [n.status for n in night.nodes if n.resource_type in TEST_KINDS]
        segments += ("pass" in statuses) + ("warn" in statuses)
        segments += bool(FAILED_STATUSES.intersection(statuses))
    assert charts["tests"]["marks"] == segments
    # models: every version's recall beside each of its baselines
    versions = model_versions(three_nights / "analytics.duckdb")
    assert versions and charts["models"]["marks"] == sum(1 + len(v.baselines) for v in versions)
    # freshness: every night after the first had a previous load
    assert charts["freshness"]["marks"] == NIGHTS - 1
