"""Schema names and DuckDB connections: what every layer needs to find its tables.

dlt loads the API into `raw`; dbt builds `staging`, `intermediate`, `marts`, `features` and
creates `ml` (written by the recommender); the nightly job keeps the run record in `ops`. Only
`marts`, `features`, `ml` and `ops` reach the analysts' file.
"""

from __future__ import annotations

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
