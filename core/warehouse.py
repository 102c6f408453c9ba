"""Schema names and DuckDB connections: what every layer needs to find its tables.

dlt loads the API into `raw`; dbt builds `staging`, `intermediate`, `marts`, `features` and
creates `ml` (written by the recommender); the nightly job keeps the run record in `ops`. Only
`marts`, `features`, `ml` and `ops` reach the analysts' file.

Every DuckDB the pipeline opens (this `connect`, dlt's destination, dbt-duckdb, the publish)
runs under the same `DuckDBSettings`: a memory limit, so a night too big for the machine fails
with a message naming the setting instead of being killed by the kernel, and a folder where
DuckDB spills what does not fit.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import duckdb

from core.config import resolve

RAW_SCHEMA = "raw"
ML_SCHEMA = "ml"
OPS_SCHEMA = "ops"
# The schemas analysts read, and the nightly job publishes, besides the run record's `ops`.
ANALYST_SCHEMAS = ("marts", "features", ML_SCHEMA)

# The settings live in the nightly job's section, beside its other limits (deadlines, disk).
SETTINGS_SECTION = "nightly"
MEMORY_LIMIT_SETTING = "NIGHTLY__DUCKDB_MEMORY_LIMIT"
TEMP_DIRECTORY_SETTING = "NIGHTLY__DUCKDB_TEMP_DIRECTORY"
DBT_THREADS_SETTING = "NIGHTLY__DBT_THREADS"
# By default DuckDB may use 1 GiB, or half of the machine's memory (its cgroup limit if lower)
# when that is less: DuckDB's own default, 80% of the machine, leaves too little for Python, dbt
# and the dev API beside it, and it fills whatever it may (8 to 10 GB during dbt's build at
# 1,000,000 users). dbt's first build at 1,000,000 users on a copy of the warehouse, one after
# the other: 1.5 GiB, 129 s and 2,095 MB; 1 GiB, 114 s and 1,407 MB; 768 MiB ran out of memory
# in a uniqueness test (1,000,000 users need about 1 GiB: raise it for more).
DEFAULT_MEMORY_LIMIT_BYTES = 1024 * 2**20
DEFAULT_MEMORY_SHARE = 0.5
CGROUP_MEMORY_MAX = Path("/sys/fs/cgroup/memory.max")


@dataclass(frozen=True)
class DuckDBSettings:
    """DuckDB's memory limit and spill folder: NIGHTLY__DUCKDB_MEMORY_LIMIT, ..._TEMP_DIRECTORY;
    and how many dbt nodes run at once on it, NIGHTLY__DBT_THREADS."""

    # DuckDB's syntax ("4GB", "2GiB", "512MB"); unset: 1 GiB, or half the machine's if less
    duckdb_memory_limit: str | None = None
    # where DuckDB spills; unset: beside each database file (`<file>.tmp`, DuckDB's default)
    duckdb_temp_directory: Path | None = None
    # dbt threads (profiles.yml): two overlap dbt's per-node work (most nodes are small tests);
    # one keeps a single heavy model at a time in memory, for a machine short of it
    dbt_threads: int = 2

    @classmethod
    def from_config(cls) -> DuckDBSettings:
        """The configured settings, the memory limit defaulted from the machine's memory."""
        settings = resolve(cls, SETTINGS_SECTION)
        if settings.duckdb_memory_limit:
            return settings
        share = int(machine_memory_bytes() * DEFAULT_MEMORY_SHARE)
        limit = min(DEFAULT_MEMORY_LIMIT_BYTES, share) // 2**20
        return replace(settings, duckdb_memory_limit=f"{limit}MiB")

    def temp_directory(self, database: Path) -> Path:
        return self.duckdb_temp_directory or Path(f"{database}.tmp")

    def config(self, database: Path) -> dict[str, str]:
        """`duckdb.connect(config=...)` for `database`."""
        assert self.duckdb_memory_limit, "from_config() fills the default"
        return {
            "memory_limit": self.duckdb_memory_limit,
            "temp_directory": str(self.temp_directory(database)),
        }

    def environment(self, database: Path) -> dict[str, str]:
        """The same settings for a child process (dbt-duckdb reads them in profiles.yml)."""
        config = self.config(database)
        return {
            MEMORY_LIMIT_SETTING: config["memory_limit"],
            TEMP_DIRECTORY_SETTING: config["temp_directory"],
            DBT_THREADS_SETTING: str(self.dbt_threads),
        }


def machine_memory_bytes() -> int:
    """Physical memory, or the cgroup's (container's) limit when that is lower."""
    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        return min(physical, int(CGROUP_MEMORY_MAX.read_text()))
    except (OSError, ValueError):  # no cgroup v2, or "max": no limit
        return physical


@contextmanager
def connect(
    path: Path, read_only: bool = False, **options: str
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short-lived connection under the DuckDB settings (and any further DuckDB `options`),
    closed on exit: DuckDB allows one writing process per file, so nobody keeps one open longer
    than one piece of work."""
    config = {**DuckDBSettings.from_config().config(Path(path)), **options}
    with duckdb.connect(str(path), read_only=read_only, config=config) as connection:
        yield connection


def compact(path: Path) -> None:
    """Rewrite the warehouse into a new file and swap it in: the blocks DuckDB freed (updated or
    deleted values, erased personal data among them) stay in a file until it is rewritten.

    The caller holds the run lock. The copy keeps the file's name in a private subfolder, so its
    catalog has the same name and the views that name it bind as before.
    """
    workdir = path.with_name(f".{path.name}.compacting")
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(mode=0o700)
    fresh = workdir / path.name
    try:
        with connect(fresh) as connection:
            catalog = connection.execute("select current_database()").fetchone()[0]
            connection.execute("attach ? as compacting_source (read_only)", [str(path)])
            connection.execute(f'copy from database compacting_source to "{catalog}"')
            connection.execute("detach compacting_source")
            connection.execute("checkpoint")
        os.replace(fresh, path)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
