"""Shared fixtures: fast dlt retries, a dev API on loopback, and a pipeline into a temp DuckDB."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

import dlt
import pytest
from hypothesis import Phase, settings

from extract.pipeline import make_pipeline

# tests/orchestration need Airflow, which has its own environment (.venv-airflow): `make test`
# runs them there, after the rest of the suite in .venv.
if importlib.util.find_spec("airflow") is None:
    collect_ignore = ["orchestration"]


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """dlt's retry policy, shrunk: a test of four failed attempts takes a fraction of a second."""
    monkeypatch.setenv("RUNTIME__REQUEST_MAX_ATTEMPTS", "4")
    monkeypatch.setenv("RUNTIME__REQUEST_BACKOFF_FACTOR", "0.01")
    monkeypatch.setenv("RUNTIME__REQUEST_MAX_RETRY_DELAY", "0.1")
    monkeypatch.setenv("RUNTIME__REQUEST_TIMEOUT", "1")


@pytest.fixture
def duckdb_path(tmp_path: Path) -> Path:
    return tmp_path / "warehouse.duckdb"


@pytest.fixture
def pipeline(tmp_path: Path, duckdb_path: Path) -> Iterator[dlt.Pipeline]:
    yield make_pipeline(duckdb_path, tmp_path / "dlt")


# `make mutation` runs the suite once per planted defect: a failing property test should fail
# fast there, not spend minutes shrinking its example (HYPOTHESIS_PROFILE=mutation).
settings.register_profile("mutation", phases=[Phase.explicit, Phase.reuse, Phase.generate])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
