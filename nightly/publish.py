"""Publish: write the analysts' file beside the old one, then swap it in with one rename.

Only the analyst-facing schemas are copied (marts, features, ml, plus the run record as ops), so
a publish costs the size of those tables, not of the raw history, and no personal data leaves
the private warehouse. Relations the caller knows unchanged since the last publish (`unchanged`:
built from sources that did not move, or `ml` tables whose content did not, nightly/changes.py)
are not copied again: the new file
starts as a byte copy of the published one, keeps those tables and replaces the others. It is
written afresh instead when the copy would not stay compact: when the tables it would replace,
or the blocks already free in it, fill more than a quarter of the old file (and over 16 MB).
So a night that changes most tables writes a compact file, and the quiet nights after it share
it.
The new file is checkpointed (no WAL), checked, made read-only and fsynced
before `os.replace`: an analyst session open on the old file keeps reading that snapshot until it
reconnects, and a run that fails before the rename leaves the old file untouched.

The file is written in DuckDB 1.0's storage format (`STORAGE_VERSION`), not the format of the
duckdb release the pipeline runs: analysts open it with their own clients (the DuckDB shell,
DBeaver's JDBC driver, R, Node), and any DuckDB 1.0 or later reads a 1.0 file. 1.0 is the oldest
format that holds every type we publish and the first DuckDB promises to keep reading.
"""

from __future__ import annotations

import grp
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from core.warehouse import connect
from nightly.ledger import RunRecord
from nightly.measure import analyst_relations
from nightly.ops_tables import write_ops_tables

WAREHOUSE = "warehouse"
# a published file is not copied when more of its blocks than this share are free, or would be
# once the night's changed tables replace theirs, and more than FREE_BLOCKS_ALWAYS_ALLOWED: the
# night writes a fresh, compact file instead (a file of a few MB costs the same either way)
MAX_FREE_SHARE = 0.25
FREE_BLOCKS_ALWAYS_ALLOWED = 64  # DuckDB's blocks are 256 KB: 16 MB
# The storage format of the analysts' file: readable by every DuckDB client from 1.0 on.
STORAGE_VERSION = "v1.0.0"


@dataclass(frozen=True)
class Publication:
    path: Path
    tables: int
    rows: int
    bytes: int
    seconds: float
    shared: int = 0  # tables kept from the previous file, unchanged since

    def render(self) -> str:
        kept = f"; {self.shared} unchanged, kept from the previous file" if self.shared else ""
        return (
            f"Published {self.tables} tables ({self.rows:,} rows{kept}) and the run record (ops) "
            f"to {self.path} in {self.seconds:.1f} s: {self.bytes / 1e6:,.1f} MB"
        )


def publish(
    warehouse: Path,
    target: Path,
    records: Sequence[RunRecord],
    erasures: pa.Table,
    mode: int = 0o440,
    group: str | None = None,
    unchanged: frozenset[str] = frozenset(),
) -> Publication:
    """Copy the analyst schemas of `warehouse` and the ops tables into a new `target`, readable
    with `mode` (never writable: the next run replaces it, never edits it), by `group` if given.
    The tables named in `unchanged` (`schema.name`) are taken from the current `target`."""
    started = time.monotonic()
    staging = target.with_name(f".{target.name}.publishing")
    leftovers = (staging, staging.with_name(f"{staging.name}.wal"))
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove(*leftovers)  # of a publish that was killed (runs never overlap)
    try:
        shared = unchanged if _stays_compact(target, unchanged) else frozenset()
        if shared:
            shutil.copyfile(target, staging)  # a new inode: readers of target keep their file
            staging.chmod(0o600)
        copied = _write_snapshot(warehouse, staging, records, erasures, shared)
        if leftovers[1].exists():
            raise RuntimeError(f"{leftovers[1]} remains after the checkpoint; not publishing")
        _check_snapshot(staging, copied)
        if group:
            os.chown(staging, -1, grp.getgrnam(group).gr_gid)
        staging.chmod(mode)
        _fsync(staging)
        os.replace(staging, target)
        _fsync(target.parent)
    finally:
        _remove(*leftovers)
    return Publication(
        target,
        len(copied),
        sum(copied.values()),
        target.stat().st_size,
        time.monotonic() - started,
        sum(table in shared for table in copied),
    )


def _write_snapshot(
    warehouse: Path,
    staging: Path,
    records: Sequence[RunRecord],
    erasures: pa.Table,
    shared: frozenset[str],
) -> dict[str, int]:
    """Build the new file (DuckDB spills, if need be, to its temp folder), or complete the copy
    of the published one: tables in `shared` stay, every other analyst table is replaced, and
    tables no longer in the warehouse go; each table's rows."""
    with connect(staging, storage_compatibility_version=STORAGE_VERSION) as connection:
        snapshot = connection.execute("select current_database()").fetchone()[0]
        connection.execute(f"attach ? as {WAREHOUSE} (read_only)", [str(warehouse)])
        relations = analyst_relations(connection, WAREHOUSE)
        kept = set(analyst_relations(connection, snapshot))
        for schema, name in kept - set(relations):
            connection.execute(f'drop table "{snapshot}"."{schema}"."{name}"')
        copied = {}
        for schema, name in relations:
            if f"{schema}.{name}" in shared and (schema, name) in kept:
                copied[f"{schema}.{name}"] = connection.execute(
                    f'select count(*) from "{snapshot}"."{schema}"."{name}"'
                ).fetchone()[0]
                continue
            connection.execute(f'create schema if not exists "{snapshot}"."{schema}"')
            # views too, as tables: what they read (staging, ml...) may not be published
            connection.execute(
                f'create or replace table "{snapshot}"."{schema}"."{name}" as '
                f'from {WAREHOUSE}."{schema}"."{name}"'
            )
            copied[f"{schema}.{name}"] = connection.execute(
                f'select count(*) from "{snapshot}"."{schema}"."{name}"'
            ).fetchone()[0]
        write_ops_tables(connection, snapshot, records, erasures)
        connection.execute(f"detach {WAREHOUSE}")
        connection.execute("checkpoint")
    return copied


def _check_snapshot(staging: Path, copied: dict[str, int]) -> None:
    """Open the new file as an analyst would: the storage format their clients read, and every
    table with its rows."""
    with connect(staging, read_only=True) as connection:
        [tags] = connection.execute(
            "select tags from duckdb_databases() where database_name = current_database()"
        ).fetchone()
        if tags.get("storage_version") != f"{STORAGE_VERSION}+":
            raise RuntimeError(
                f"the new file has storage version {tags.get('storage_version')}, "
                f"not {STORAGE_VERSION}: DuckDB 1.x clients could not open it"
            )
        for table, rows in copied.items():
            found = connection.execute(f"select count(*) from {table}").fetchone()[0]
            if found != rows:
                raise RuntimeError(f"{table} has {found} rows in the new file, {rows} copied")


def _stays_compact(target: Path, unchanged: frozenset[str]) -> bool:
    """Whether a copy of the published file is worth starting from: it exists, and neither its
    free blocks nor the blocks of the tables tonight replaces (every table not in `unchanged`,
    `ops` included) are over MAX_FREE_SHARE of it (or FREE_BLOCKS_ALWAYS_ALLOWED). Tonight's new
    tables reuse the free blocks, and the replaced tables' blocks are free afterwards."""
    if not unchanged or not target.exists():
        return False
    with connect(target, read_only=True) as connection:
        free, total = connection.execute(
            "select free_blocks, total_blocks from pragma_database_size()"
        ).fetchone()
        tables = connection.execute(
            "select schema_name, table_name from duckdb_tables() "
            "where database_name = current_database()"
        ).fetchall()
        replaced = sum(
            connection.execute(
                "select count(distinct block_id) from pragma_storage_info("
                f'\'"{schema}"."{name}"\') where block_id >= 0'
            ).fetchone()[0]
            for schema, name in tables
            if f"{schema}.{name}" not in unchanged
        )
    return max(free, replaced) <= max(MAX_FREE_SHARE * total, FREE_BLOCKS_ALWAYS_ALLOWED)


def _remove(*paths: Path) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
