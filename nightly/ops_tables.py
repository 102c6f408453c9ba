"""The `ops` schema: the run ledger as tables, in the private warehouse and the analysts' file.

Rebuilt whole from the ledger each time (a few rows a night), so it is always exactly the ledger:
a run that could not write it (killed, or refused) appears the next time any run writes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from core.dbt import failed_and_warned_tests
from core.warehouse import OPS_SCHEMA, connect
from nightly.ledger import RunRecord
from nightly.privacy import ERASURE_SCHEMA

# pipeline_runs has a seconds column for each of these steps (null when it did not run; before
# training became its own step, a night's scoring_seconds included its training);
# ops.run_steps has every step, including any added later.
STEP_COLUMNS = (
    "extract", "load", "privacy", "dbt_build", "training", "scoring", "checks", "publish"
)  # fmt: skip
PASSING_STATUSES = frozenset({"pass", "success"})
NOT_PASSING_STATUSES = frozenset({"warn", "fail", "error", "runtime error"})  # skipped: no news

_TIME = pa.timestamp("us")  # naive UTC, like every `_at` column of the marts
OPS_TABLE_SCHEMAS = {
    "pipeline_runs": pa.schema(
        [
            ("run_id", pa.string()), ("started_at", _TIME), ("finished_at", _TIME),
            ("status", pa.string()), ("failing_step", pa.string()),
            ("error_message", pa.string()), ("exit_code", pa.int32()), ("seconds", pa.float64()),
            *[(f"{step}_seconds", pa.float64()) for step in STEP_COLUMNS],
            ("load_id", pa.string()), ("published_at", _TIME), ("tests_failed", pa.int32()),
            ("tests_warned", pa.int32()), ("errors", pa.int32()), ("warnings", pa.int32()),
            ("alert_message", pa.string()), ("orchestrator_run_id", pa.string()),
        ]
    ),
    "run_steps": pa.schema(
        [
            ("run_id", pa.string()), ("step", pa.string()), ("started_at", _TIME),
            ("seconds", pa.float64()), ("outcome", pa.string()),
        ]
    ),
    "run_volumes": pa.schema(
        [
            ("run_id", pa.string()), ("table_name", pa.string()), ("table_rows", pa.int64()),
            ("announced_rows", pa.int64()), ("read_rows", pa.int64()), ("new_rows", pa.int64()),
            ("changed_rows", pa.int64()), ("retired_rows", pa.int64()),
            ("quarantined_rows", pa.int64()), ("retried_requests", pa.int64()),
            ("rate_limited_requests", pa.int64()), ("listens", pa.int64()),
        ]
    ),
    "test_results": pa.schema(
        [
            ("run_id", pa.string()), ("unique_id", pa.string()), ("resource_type", pa.string()),
            ("node_name", pa.string()), ("status", pa.string()),
            ("execution_seconds", pa.float64()), ("failures", pa.int64()),
            ("message", pa.string()), ("failing_since", _TIME),
        ]
    ),
    "erasure_requests": ERASURE_SCHEMA,  # from the erasure log, not the ledger
    "run_findings": pa.schema(
        [
            ("run_id", pa.string()), ("step", pa.string()), ("check_name", pa.string()),
            ("level", pa.string()), ("subject", pa.string()), ("observed", pa.float64()),
            ("usual", pa.float64()), ("message", pa.string()),
        ]
    ),
}  # fmt: skip


def ops_tables(records: Sequence[RunRecord]) -> dict[str, pa.Table]:
    """The five ops tables of `records` (oldest first), as Arrow tables with fixed schemas."""
    rows: dict[str, list[dict[str, object]]] = {
        "pipeline_runs": [_run_row(record) for record in records],
        "run_steps": [
            {"run_id": r.run_id, **vars(t), "started_at": _naive(t.started_at)}
            for r in records
            for t in r.steps
        ],
        "run_volumes": [{"run_id": r.run_id, **vars(v)} for r in records for v in r.volumes],
        "test_results": _test_rows(records),
        "run_findings": [
            {"run_id": r.run_id, **vars(f), "check_name": f.check}
            for r in records
            for f in r.findings
        ],
    }
    return {name: pa.Table.from_pylist(rows[name], schema=OPS_TABLE_SCHEMAS[name]) for name in rows}


def write_ops_tables(
    connection: duckdb.DuckDBPyConnection,
    catalog: str,
    records: Sequence[RunRecord],
    erasures: pa.Table,
) -> None:
    """Replace the ops tables in `catalog` in one transaction: the run record's, and the
    erasure requests (nightly/privacy.py) as `erasure_requests`."""
    connection.execute("begin")
    connection.execute(f'create schema if not exists "{catalog}".{OPS_SCHEMA}')
    for name, table in {**ops_tables(records), "erasure_requests": erasures}.items():
        connection.register("ops_rows", table)
        connection.execute(
            f'create or replace table "{catalog}".{OPS_SCHEMA}.{name} as select * from ops_rows'
        )
        connection.unregister("ops_rows")
    connection.execute("commit")


def materialise(duckdb_path: Path, records: Sequence[RunRecord], erasures: pa.Table) -> None:
    """Rewrite the ops schema of the private warehouse from the ledger."""
    with connect(duckdb_path) as connection:
        catalog = connection.execute("select current_database()").fetchone()[0]
        write_ops_tables(connection, catalog, records, erasures)


def _run_row(record: RunRecord) -> dict[str, object]:
    step_seconds = {timing.step: timing.seconds for timing in record.steps}
    tests_failed, tests_warned = failed_and_warned_tests(record.nodes)
    return {
        "run_id": record.run_id,
        "started_at": _naive(record.started_at),
        "finished_at": _naive(record.finished_at),
        "status": record.status,
        "failing_step": record.failing_step,
        "error_message": record.error_message,
        "exit_code": record.exit_code,
        "seconds": record.seconds,
        **{f"{step}_seconds": step_seconds.get(step) for step in STEP_COLUMNS},
        "load_id": record.load_id,
        "published_at": _naive(record.published_at),
        "tests_failed": tests_failed,
        "tests_warned": tests_warned,
        "errors": len(record.findings_at("error")),
        "warnings": len(record.findings_at("warning")),
        "alert_message": record.alert,
        "orchestrator_run_id": record.orchestrator_run_id,
    }


def _test_rows(records: Sequence[RunRecord]) -> list[dict[str, object]]:
    """Node results with `failing_since`: when the node's current streak of not passing began."""
    streak_start: dict[str, datetime] = {}
    rows = []
    for record in records:
        for node in record.nodes:
            if node.status in PASSING_STATUSES:
                streak_start.pop(node.unique_id, None)
            elif node.status in NOT_PASSING_STATUSES:
                streak_start.setdefault(node.unique_id, record.started_at)
            rows.append(
                {
                    "run_id": record.run_id,
                    "unique_id": node.unique_id,
                    "resource_type": node.resource_type,
                    "node_name": node.name,
                    "status": node.status,
                    "execution_seconds": node.seconds,
                    "failures": node.failures,
                    "message": node.message,
                    "failing_since": _naive(streak_start.get(node.unique_id)),
                }
            )
    return rows


def _naive(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.replace(tzinfo=None)
