"""Where the pipeline reads from and writes to, resolved from the environment with defaults.

Every path lives under one git-ignored data folder so a fresh clone needs no configuration.
"""

from __future__ import annotations

import os
from pathlib import Path

import dlt

DATA_DIR = Path(os.environ.get("MOOVITAMIX_DATA_DIR", "data"))
# The pipeline's private warehouse: raw history and staging (personal data). Only the pipeline
# opens it: the extractor, dbt, the recommender's scoring, and the nightly publish.
DUCKDB_PATH = Path(os.environ.get("MOOVITAMIX_DUCKDB_PATH", DATA_DIR / "moovitamix.duckdb"))
# The analysts' file: the analyst-facing schemas, replaced whole by each successful nightly run.
ANALYTICS_DUCKDB_PATH = Path(
    os.environ.get("MOOVITAMIX_ANALYTICS_PATH", DATA_DIR / "analytics.duckdb")
)
PIPELINES_DIR = DATA_DIR / "dlt"
DEV_API_DAY_FILE = DATA_DIR / "dev_api_day"
# The nightly job's run ledger (one JSON file per run), its lock, and dbt's target and log folders.
RUNS_DIR = DATA_DIR / "runs"
NIGHTLY_LOCK_FILE = DATA_DIR / "nightly.lock"
DBT_TARGET_DIR = DATA_DIR / "dbt" / "target"
DBT_LOG_DIR = DATA_DIR / "dbt" / "logs"


def configured_api_url() -> str | None:
    """`MOOVITAMIX_API_URL`, else dlt's `sources.moovitamix.api_url`; None means use the dev API."""
    return os.environ.get("MOOVITAMIX_API_URL") or dlt.config.get("sources.moovitamix.api_url")
