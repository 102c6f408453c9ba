"""Schema names and DuckDB connections: what every layer needs to find its tables.

dlt loads the API into `raw`; dbt builds `staging`, `intermediate`, `marts`, `features` and
creates `ml` (written by the recommender); the nightly job keeps the run record in `ops`. Only
`marts`, `features`, `ml` and `ops` reach the analysts' file.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

RAW_SCHEMA = "raw"
ML_SCHEMA = "ml"
OPS_SCHEMA = "ops"
# The schemas analysts read, and the nightly job publishes, besides the run record's `ops`.
ANALYST_SCHEMAS = ("marts", "features", ML_SCHEMA)


@contextmanager
def connect(path: Path, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short-lived connection, closed on exit: DuckDB allows one writing process per file, so
    nobody keeps one open longer than one piece of work."""
    with duckdb.connect(str(path), read_only=read_only) as connection:
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
        with duckdb.connect(str(fresh)) as connection:
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
