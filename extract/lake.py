"""The raw layer as Parquet, for an engine that reads files (Spark): one snapshot per night.

The extractor keeps landing in DuckDB whatever the engine: it is the one place that applies the
raw layer's guarantees (versions kept as scd2 history, deletions retired, the truncation guard,
quarantine, a failed load leaving raw as it was). `export_raw` then writes every raw table, as
it stands after the night's load and privacy erasures, to a new snapshot folder
`<data>/lake/raw/<load id>.<suffix>/<table>/data.parquet` and names it in `PENDING`; dbt on
Spark reads that snapshot. `commit` makes it the lake's `CURRENT` snapshot (one atomic rename)
once the night's build succeeded, and deletes the older ones: a failed night leaves `CURRENT`
and its files as they were. A snapshot is the whole raw layer, history included: erasures
(privacy) rewrite old versions in place, so a lake of per-night change files would keep erased
values.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from core.engine import CURRENT, PENDING, SparkLayout
from core.paths import Paths
from core.warehouse import RAW_SCHEMA, connect

# dlt's bookkeeping besides _dlt_loads (which dbt reads): not data
SKIPPED_TABLES = frozenset({"_dlt_pipeline_state", "_dlt_version"})


def export_raw(paths: Paths) -> Path:
    """Write raw to a new snapshot, named in PENDING; returns its folder."""
    layout = SparkLayout.of(paths)
    layout.lake_raw.mkdir(parents=True, exist_ok=True)
    _discard_pending(layout)
    with connect(paths.warehouse, read_only=True) as connection:
        tables = [
            name
            for (name,) in connection.execute(
                "select table_name from information_schema.tables where table_schema = ? "
                "and table_type = 'BASE TABLE' order by table_name",
                [RAW_SCHEMA],
            ).fetchall()
            if name not in SKIPPED_TABLES
        ]
        load_id = connection.execute(
            f"select coalesce(max(load_id), 'empty') from {RAW_SCHEMA}._dlt_loads where status = 0"
        ).fetchone()[0]
        # a new folder even for a night that loaded nothing new: CURRENT's stays intact
        snapshot = layout.lake_raw / f"{load_id}.{uuid.uuid4().hex[:8]}"
        for table in tables:
            folder = snapshot / table
            folder.mkdir(parents=True)
            connection.execute(
                f'copy (select * from {RAW_SCHEMA}."{table}") to '
                f"'{folder / 'data.parquet'}' (format parquet, compression zstd)"
            )
    _write_pointer(layout.lake_raw / PENDING, snapshot.name)
    return snapshot


def commit(paths: Paths) -> None:
    """Make the pending snapshot the lake's CURRENT one and delete every other snapshot."""
    layout = SparkLayout.of(paths)
    pending = layout.snapshot(PENDING)
    if pending is None:
        return
    _write_pointer(layout.lake_raw / CURRENT, pending.name)
    (layout.lake_raw / PENDING).unlink()
    for folder in layout.lake_raw.iterdir():
        if folder.is_dir() and folder != pending:
            shutil.rmtree(folder)


def erase(paths: Paths) -> bool:
    """After a privacy erasure in the warehouse: delete every snapshot, as they still hold the
    erased values (the next Spark night exports raw afresh). Returns whether there was a lake."""
    layout = SparkLayout.of(paths)
    if not layout.lake_raw.exists():
        return False
    shutil.rmtree(layout.lake_raw)
    return True


def _discard_pending(layout: SparkLayout) -> None:
    """A failed night's snapshot (never committed) goes before the next one is written."""
    pending, current = layout.snapshot(PENDING), layout.snapshot(CURRENT)
    if pending is not None and pending != current:
        shutil.rmtree(pending, ignore_errors=True)
    (layout.lake_raw / PENDING).unlink(missing_ok=True)


def _write_pointer(pointer: Path, name: str) -> None:
    """Replace a pointer file atomically: readers see the old name or the new one."""
    written = pointer.with_name(f".{pointer.name}.writing")
    written.write_text(name + "\n")
    with open(written, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(written, pointer)
