"""Row counts of the private warehouse after the build: what the volume checks compare.

Raw tables count their current versions (records the API serves today), not every version
kept; analyst-facing tables count all their rows. Listen lists are counted in listens.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from core.warehouse import ANALYST_SCHEMAS, RAW_SCHEMA, connect
from extract.endpoints import ENDPOINTS


@dataclass(frozen=True)
class Measurements:
    """Tonight's row counts by table, and the listen counts of the listen-history check."""

    table_rows: dict[str, int]
    listens: int  # in current listen lists
    listens_of_retired_users: int  # in the last lists of users retired since `since_load_id`


def measure(duckdb_path: Path, since_load_id: str | None) -> Measurements:
    """Count everything in one short read-only session of the warehouse."""
    with connect(duckdb_path, read_only=True) as connection:
        table_rows = {
            f"{RAW_SCHEMA}.{endpoint.name}": connection.execute(
                f"select count(*) from {RAW_SCHEMA}.{endpoint.name} where _dlt_valid_to is null"
            ).fetchone()[0]
            for endpoint in ENDPOINTS
        }
        for schema, name in analyst_relations(connection):
            table_rows[f"{schema}.{name}"] = connection.execute(
                f'select count(*) from "{schema}"."{name}"'
            ).fetchone()[0]
        listens, retired = connection.execute(
            f"""
            select
                coalesce(sum(json_array_length(items)) filter (where _dlt_valid_to is null), 0),
                coalesce(sum(json_array_length(items)) filter (
                    where _dlt_valid_to is not null
                      and epoch_us(_dlt_valid_to) > cast(? as double) * 1000000 + 1
                      and user_id not in (
                          select user_id from {RAW_SCHEMA}.listen_history
                          where _dlt_valid_to is null
                      )
                ), 0)
            from {RAW_SCHEMA}.listen_history
            """,
            [since_load_id or "0"],
        ).fetchone()
    return Measurements(table_rows, int(listens), int(retired))


def analyst_relations(
    connection: duckdb.DuckDBPyConnection, catalog: str | None = None
) -> list[tuple[str, str]]:
    """(schema, name) of every table and view in the analyst schemas, in a stable order."""
    catalog = catalog or connection.execute("select current_database()").fetchone()[0]
    return connection.execute(
        """
        select schema_name, table_name from duckdb_tables()
        where database_name = ? and schema_name in (select unnest(?))
        union all
        select schema_name, view_name from duckdb_views()
        where database_name = ? and schema_name in (select unnest(?)) and not internal
        order by 1, 2
        """,
        [catalog, list(ANALYST_SCHEMAS), catalog, list(ANALYST_SCHEMAS)],
    ).fetchall()
