"""Which engine runs the dbt layer, and where the Spark engine keeps its files.

`warehouse.engine` picks it: `duckdb` (the default: the private warehouse file does everything) or
`spark` (Apache Spark through dbt-spark; local mode here, a cluster by changing the profile). Set
it as `MOOVITAMIX_ENGINE=spark` (short form), `WAREHOUSE__ENGINE=spark`, or `engine = "spark"`
under `[warehouse]` in `.dlt/config.toml`.

On Spark the raw layer still lands in the DuckDB warehouse (the extractor, its guarantees and
its history are the engine-independent part), and each night exports it to a Parquet lake that
Spark reads (`extract/lake.py`). This module only names the folders and the environment dbt
needs, so that every dbt command (the nightly job, `make dbt`, the tests) runs on the same
engine: core imports no other layer.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import dlt

from core.config import SettingsError, resolve
from core.paths import Paths

DUCKDB = "duckdb"
SPARK = "spark"
ENGINES = (DUCKDB, SPARK)
SETTINGS_SECTION = "warehouse"
# the raw snapshot dbt reads on Spark: the committed one, or the night's pending one
CURRENT = "CURRENT"
PENDING = "PENDING"


@dataclass(frozen=True)
class EngineSettings:
    """warehouse.engine: MOOVITAMIX_ENGINE, WAREHOUSE__ENGINE or [warehouse] engine; and the
    Spark session's sizing (WAREHOUSE__SPARK_*), which profiles.yml reads."""

    engine: str = DUCKDB
    # Spark's master: local mode on every core here; a cluster's URL (spark://, yarn, k8s://)
    spark_master: str = "local[*]"
    # the driver's heap (in local mode the executors run in it too)
    spark_driver_memory: str = "4g"
    # partitions of each shuffle: Spark's 200 suit a cluster, not one machine's night
    spark_shuffle_partitions: int = 8

    @classmethod
    def from_config(cls) -> EngineSettings:
        short_form = dlt.config.get("moovitamix_engine", str)
        given = {"engine": short_form} if short_form else {}
        settings = resolve(cls, SETTINGS_SECTION, **given)
        if settings.engine not in ENGINES:
            raise SettingsError(
                f"setting warehouse.engine (MOOVITAMIX_ENGINE): {settings.engine!r} is not one "
                f"of {', '.join(ENGINES)}"
            )
        return settings

    @property
    def is_spark(self) -> bool:
        return self.engine == SPARK


@dataclass(frozen=True)
class SparkLayout:
    """The Spark engine's folders in the data folder: the lake of raw Parquet snapshots (one per
    night, `CURRENT` names the committed one), the Spark warehouse (dbt's tables, Parquet) and the
    Hive metastore (embedded Derby) that keeps them between runs."""

    data_dir: Path

    @classmethod
    def of(cls, paths: Paths) -> SparkLayout:
        return cls(paths.data_dir.resolve())

    @property
    def lake_raw(self) -> Path:
        return self.data_dir / "lake" / "raw"

    @property
    def spark_dir(self) -> Path:
        return self.data_dir / "spark"

    @property
    def warehouse_dir(self) -> Path:
        return self.spark_dir / "warehouse"

    @property
    def metastore_dir(self) -> Path:
        return self.spark_dir / "metastore_db"

    def table_dir(self, schema: str, table: str) -> Path:
        """Where Spark's Hive catalog keeps a managed table's Parquet files."""
        return self.warehouse_dir / f"{schema}.db" / table

    def snapshot(self, pointer: str) -> Path | None:
        """The raw snapshot a pointer file (CURRENT or PENDING) names, if any."""
        try:
            name = (self.lake_raw / pointer).read_text().strip()
        except FileNotFoundError:
            return None
        return self.lake_raw / name

    def readable_snapshot(self) -> Path | None:
        """The snapshot dbt reads: tonight's pending one while a night runs (or after it failed:
        raw holds that night's load too), else the committed one."""
        return self.snapshot(PENDING) or self.snapshot(CURRENT)


def dbt_environment(paths: Paths) -> dict[str, str]:
    """What profiles.yml and the Spark macros read: the target (`DBT_TARGET`), Spark's folders
    and the lake snapshot with its tables. Empty on DuckDB."""
    settings = EngineSettings.from_config()
    if not settings.is_spark:
        return {}
    layout = SparkLayout.of(paths)
    snapshot = layout.readable_snapshot()
    tables = sorted(p.name for p in snapshot.iterdir() if p.is_dir()) if snapshot else []
    return {
        "DBT_TARGET": os.environ.get("DBT_TARGET", SPARK),
        "MOOVITAMIX_SPARK_MASTER": settings.spark_master,
        "MOOVITAMIX_SPARK_DRIVER_MEMORY": settings.spark_driver_memory,
        "MOOVITAMIX_SPARK_SHUFFLE_PARTITIONS": str(settings.spark_shuffle_partitions),
        "MOOVITAMIX_SPARK_WAREHOUSE": str(layout.warehouse_dir),
        "MOOVITAMIX_SPARK_METASTORE": str(layout.metastore_dir),
        "MOOVITAMIX_LAKE_RAW": str(snapshot or ""),
        "MOOVITAMIX_LAKE_TABLES": ",".join(tables),
    }
