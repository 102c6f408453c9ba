"""`make shell`: the DuckDB shell, read-only, on the analysts' file, with the analyst schemas on
the search path (`from fct_listens` works) and a short welcome.

The shell is the one pinned in requirements.lock (PyPI `duckdb-cli`, a 1.x release): the file is
published in a storage format DuckDB 1.x reads, and this is the proof an analyst sees. Opening
it never waits for, nor blocks, a nightly run: the run writes a new file and renames it over
this one, and the open session keeps reading the snapshot it opened until it reconnects.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import duckdb

from core.paths import Paths
from core.warehouse import ANALYST_SCHEMAS, OPS_SCHEMA

SCHEMAS = (*ANALYST_SCHEMAS, OPS_SCHEMA)
# The tables most questions start from, and what one row is.
USEFUL_TABLES = (
    ("marts.fct_listens", "one listen of a current user (user_id, listen_position)"),
    ("marts.dim_users", "one current user, without personal data"),
    ("marts.dim_tracks", "one current track: name, artist, album, genres, duration"),
    ("features.user_features", "one user: listening summary, the recommender's input"),
    ("marts.fct_recommendations", "one recommended track for a user, ranked, with its name"),
)


def welcome(path: Path) -> str:
    """What the shell says first: which night the file holds, the schemas, where to start."""
    with duckdb.connect(str(path), read_only=True) as connection:
        published = connection.execute(
            f"select run_id, published_at from {OPS_SCHEMA}.pipeline_runs "
            "where published_at is not null order by published_at desc limit 1"
        ).fetchone()
    night = f"run {published[0]}, published {published[1]:%Y-%m-%d %H:%M} UTC" if published else ""
    width = max(len(name.split(".")[1]) for name, _ in USEFUL_TABLES)
    return "\n".join(
        [
            f"MooVitamix analysts' file {path}, read-only ({night})",
            f"Schemas: {', '.join(SCHEMAS)}, all on the search path: `from fct_listens;` works.",
            "Start with (one row is):",
            *[f"  {name.split('.')[1]:<{width}}  {grain}" for name, grain in USEFUL_TABLES],
            "`.tables` lists every table, `describe fct_listens;` its columns.",
            "Quit with `.quit` or Ctrl-D. A new night appears when you reopen the shell.",
        ]
    )


def command(path: Path) -> list[str]:
    """The pinned DuckDB shell's command line, read-only on `path`."""
    shell = Path(sys.executable).with_name("duckdb")
    search_path = ",".join(SCHEMAS)
    return [str(shell), "-readonly", "-cmd", f"set search_path = '{search_path}';", str(path)]


def main() -> int:
    path = Paths.resolve().analytics
    if not path.exists():
        print(
            f"No analysts' file at {path} yet: a successful nightly run publishes it "
            "(`make elt`; `make status` shows the runs).",
            file=sys.stderr,
        )
        return 1
    shell, *arguments = command(path)
    if not Path(shell).exists():
        print(
            f"The DuckDB shell is not installed at {shell}: run `make install` "
            "(PyPI duckdb-cli, pinned in requirements.lock).",
            file=sys.stderr,
        )
        return 1
    print(welcome(path), flush=True)
    os.execv(shell, [shell, *arguments])


if __name__ == "__main__":
    sys.exit(main())
