"""`python -m nightly.report` (`make report`): the run history as one page people look at.

One self-contained HTML file (`data/report.html`): every chart is inline SVG drawn here, with no
script and nothing fetched, so it opens from a mail attachment or a file share. It reads the run
ledger (durations, row counts, dbt results, findings) and the analysts' file (the recommender's
`ml.model_versions`), neither of which any run locks, so it can be written at any time; the
nightly run writes it after every run, failed ones included.

Charts: duration per step per night; rows per table per night inside the band the volume check
applies (nightly.checks.volume_band, from the history each night was compared with); dbt tests
passed, warned and failed per night; recall@10 of every model version beside its baselines; and
freshness, the hours since the previous successful load at each night's start.
"""

from __future__ import annotations

import html
import json
import logging
import math
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from core.dbt import FAILED_STATUSES, SKIPPED, TEST_KINDS
from core.paths import Paths
from core.warehouse import ML_SCHEMA
from nightly.checks import VolumeBand, table_history, volume_band
from nightly.ledger import REFUSED, Ledger, RunRecord, last_successes, utc_now
from nightly.ops_tables import NOT_PASSING_STATUSES, STEP_COLUMNS, ops_tables
from nightly.settings import NightlySettings
from nightly.status import render_freshness, render_runs, source_freshness

log = logging.getLogger("moovitamix.nightly")

MAX_NIGHTS = 30  # the newest nights drawn
WIDTH, HEIGHT = 720, 240
SMALL_WIDTH, SMALL_HEIGHT = 340, 170
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 22, 34
COLOURS = ("#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f", "#bab0ac")
PASS, WARN, FAIL = "#59a14f", "#edc948", "#e15759"
STATUS_COLOURS = {"success": PASS, "warned": WARN, "failed": FAIL, "running": "#bab0ac"}


@dataclass(frozen=True)
class ModelVersion:
    """One registered model: its recall@10 and its baselines' on the same holdout."""

    version: int
    name: str
    status: str
    recall_at_10: float | None
    baselines: dict[str, float]


def model_versions(analytics: Path) -> list[ModelVersion]:
    """`ml.model_versions` of the analysts' file (none before the first publish)."""
    if not analytics.exists():
        return []
    with duckdb.connect(str(analytics), read_only=True) as connection:
        try:
            rows = connection.execute(
                f"select model_version, model_name, status, recall_at_10, baseline_metrics "
                f"from {ML_SCHEMA}.model_versions order by model_version"
            ).fetchall()
        except duckdb.CatalogException:
            return []
    return [
        ModelVersion(
            version,
            name,
            status,
            recall,
            {
                baseline: metrics["recall_at_10"]
                for baseline, metrics in json.loads(baselines or "{}").items()
                if metrics.get("recall_at_10") is not None
            },
        )
        for version, name, status, recall, baselines in rows
    ]


def write(paths: Paths, settings: NightlySettings) -> Path:
    """Write the report of every run in the ledger to `paths.report`, atomically."""
    records = Ledger(paths.runs_dir).records()
    page = render(records, model_versions(paths.analytics), settings, paths.analytics)
    temporary = paths.report.with_name(f".{paths.report.name}.tmp")
    paths.report.parent.mkdir(parents=True, exist_ok=True)
    temporary.write_text(page, encoding="utf-8")
    os.replace(temporary, paths.report)
    return paths.report


def render(
    records: Sequence[RunRecord],
    versions: Sequence[ModelVersion],
    settings: NightlySettings,
    analytics: Path,
) -> str:
    """The report page of `records` (oldest first)."""
    now = utc_now()
    nights = [r for r in records if r.status != REFUSED][-MAX_NIGHTS:]
    labels = _labels([r.started_at for r in nights])
    freshness = source_freshness(records, now, settings.stale_after_hours, analytics)
    sections = [
        _section(
            "durations",
            "Duration per step, per night",
            "Seconds each step took; a failed step is drawn in red, a skipped one not at all.",
            _durations(nights, labels),
        ),
        _section(
            "volumes",
            "Rows per table, per night",
            f"Points: the rows each night counted (current versions for raw tables). Shaded: the "
            f"band the volume check applied to that night (median of the last "
            f"{settings.history_runs} successful nights ± max({settings.volume_warn_sigmas:g} "
            f"robust standard deviations, {settings.volume_warn_min_share:.0%})); dashed: the "
            f"error floor "
            f"({settings.volume_error_drop:.0%} below the median). The band appears once "
            f"{settings.min_history_runs} successful nights exist. Red: outside the band.",
            _volumes(nights, records, settings),
        ),
        _section(
            "tests",
            "dbt tests per night",
            "Tests and unit tests that passed, warned and failed (or errored) in each night's "
            "build.",
            _tests(nights, labels) + _not_passing(records),
        ),
        _section(
            "models",
            "Recommendation quality per model version",
            "recall@10 of each model version and of the baselines evaluated on the same holdout "
            "(from ml.model_versions in the analysts' file).",
            _models(versions),
        ),
        _section(
            "freshness",
            "Freshness",
            f"Hours since the previous successful load when each night started; dashed: stale "
            f"after {settings.stale_after_hours:g} h.",
            _freshness(nights, labels, settings)
            + f"<pre>{html.escape(render_freshness(freshness, now, settings.stale_after_hours))}"
            "</pre>",
        ),
    ]
    newest = nights[-1] if nights else None
    headline = (
        f"Newest night {newest.run_id}: <b>{html.escape(newest.status)}</b>"
        + (f" at step {html.escape(newest.failing_step)}" if newest.failing_step else "")
        + (f" ({html.escape(newest.error_message)})" if newest.error_message else "")
        if newest
        else "No nightly run recorded yet."
    )
    runs = render_runs(records[-10:], run_in_progress=False, now=now)
    return PAGE.format(
        generated=f"{now:%Y-%m-%d %H:%M} UTC",
        headline=headline,
        runs=html.escape(runs),
        sections="\n".join(sections),
    )


def _durations(nights: Sequence[RunRecord], labels: list[str]) -> str:
    steps = list(STEP_COLUMNS) + sorted(
        {t.step for r in nights for t in r.steps} - set(STEP_COLUMNS)
    )
    series = []
    for index, step in enumerate(steps):
        values, colours = [], []
        for record in nights:
            timing = next((t for t in record.steps if t.step == step), None)
            values.append(timing.seconds if timing and timing.outcome != "skipped" else None)
            failed = timing is not None and timing.outcome == "failed"
            colours.append(FAIL if failed else COLOURS[index % len(COLOURS)])
        series.append((step, values, colours))
    return _figure("durations", _stacked_bars(labels, series, "s"), _legend(steps))


def _volumes(
    nights: Sequence[RunRecord], records: Sequence[RunRecord], settings: NightlySettings
) -> str:
    tables = sorted(
        {v.table_name for r in nights for v in r.volumes if v.table_rows is not None},
        key=lambda name: (not name.startswith("raw."), name),
    )
    figures = []
    for table in tables:
        measured = [r for r in nights if (v := r.volume(table)) and v.table_rows is not None]
        rows = [r.volume(table).table_rows for r in measured]  # type: ignore[union-attr]
        bands = [_band_of(table, r, records, settings) for r in measured]
        svg = _line_chart(
            _labels([r.started_at for r in measured]),
            rows,
            bands,
            width=SMALL_WIDTH,
            height=SMALL_HEIGHT,
            unit="rows",
        )
        figures.append(_figure(f"volume-{table}", svg, "", title=table, small=True))
    return f'<div class="grid">{"".join(figures)}</div>'


def _band_of(
    table: str, night: RunRecord, records: Sequence[RunRecord], settings: NightlySettings
) -> VolumeBand | None:
    """The band the check applied to `table` on `night`: from the successes before it."""
    earlier = [r for r in records if r.started_at < night.started_at]
    past = table_history(table, last_successes(earlier, settings.history_runs))
    return volume_band(past, settings) if len(past) >= settings.min_history_runs else None


def _tests(nights: Sequence[RunRecord], labels: list[str]) -> str:
    def count(record: RunRecord, wanted: Callable[[str], bool]) -> float | None:
        tests = [n for n in record.nodes if n.resource_type in TEST_KINDS]
        return sum(wanted(n.status) for n in tests) if tests else None

    series = [
        (name, [count(r, wanted) for r in nights], [colour] * len(nights))
        for name, wanted, colour in (
            ("passed", lambda status: status == "pass", PASS),
            ("warned", lambda status: status == "warn", WARN),
            ("failed", lambda status: status in FAILED_STATUSES, FAIL),
        )
    ]
    legend = _legend(["passed", "warned", "failed"], [PASS, WARN, FAIL])
    return _figure("tests", _stacked_bars(labels, series, "tests"), legend)


def _not_passing(records: Sequence[RunRecord]) -> str:
    # the newest night that ran dbt (a quiet night skips every node)
    built = [r for r in records if any(node.status != SKIPPED for node in r.nodes)]
    if not built:
        return "<p>No dbt build recorded yet.</p>"
    newest = built[-1]
    rows = [
        row
        for row in ops_tables(records)["test_results"].to_pylist()
        if row["run_id"] == newest.run_id and row["status"] in NOT_PASSING_STATUSES
    ]
    if not rows:
        return f"<p>Every test passed in the newest build ({newest.run_id}).</p>"
    cells = "".join(
        f"<tr><td>{html.escape(row['status'])}</td><td>{html.escape(row['node_name'])}</td>"
        f"<td>{row['failing_since']:%Y-%m-%d %H:%M}</td>"
        f"<td>{html.escape(str(row['message'] or row['failures'] or ''))}</td></tr>"
        for row in rows
    )
    return (
        f"<p>Not passing in the newest build ({newest.run_id}):</p><table><tr><th>status</th>"
        f"<th>test</th><th>since (UTC)</th><th>message</th></tr>{cells}</table>"
    )


def _models(versions: Sequence[ModelVersion]) -> str:
    if not versions:
        return "<p>No model version published yet.</p>"
    baselines = sorted({name for v in versions for name in v.baselines})
    names = ["model", *baselines]
    labels = [f"v{v.version} {v.name} ({v.status})" for v in versions]
    series = [
        ("model", [v.recall_at_10 for v in versions]),
        *[(name, [v.baselines.get(name) for v in versions]) for name in baselines],
    ]
    svg = _grouped_bars(labels, series, "recall@10")
    return _figure("models", svg, _legend(names))


def _freshness(nights: Sequence[RunRecord], labels: list[str], settings: NightlySettings) -> str:
    hours: list[float | None] = []
    for record in nights:
        loads = [r.loaded_at for r in nights if r.loaded_at and r.started_at < record.started_at]
        hours.append((record.started_at - max(loads)).total_seconds() / 3600 if loads else None)
    svg = _line_chart(labels, hours, threshold=settings.stale_after_hours, unit="h")
    return _figure("freshness", svg, "")


# --- SVG ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Frame:
    """A chart's plotting area: maps values to pixels, and holds its axes' SVG."""

    width: int
    height: int
    count: int
    top_value: float

    @property
    def plot_width(self) -> float:
        return self.width - LEFT - RIGHT

    def x(self, index: int) -> float:
        return LEFT + self.plot_width * (index + 0.5) / max(self.count, 1)

    def y(self, value: float) -> float:
        return TOP + (self.height - TOP - BOTTOM) * (1 - value / self.top_value)

    @property
    def slot(self) -> float:
        return self.plot_width / max(self.count, 1)

    def axes(self, labels: Sequence[str], unit: str) -> str:
        parts = []
        for tick in _ticks(self.top_value):
            y = self.y(tick)
            parts.append(
                f'<line class="grid" x1="{LEFT}" x2="{self.width - RIGHT}" y1="{y:.1f}" '
                f'y2="{y:.1f}"/><text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
                f"{_number(tick)}</text>"
            )
        parts.append(f'<text x="4" y="11" class="unit">{html.escape(unit)}</text>')
        every = max(1, math.ceil(len(labels) * 84 / self.plot_width))
        for index, label in enumerate(labels):
            if index % every == 0 or index == len(labels) - 1:
                parts.append(
                    f'<text x="{self.x(index):.1f}" y="{self.height - BOTTOM + 16}" '
                    f'text-anchor="middle">{html.escape(label)}</text>'
                )
        return "".join(parts)


def _svg(frame: _Frame, body: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {frame.width} {frame.height}" '
        f'width="{frame.width}" height="{frame.height}" role="img">{body}</svg>'
    )


def _stacked_bars(
    labels: list[str], series: list[tuple[str, list[float | None], list[str]]], unit: str
) -> str:
    totals = [sum(values[i] or 0 for _, values, _ in series) for i in range(len(labels))]
    frame = _Frame(WIDTH, HEIGHT, len(labels), _top(totals))
    body = [frame.axes(labels, unit)]
    bar = min(frame.slot * 0.7, 48)
    for index, label in enumerate(labels):
        base = 0.0
        for name, values, colours in series:
            value = values[index]
            if not value:
                continue
            top, bottom = frame.y(base + value), frame.y(base)
            body.append(
                f'<rect class="mark" x="{frame.x(index) - bar / 2:.1f}" y="{top:.1f}" '
                f'width="{bar:.1f}" height="{max(bottom - top, 0.5):.1f}" '
                f'fill="{colours[index]}"><title>{html.escape(label)} {html.escape(name)}: '
                f"{_number(value)} {unit}</title></rect>"
            )
            base += value
    return _svg(frame, "".join(body))


def _grouped_bars(
    labels: list[str], series: list[tuple[str, list[float | None]]], unit: str
) -> str:
    values = [value for _, column in series for value in column if value is not None]
    frame = _Frame(WIDTH, HEIGHT, len(labels), _top(values))
    body = [frame.axes(labels, unit)]
    bar = min(frame.slot * 0.8 / len(series), 40)
    for index, label in enumerate(labels):
        start = frame.x(index) - bar * len(series) / 2
        for number, (name, column) in enumerate(series):
            value = column[index]
            if value is None:
                continue
            top = frame.y(value)
            body.append(
                f'<rect class="mark" x="{start + number * bar:.1f}" y="{top:.1f}" '
                f'width="{bar - 2:.1f}" height="{max(frame.y(0) - top, 0.5):.1f}" '
                f'fill="{COLOURS[number % len(COLOURS)]}"><title>{html.escape(label)} '
                f"{html.escape(name)}: {value:.3f}</title></rect>"
            )
    return _svg(frame, "".join(body))


def _line_chart(
    labels: list[str],
    values: Sequence[float | None],
    bands: Sequence[VolumeBand | None] = (),
    threshold: float | None = None,
    width: int = WIDTH,
    height: int = HEIGHT,
    unit: str = "",
) -> str:
    heights = [v for v in values if v is not None]
    heights += [b.high for b in bands if b] + ([threshold] if threshold else [])
    frame = _Frame(width, height, len(labels), _top(heights))
    body = [frame.axes(labels, unit)]
    half = min(frame.slot * 0.3, 24)
    for index, band in enumerate(bands):  # each night's own band: history moves it
        if band is None:
            continue
        x, top, bottom = frame.x(index), frame.y(band.high), frame.y(max(band.low, 0))
        floor = frame.y(band.error_below)
        body.append(
            f'<rect class="band" x="{x - half:.1f}" y="{top:.1f}" width="{2 * half:.1f}" '
            f'height="{max(bottom - top, 1):.1f}"><title>{html.escape(labels[index])}: usual '
            f"{_number(band.low)} to {_number(band.high)}, error below "
            f"{_number(band.error_below)}</title></rect>"
            f'<line class="floor" x1="{x - half:.1f}" x2="{x + half:.1f}" y1="{floor:.1f}" '
            f'y2="{floor:.1f}"/>'
        )
    if threshold is not None:
        y = frame.y(threshold)
        body.append(
            f'<line class="threshold" x1="{LEFT}" x2="{width - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
        )
    points = [(i, v) for i, v in enumerate(values) if v is not None]
    if len(points) > 1:
        line = " ".join(f"{frame.x(i):.1f},{frame.y(v):.1f}" for i, v in points)
        body.append(f'<polyline class="line" points="{line}"/>')
    for index, value in points:
        band = bands[index] if index < len(bands) else None
        outside = band is not None and not band.low <= value <= band.high
        usual = f" (usual {_number(band.usual)})" if band else ""
        body.append(
            f'<circle class="mark" cx="{frame.x(index):.1f}" cy="{frame.y(value):.1f}" r="4" '
            f'fill="{FAIL if outside else COLOURS[0]}"><title>{html.escape(labels[index])}: '
            f"{_number(value)} {unit}{usual}</title></circle>"
        )
    return _svg(frame, "".join(body))


def _figure(name: str, svg: str, legend: str, title: str = "", small: bool = False) -> str:
    caption = f"<figcaption>{html.escape(title)}</figcaption>" if title else ""
    kind = "chart small" if small else "chart"
    return (
        f'<figure class="{kind}" data-chart="{html.escape(name)}">{caption}{svg}{legend}</figure>'
    )


def _legend(names: Sequence[str], colours: Sequence[str] = COLOURS) -> str:
    items = "".join(
        f'<span><i style="background:{colours[i % len(colours)]}"></i>{html.escape(name)}</span>'
        for i, name in enumerate(names)
    )
    return f'<div class="legend">{items}</div>'


def _section(anchor: str, title: str, note: str, body: str) -> str:
    return (
        f'<section id="{anchor}"><h2>{html.escape(title)}</h2><p class="note">'
        f"{html.escape(note)}</p>{body}</section>"
    )


def _top(values: Sequence[float]) -> float:
    """A round axis maximum above every value."""
    highest = max([v for v in values if v is not None] or [1.0]) or 1.0
    ticks = _ticks(highest * 1.05, exact=False)
    return ticks[-1] if ticks[-1] >= highest else highest


def _ticks(top: float, exact: bool = True) -> list[float]:
    raw = top / 4
    magnitude = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    count = math.floor(top / step + 1e-9) if exact else math.ceil(top / step - 1e-9)
    return [step * i for i in range(count + 1)]


def _number(value: float) -> str:
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}" if value != int(value) else f"{value:.0f}"


def _labels(moments: Sequence[datetime]) -> list[str]:
    """Month-day hour:minute, with seconds when two nights started in the same minute."""
    labels = [f"{moment:%m-%d %H:%M}" for moment in moments]
    if len(set(labels)) < len(labels):
        labels = [f"{moment:%d %H:%M:%S}" for moment in moments]
    return labels


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>MooVitamix nightly runs</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 24px auto; max-width: 1100px;
       color: #222; padding: 0 16px; }}
h1 {{ font-size: 22px; margin-bottom: 4px; }} h2 {{ font-size: 17px; margin: 28px 0 4px; }}
.note {{ color: #555; margin: 0 0 8px; max-width: 900px; }}
pre {{ background: #f6f6f6; padding: 8px; overflow-x: auto; font-size: 12px; }}
figure {{ margin: 0 0 12px; }} figcaption {{ font-weight: 600; font-size: 13px; }}
.grid {{ display: flex; flex-wrap: wrap; gap: 8px 16px; }}
svg text {{ font-size: 11px; fill: #444; }} svg .unit {{ fill: #888; }}
svg .grid {{ stroke: #e5e5e5; }} svg .line {{ fill: none; stroke: #4e79a7; stroke-width: 1.5; }}
svg .band {{ fill: #4e79a7; fill-opacity: .18; }}
svg .floor, svg .threshold {{ fill: none; stroke: #e15759; stroke-dasharray: 4 3; }}
.legend span {{ margin-right: 14px; font-size: 12px; }}
.legend i {{ display: inline-block; width: 10px; height: 10px; margin-right: 4px; }}
table {{ border-collapse: collapse; font-size: 12px; }}
td, th {{ border-bottom: 1px solid #ddd; padding: 2px 8px; text-align: left; }}
</style></head><body>
<h1>MooVitamix nightly runs</h1>
<p>{headline}<br>
<small>Generated {generated} from the run ledger and the analysts' file.</small></p>
<pre>{runs}</pre>
{sections}
</body></html>
"""


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    path = write(Paths.resolve(), NightlySettings.from_config())
    print(f"Run report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
