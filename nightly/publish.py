"""Publish: write the analysts' file beside the old one, then swap it in with one rename.

Only the analyst-facing schemas are copied (marts, features, ml, plus the run record as ops), so
a publish costs the size of those tables, not of the raw history, and no personal data leaves
the private warehouse. The new file is checkpointed (no WAL), checked, made read-only and fsynced
before `os.replace`: an analyst session open on the old file keeps reading that snapshot until it
reconnects, and a run that fails before the rename leaves the old file untouched.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from core.warehouse import connect
from nightly.ledger import RunRecord
from nightly.measure import analyst_relations
from nightly.ops_tables import write_ops_tables

WAREHOUSE = "warehouse"


@dataclass(frozen=True)
class Publication:
    path: Path
    tables: int
    rows: int
    bytes: int
    seconds: float

    def render(self) -> str:
        return (
            f"Published {self.tables} tables ({self.rows:,} rows) and the run record (ops) to "
            f"{self.path} in {self.seconds:.1f} s: {self.bytes / 1e6:,.1f} MB"
        )


def publish(warehouse: Path, target: Path, records: Sequence[RunRecord]) -> Publication:
    """Copy the analyst schemas of `warehouse` and the ops tables into a new `target`."""
    started = time.monotonic()
    staging = target.with_name(f".{target.name}.publishing")
    leftovers = (staging, staging.with_name(f"{staging.name}.wal"))
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove(*leftovers)  # of a publish that was killed (runs never overlap)
    try:
        copied = _write_snapshot(warehouse, staging, records)
        if leftovers[1].exists():
            raise RuntimeError(f"{leftovers[1]} remains after the checkpoint; not publishing")
        _check_snapshot(staging, copied)
        staging.chmod(0o444)  # analysts open it read-only; the next run replaces, never edits
        _fsync(staging)
        os.replace(staging, target)
        _fsync(target.parent)
    finally:
        _remove(*leftovers)
    return Publication(
        target, len(copied), sum(copied.values()), target.stat().st_size, time.monotonic() - started
    )


def _write_snapshot(warehouse: Path, staging: Path, records: Sequence[RunRecord]) -> dict[str, int]:
    """Build the new file (DuckDB spills, if need be, to its temp folder); each table's rows."""
    with connect(staging) as connection:
        snapshot = connection.execute("select current_database()").fetchone()[0]
        connection.execute(f"attach ? as {WAREHOUSE} (read_only)", [str(warehouse)])
        copied = {}
        for schema, name in analyst_relations(connection, WAREHOUSE):
            connection.execute(f'create schema if not exists "{snapshot}"."{schema}"')
            # views too, as tables: what they read (staging, ml...) may not be published
            connection.execute(
                f'create table "{snapshot}"."{schema}"."{name}" as '
                f'from {WAREHOUSE}."{schema}"."{name}"'
            )
            copied[f"{schema}.{name}"] = connection.execute(
                f'select count(*) from "{snapshot}"."{schema}"."{name}"'
            ).fetchone()[0]
        write_ops_tables(connection, snapshot, records)
        connection.execute(f"detach {WAREHOUSE}")
        connection.execute("checkpoint")
    return copied


def _check_snapshot(staging: Path, copied: dict[str, int]) -> None:
    """Open the new file as an analyst would and find every table with its rows."""
    with connect(staging, read_only=True) as connection:
        for table, rows in copied.items():
            found = connection.execute(f"select count(*) from {table}").fetchone()[0]
            if found != rows:
                raise RuntimeError(f"{table} has {found} rows in the new file, {rows} copied")


def _remove(*paths: Path) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
