"""One night's extraction: recover, extract every endpoint, verify, then normalise and load.

The order is what keeps raw data safe. Extraction writes a load package on local disk only; the
truncation guard checks it; only then is it normalised and merged. A run that fails before the
merge drops its package, so the raw tables stay exactly as they were. A package that was verified
but not fully loaded (a killed process, a full disk) is completed by the next run before it
extracts that night's data.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import dlt
from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials

from core.warehouse import RAW_SCHEMA, DuckDBSettings
from extract.endpoints import ENDPOINTS, Endpoint
from extract.source import (
    QUARANTINE_TABLE,
    EndpointReport,
    ExtractionError,
    SourceChangedError,
    moovitamix_source,
)

log = logging.getLogger("moovitamix.extract")

PIPELINE_NAME = "moovitamix"


@dataclass(frozen=True)
class TableChanges:
    """What one load did to one raw table: the run summary's row."""

    endpoint: str
    announced: int
    read: int
    new: int
    changed: int
    retired: int
    quarantined: int
    error_responses: int  # failed attempts (error answers, timeouts, 429s) that dlt retried
    rate_limited: int  # of which 429s


@dataclass(frozen=True)
class VerifiedExtraction:
    """Tonight's package, extracted and checked complete, not yet loaded: what `load_verified`
    merges. `recovered` counts the interrupted run's packages completed first."""

    pipeline: dlt.Pipeline
    reports: dict[str, EndpointReport]
    recovered: int
    started: float  # time.monotonic() when the extraction began


@dataclass(frozen=True)
class ExtractionSummary:
    load_id: str
    tables: tuple[TableChanges, ...]
    seconds: float
    recovered_packages: int
    unknown_fields: dict[str, frozenset[str]]

    @property
    def quarantined(self) -> int:
        return sum(table.quarantined for table in self.tables)

    def render(self) -> str:
        """The one-screen summary printed at the end of a run."""
        header = ("endpoint", "announced", "read", "new", "changed", "retired", "quarantined")
        rows = [header] + [
            (t.endpoint, t.announced, t.read, t.new, t.changed, t.retired, t.quarantined)
            for t in self.tables
        ]
        widths = [
            max(len(f"{row[i]:,}" if isinstance(row[i], int) else row[i]) for row in rows)
            for i in range(len(header))
        ]
        lines = [f"Load {self.load_id} into {RAW_SCHEMA} in {self.seconds:.1f} s"]
        for row in rows:
            cells = [f"{v:,}" if isinstance(v, int) else v for v in row]
            lines.append(
                "  ".join(
                    c.rjust(w) if i else c.ljust(w)
                    for i, (c, w) in enumerate(zip(cells, widths, strict=True))
                )
            )
        if self.recovered_packages:
            lines.append(
                f"Completed {self.recovered_packages} load package(s) of an interrupted run first."
            )
        if self.quarantined:
            lines.append(
                f"{self.quarantined} record(s) broke the contract and were kept aside in "
                f"{RAW_SCHEMA}.{QUARANTINE_TABLE} (see its `reason` column)."
            )
        for endpoint, fields in self.unknown_fields.items():
            lines.append(
                f"{endpoint}: fields not in the contract were ignored: {', '.join(sorted(fields))}"
            )
        return "\n".join(lines)


def make_pipeline(duckdb_path: Path, pipelines_dir: Path) -> dlt.Pipeline:
    """The dlt pipeline that owns the `raw` schema of the DuckDB file, under the project's DuckDB
    memory limit and spill folder (set on each connection dlt opens)."""
    duckdb_path.parent.mkdir(parents=True, exist_ok=True)
    config = DuckDBSettings.from_config().config(duckdb_path)
    return dlt.pipeline(
        pipeline_name=PIPELINE_NAME,
        destination=dlt.destinations.duckdb(
            DuckDbCredentials(str(duckdb_path), global_config=config)
        ),
        dataset_name=RAW_SCHEMA,
        pipelines_dir=str(pipelines_dir),
    )


def run_extraction(
    pipeline: dlt.Pipeline, api_url: str, api_token: str | None = None
) -> ExtractionSummary:
    """Extract all endpoints from `api_url` and merge them into raw, all or nothing."""
    return load_verified(extract_verified(pipeline, api_url, api_token))


def load_verified(extraction: VerifiedExtraction) -> ExtractionSummary:
    """Normalise and merge the package `extract_verified` checked, prune, and count the changes.

    Split from `run_extraction` so that a caller can time (and gate) extraction and loading apart.
    """
    pipeline, reports = extraction.pipeline, extraction.reports
    pipeline.normalize()
    load_info = pipeline.load()
    load_id = load_info.loads_ids[-1]
    delete_loaded_packages(pipeline)
    prune_superseded_lists(pipeline)
    return ExtractionSummary(
        load_id=load_id,
        tables=tuple(_table_changes(pipeline, load_id, e, reports[e.name]) for e in ENDPOINTS),
        seconds=time.monotonic() - extraction.started,
        recovered_packages=extraction.recovered,
        unknown_fields={
            name: frozenset(r.unknown_fields) for name, r in reports.items() if r.unknown_fields
        },
    )


def recover_pending_packages(pipeline: dlt.Pipeline) -> int:
    """Finish what an interrupted run verified; discard what it had not. Returns packages loaded.

    A normalised package passed the truncation guard, so loading it is safe. An extracted one may
    be a partial read (the process died mid-extract), so it is dropped and read again tonight.
    """
    normalized = pipeline.list_normalized_load_packages()
    if normalized:
        log.warning("completing %d load package(s) left by an interrupted run", len(normalized))
        pipeline.load()
    extracted = pipeline.list_extracted_load_packages()
    if extracted:
        log.warning("discarding %d unverified package(s) of an interrupted run", len(extracted))
        pipeline.abort_packages()
    return len(normalized)


def delete_loaded_packages(pipeline: dlt.Pipeline) -> None:
    """Remove every completed load package: one copy of each record read that night, personal
    data included, that nothing needs once it is merged (recovery uses unfinished packages only).
    dlt's `[load] delete_completed_jobs` already dropped their data files; this drops the rest."""
    for load_id in pipeline.list_completed_load_packages():
        shutil.rmtree(pipeline.get_load_package_info(load_id).package_path, ignore_errors=True)


def prune_superseded_lists(pipeline: dlt.Pipeline) -> None:
    """Drop the listen list of every listen_history version that a newer list extends.

    A list grows by appending, so a newer list that starts with the older one holds all of its
    listens, and dbt's append-only listen events keep when each listen first appeared. Keeping
    every version's full list would grow with listens x nights; this keeps the newest list of
    each user, plus any older list the API replaced rather than extended (the real service
    regenerates its data when it restarts), and every version's metadata row. Idempotent.
    """
    with pipeline.sql_client() as client:
        client.execute_sql(
            """
            update listen_history as superseded set items = null
            where superseded._dlt_valid_to is not null
              and superseded.items is not null
              and exists (
                  select 1 from listen_history as newer
                  where newer.user_id = superseded.user_id
                    and newer._dlt_valid_from >= superseded._dlt_valid_to
                    and list_slice(
                        cast(newer.items as bigint[]), 1, len(cast(superseded.items as bigint[]))
                    ) is not distinct from cast(superseded.items as bigint[])
              )
            """
        )


def extract_verified(
    pipeline: dlt.Pipeline,
    api_url: str,
    api_token: str | None,
    reports: dict[str, EndpointReport] | None = None,
) -> VerifiedExtraction:
    """Complete an interrupted run's verified package, then extract tonight's into a local
    package and check it is complete; re-read once if the API moved.

    `reports`, if given, is filled while pages are read: a caller that stops the extraction
    (a deadline) can still say how far it got.
    """
    started = time.monotonic()
    recovered = recover_pending_packages(pipeline)
    reports = {} if reports is None else reports
    for attempt in (1, 2):
        reports.clear()
        try:
            pipeline.extract(
                moovitamix_source(api_url=api_url, api_token=api_token, reports=reports),
                loader_file_format="parquet",
            )
            for report in reports.values():
                report.check_complete()
            return VerifiedExtraction(pipeline, reports, recovered, started)
        except Exception as exc:
            pipeline.abort_packages()
            cause = _extraction_cause(exc)
            if isinstance(cause, SourceChangedError) and attempt == 1:
                log.warning("%s; reading all endpoints once more", cause)
                continue
            if cause is exc:
                raise
            raise cause from exc
        except BaseException:  # stopped (a deadline, SIGTERM): drop the partial read too
            pipeline.abort_packages()
            raise
    raise AssertionError("unreachable")


def _extraction_cause(exc: BaseException) -> BaseException:
    """The ExtractionError that dlt wrapped (PipelineStepFailed, ResourceExtractionError)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ExtractionError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return exc


def _table_changes(
    pipeline: dlt.Pipeline, load_id: str, endpoint: Endpoint, report: EndpointReport
) -> TableChanges:
    """Count versions the load inserted (new key or changed key) and keys it retired."""
    # scd2 stamps retired rows' _dlt_valid_to with the load package's timestamp, which is the
    # load id in seconds; the stored timestamp keeps microseconds, hence the 1 us tolerance.
    query = f"""
        with inserted as (
            select {endpoint.key} as key from {endpoint.name} where _dlt_load_id = ?
        ),
        retired as (
            select {endpoint.key} as key from {endpoint.name}
            where abs(epoch_us(_dlt_valid_to) - cast(? as double) * 1000000) <= 1
        )
        select
            (select count(*) from inserted where key not in (select key from retired)),
            (select count(*) from inserted where key in (select key from retired)),
            (select count(*) from retired where key not in (select key from inserted))
    """
    with pipeline.sql_client() as client:
        new, changed, retired = client.execute_sql(query, load_id, load_id)[0]
    return TableChanges(
        endpoint=endpoint.name,
        announced=report.total or 0,
        read=report.rows_read,
        new=new,
        changed=changed,
        retired=retired,
        quarantined=report.quarantined,
        error_responses=report.error_responses,
        rate_limited=report.rate_limited,
    )
