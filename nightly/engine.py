"""The night's dbt build on the configured engine (core/engine.py): the dbt_build step calls it.

DuckDB: `dbt build` on the private warehouse, as always.

Spark: export raw to a new lake snapshot (extract/lake.py), `dbt build` on the Spark target (its
tables are Parquet in the Spark warehouse), then bring the marts and features into the DuckDB
warehouse, each table replaced in one transaction, so that the steps after the build (checks,
the recommender's scoring, the publish of the analysts' file) read them as on DuckDB. The views
are built in DuckDB (with their tests) over those tables: fct_recommendations reads the
recommender's tables, which live in DuckDB, and the feature views count "days since" to the
latest load, read from raw. Only a clean build (no model error, no failed test) commits the lake
snapshot: a failed night leaves the lake's CURRENT snapshot, and the analysts' file, as they were.
"""

from __future__ import annotations

import json
from pathlib import Path

from core.dbt import FAILED_STATUSES, DbtRun, run_dbt
from core.engine import EngineSettings, SparkLayout
from core.paths import Paths
from core.warehouse import connect
from extract import lake

# The Spark-built schemas the nightly steps after the build read (the analysts' file among them)
IMPORTED_SCHEMAS = ("intermediate", "marts", "features")
DUCKDB_TARGET = "dev"
# every view (fct_recommendations among them) is built in DuckDB, over the imported tables
DUCKDB_MODELS = "config.materialized:view"


def build(paths: Paths, args: tuple[str, ...], inherit_fds: tuple[int, ...] = ()) -> DbtRun:
    """`dbt <args>` (a `build`, nightly.changes plans it) on the configured engine."""
    if not EngineSettings.from_config().is_spark:
        return run_dbt(paths, *args, inherit_fds=inherit_fds)
    lake.export_raw(paths)
    spark = run_dbt(paths, *args, inherit_fds=inherit_fds)
    if spark.broken_models() or (spark.returncode != 0 and not spark.tests(*FAILED_STATUSES)):
        return spark
    import_marts(paths, built_models(spark))
    if spark.returncode != 0:  # failed tests: the marts as far as built; the lake stays as it was
        return spark
    duckdb = run_dbt(
        paths, "build", "--target", DUCKDB_TARGET, "-s", DUCKDB_MODELS, inherit_fds=inherit_fds
    )
    if duckdb.returncode == 0:
        lake.commit(paths)
    # the views (and their tests) ran on both engines: each node is recorded once, as DuckDB ran it
    on_duckdb = {node.unique_id for node in duckdb.nodes}
    spark_only = tuple(node for node in spark.nodes if node.unique_id not in on_duckdb)
    return DbtRun(spark.args, duckdb.returncode, spark_only + duckdb.nodes)


def built_models(run: DbtRun) -> set[str]:
    """The models a dbt run built (a failed test skips the models after it, as on DuckDB)."""
    return {
        node.name
        for node in run.nodes
        if node.resource_type == "model" and node.status == "success"
    }


def import_marts(paths: Paths, models: set[str]) -> dict[str, int]:
    """Replace the DuckDB warehouse's tables of `models` in marts and features with the Spark
    build's (read from their Parquet files); returns the rows of each. One transaction."""
    layout = SparkLayout.of(paths)
    imported: dict[str, int] = {}
    with connect(paths.warehouse) as connection:
        connection.execute("begin")
        for schema, table in spark_tables(paths, models):
            folder = layout.table_dir(schema, table)
            connection.execute(f"create schema if not exists {schema}")
            kind = connection.execute(
                "select table_type from information_schema.tables "
                "where table_schema = ? and table_name = ?",
                [schema, table],
            ).fetchone()
            if kind and kind[0] == "VIEW":  # a model that was a view before
                connection.execute(f'drop view {schema}."{table}"')
            connection.execute(
                f'create or replace table {schema}."{table}" as '
                f"select * from read_parquet('{folder}/*.parquet')"
            )
            imported[f"{schema}.{table}"] = connection.execute(
                f'select count(*) from {schema}."{table}"'
            ).fetchone()[0]
        connection.execute("commit")
    return imported


def spark_tables(paths: Paths, models: set[str]) -> list[tuple[str, str]]:
    """(schema, table) of each of `models` the Spark build materialized as a table in the
    imported schemas, from its manifest."""
    manifest = json.loads(Path(paths.dbt_target_dir, "manifest.json").read_text())
    return sorted(
        (node["schema"], node["alias"])
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model"
        and node["name"] in models
        and node["config"]["materialized"] in ("table", "incremental")
        and node["schema"] in IMPORTED_SCHEMAS
    )
