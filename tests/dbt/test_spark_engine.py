"""The same pipeline on Apache Spark (local mode), chosen by MOOVITAMIX_ENGINE=spark.

One Spark data folder, one module: the nightly job runs end to end on Spark over the same two
dev API days as the DuckDB `warehouse` fixture (conftest.py), then every mart and feature table
Spark built (its Parquet files, read directly) is compared with DuckDB's, table by table; then a
third night whose Spark build fails must leave the lake's committed snapshot and the analysts'
file as they were. The JVM starts once per dbt command: three nights, three starts.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from core.engine import CURRENT, PENDING, SparkLayout
from dev_api.faults import FaultPlan
from dev_api.server import running_api
from dev_api.world import World
from nightly.engine import IMPORTED_SCHEMAS
from nightly.runner import NightOutcome, run_night
from nightly.settings import NightConfig
from nightly.steps import STEPS
from tests.dbt.conftest import WORLD, day_with_a_deletion, next_day_nulls
from tests.dbt.support import Warehouse, assert_ok
from tests.support import REPO_ROOT, query

pytestmark = [
    pytest.mark.dbt,
    pytest.mark.spark,
    pytest.mark.skipif(
        importlib.util.find_spec("pyspark") is None or shutil.which("java") is None,
        reason="no Java runtime, or the Spark extra is not installed (make spark-install; "
        "make test installs it where Java is)",
    ),
]

# Columns stamped with the time of the night's load (or counted to it): each engine's data
# folder loaded the same API day seconds apart, so these differ by construction.
LOAD_STAMPED = frozenset(
    {
        "loaded_at", "load_id", "first_seen_at", "first_seen_load_id", "list_loaded_at",
        "last_seen_at", "last_new_listen_at", "as_of_at", "days_since_signup",
        "days_since_last_new_listen", "days_since_release",
    }
)  # fmt: skip
ENGINE_MACROS = REPO_ROOT / "dbt_project" / "macros" / "engine"
# DuckDB's incremental builds' own record of which users tonight's key tests read
# (macros/incremental/tested_through.sql): Spark rebuilds and tests every row, so they differ
# by design
TESTED_THROUGH_TABLES = ("dbt_tested_through", "int_users_to_test")


@dataclass(frozen=True)
class SparkNights:
    config: NightConfig
    nights: tuple[NightOutcome, ...]
    failed: NightOutcome
    lake_before_failure: dict[str, str]
    lake_after_failure: dict[str, str]
    analytics_before_failure: str
    analytics_after_failure: str


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def lake_state(layout: SparkLayout) -> dict[str, str]:
    """The committed snapshot's name and every file of it, with its digest."""
    current = layout.snapshot(CURRENT)
    assert current is not None, "no committed lake snapshot"
    files = {str(p.relative_to(layout.lake_raw)): digest(p) for p in current.rglob("*.parquet")}
    return {CURRENT: current.name, **files}


@pytest.fixture(scope="module")
def spark_nights(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkNights]:
    data_dir = tmp_path_factory.mktemp("spark")
    world = World(**WORLD)
    day_number = day_with_a_deletion(world)
    world.day = day_number
    with pytest.MonkeyPatch.context() as environment, running_api(world) as api:
        environment.setenv("MOOVITAMIX_ENGINE", "spark")
        environment.setenv("WAREHOUSE__SPARK_MASTER", "local[2]")
        environment.setenv("WAREHOUSE__SPARK_SHUFFLE_PARTITIONS", "2")
        config = NightConfig.for_data_dir(data_dir, api_url=api.url)
        first = run_night(STEPS, config)
        api.set_day(day_number + 1)
        api.faults = next_day_nulls()  # as the DuckDB fixture's second day
        second = run_night(STEPS, config)
        layout = SparkLayout.of(config.paths)
        lake_before, analytics_before = lake_state(layout), digest(config.paths.analytics)
        # a third night whose Spark cannot start: the build fails after raw was exported
        api.set_day(day_number + 2)
        api.faults = FaultPlan()
        environment.setenv("WAREHOUSE__SPARK_DRIVER_MEMORY", "1k")
        failed = run_night(STEPS, config)
    # outside the environment above: the DuckDB fixture compared with it runs on DuckDB
    yield SparkNights(
        config=config,
        nights=(first, second),
        failed=failed,
        lake_before_failure=lake_before,
        lake_after_failure=lake_state(layout),
        analytics_before_failure=analytics_before,
        analytics_after_failure=digest(config.paths.analytics),
    )


def test_the_nightly_job_runs_end_to_end_on_spark(spark_nights: SparkNights) -> None:
    for night in spark_nights.nights:
        assert night.exit_code == 0, night.record.error_message
        assert night.build is not None
        assert_ok(night.build)
        assert night.record.published_at is not None
    # the analysts' file holds the marts Spark built, the recommender's scores and the run record
    paths = spark_nights.config.paths
    layout = SparkLayout.of(paths)
    with duckdb.connect() as connection:
        folder = layout.table_dir("marts", "fct_listens")
        [(spark_listens,)] = connection.execute(
            f"select count(*) from read_parquet('{folder}/*.parquet')"
        ).fetchall()
    assert spark_listens > 0
    assert query(paths.analytics, "select count(*) from marts.fct_listens") == [(spark_listens,)]
    [(scored_users,)] = query(
        paths.analytics, "select count(distinct user_id) from ml.recommendations"
    )
    [(current_users,)] = query(paths.analytics, "select count(*) from marts.dim_users")
    assert scored_users == current_users > 0
    runs = query(paths.analytics, "select run_id, status from ops.pipeline_runs order by run_id")
    assert [run_id for run_id, _ in runs] == [n.record.run_id for n in spark_nights.nights]
    assert runs[0][1] in ("success", "warned")


def test_every_mart_and_feature_table_equals_duckdb(
    spark_nights: SparkNights, warehouse: Warehouse
) -> None:
    layout = SparkLayout.of(spark_nights.config.paths)
    with duckdb.connect() as connection:
        connection.execute("attach ? as duck (read_only)", [str(warehouse.duckdb_file)])
        tables = connection.execute(
            "select table_schema, table_name from information_schema.tables "
            f"where table_catalog = 'duck' and table_schema in {IMPORTED_SCHEMAS} "
            "and table_type = 'BASE TABLE' and table_name not in ? "
            "order by all",
            [list(TESTED_THROUGH_TABLES)],
        ).fetchall()
        assert len(tables) >= 8, tables
        for schema, table in tables:
            columns = connection.execute(
                "select column_name, data_type from information_schema.columns where "
                "table_catalog = 'duck' and table_schema = ? and table_name = ? "
                "order by ordinal_position",
                [schema, table],
            ).fetchall()
            selected = ", ".join(
                f'round("{name}", 9)' if kind == "DOUBLE" else f'"{name}"'
                for name, kind in columns
                if name not in LOAD_STAMPED
            )
            duck = f'select {selected} from duck.{schema}."{table}"'
            folder = layout.table_dir(schema, table)
            spark = f"select {selected} from read_parquet('{folder}/*.parquet')"
            [(rows,)] = connection.execute(f"select count(*) from ({duck})").fetchall()
            assert rows > 0, f"{schema}.{table} is empty on DuckDB"
            for left, right, only in ((duck, spark, "DuckDB"), (spark, duck, "Spark")):
                extra = connection.execute(f"{left} except all {right} limit 3").fetchall()
                assert not extra, f"{schema}.{table}: rows only on {only}: {extra}"


def test_a_failed_spark_night_leaves_the_lake_and_the_analysts_file_unchanged(
    spark_nights: SparkNights,
) -> None:
    failed = spark_nights.failed
    assert failed.exit_code != 0
    assert failed.record.failing_step == "dbt_build", failed.record.error_message
    assert spark_nights.lake_after_failure == spark_nights.lake_before_failure
    assert spark_nights.analytics_after_failure == spark_nights.analytics_before_failure
    # the failed night did export its raw: to a pending snapshot that nothing committed
    layout = SparkLayout.of(spark_nights.config.paths)
    pending = layout.snapshot(PENDING)
    assert pending is not None and pending.name != spark_nights.lake_before_failure[CURRENT]


def test_every_engine_macro_has_both_engines(spark_nights: SparkNights) -> None:
    """Every dispatched macro of macros/engine has a duckdb__ and a spark__ version; the builds
    above ran every model on each engine, so none of them raised there."""
    text = "\n".join(path.read_text() for path in ENGINE_MACROS.glob("*.sql"))
    dispatched = set(re.findall(r"adapter\.dispatch\('(\w+)', 'moovitamix'\)", text))
    assert len(dispatched) >= 10, dispatched
    for name in dispatched:
        for engine in ("duckdb", "spark"):
            assert re.search(rf"macro {engine}__{name}\(", text), f"no {engine}__{name}"
    build = spark_nights.nights[-1].build
    assert build is not None
    models = {n.name for n in build.nodes if n.resource_type == "model"}
    # tables built on Spark only, views on both (recorded once each), the one view over ml
    assert {"fct_listens", "int_user_features", "user_features", "fct_recommendations"} <= models
    ids = [n.unique_id for n in build.nodes]
    assert len(ids) == len(set(ids))
    # (that the tables were built on Spark: the comparison above reads them from its folders)
