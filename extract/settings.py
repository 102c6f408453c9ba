"""Where the pipeline reads from and writes to, resolved from the environment with defaults.

Every path lives under one git-ignored data folder so a fresh clone needs no configuration.
"""

from __future__ import annotations

import os
from pathlib import Path

import dlt

DATA_DIR = Path(os.environ.get("MOOVITAMIX_DATA_DIR", "data"))
DUCKDB_PATH = Path(os.environ.get("MOOVITAMIX_DUCKDB_PATH", DATA_DIR / "moovitamix.duckdb"))
PIPELINES_DIR = DATA_DIR / "dlt"
DEV_API_DAY_FILE = DATA_DIR / "dev_api_day"


def configured_api_url() -> str | None:
    """`MOOVITAMIX_API_URL`, else dlt's `sources.moovitamix.api_url`; None means use the dev API."""
    return os.environ.get("MOOVITAMIX_API_URL") or dlt.config.get("sources.moovitamix.api_url")
