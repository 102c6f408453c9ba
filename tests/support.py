"""Helpers the test modules share (fixtures live in conftest.py)."""

from __future__ import annotations

from pathlib import Path

import duckdb

REPO_ROOT = Path(__file__).resolve().parents[1]
CONTRACT_DIR = REPO_ROOT / "dev_api" / "contract"


def query(path: Path, sql: str, *params: object) -> list[tuple]:
    """Rows of `sql` from a DuckDB file, opened read-only and closed again (so writers can run)."""
    with duckdb.connect(str(path), read_only=True) as connection:
        return connection.execute(sql, list(params)).fetchall()
