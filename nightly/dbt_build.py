"""Run `dbt build` in-process and turn its results into the night's summary."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import duckdb
from dbt.cli.main import dbtRunner

# Schemas analysts and the recommender read; the summary prints each of their tables' rows.
MART_SCHEMAS = ("marts", "features")


@dataclass(frozen=True)
class BuildSummary:
    """What `dbt build` did: node outcomes by kind, the failures by name, and mart sizes."""

    success: bool
    outcomes: Counter[tuple[str, str]]
    failures: tuple[str, ...]
    mart_rows: dict[str, int] = field(default_factory=dict)

    def render(self) -> str:
        def count(kind: str, *statuses: str) -> int:
            return sum(self.outcomes[(kind, status)] for status in statuses)

        lines = [
            "dbt build: "
            f"{count('model', 'success')} models built ({count('model', 'error')} errors, "
            f"{count('model', 'skipped')} skipped); tests "
            f"{count('test', 'pass') + count('unit_test', 'pass')} passed, "
            f"{count('test', 'warn')} warned, "
            f"{count('test', 'fail', 'error') + count('unit_test', 'fail', 'error')} failed",
        ]
        lines += [f"  {failure}" for failure in self.failures]
        lines += [f"  {table:<40} {rows:>12,} rows" for table, rows in self.mart_rows.items()]
        return "\n".join(lines)


def build(duckdb_path: str, args: tuple[str, ...] = ()) -> BuildSummary:
    """`dbt build` from the repository root; failures carry the node name and message."""
    result = dbtRunner().invoke(["build", *args])
    outcomes: Counter[tuple[str, str]] = Counter()
    failures = []
    for node_result in getattr(result.result, "results", None) or []:
        kind, status = node_result.node.resource_type.value, str(node_result.status.value)
        outcomes[(kind, status)] += 1
        if status in ("error", "fail", "warn", "runtime error"):
            detail = node_result.message or f"{node_result.failures} failing rows"
            failures.append(f"{status.upper():<5} {node_result.node.name}: {detail}")
    if result.exception is not None:
        failures.append(f"ERROR dbt: {result.exception}")
    return BuildSummary(result.success, outcomes, tuple(failures), mart_rows(duckdb_path))


def mart_rows(duckdb_path: str) -> dict[str, int]:
    """Row count of every table in the analyst-facing schemas, after the build."""
    # dbt-duckdb keeps its connection open in this process; DuckDB only shares the open
    # database with a connection of the same (read-write) configuration.
    with duckdb.connect(duckdb_path) as connection:
        tables = connection.execute(
            "select schema_name, table_name from duckdb_tables() "
            "where schema_name in (select unnest(?)) order by schema_name, table_name",
            [list(MART_SCHEMAS)],
        ).fetchall()
        return {
            f"{schema}.{table}": connection.execute(
                f'select count(*) from "{schema}"."{table}"'
            ).fetchone()[0]
            for schema, table in tables
        }
