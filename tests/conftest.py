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

# The files that take longest, longest first (measured with --durations on two workers; the
# fixture a file builds first counted in). `make test` hands whole files to its workers in
# collection order (--dist loadfile --no-loadscope-reorder), and a long file handed out last is
# the whole run's tail: these go first, the many short files fill in behind them. A file
# missing here, or measured anew, only moves in the order: it changes no test.
LONGEST_FILES = (
    "dbt/test_spark_engine.py",
    "nightly/test_sick_machine.py",
    "nightly/test_privacy.py",
    "nightly/test_selective_nights.py",
    "dbt/test_marts.py",
    "browser/test_docs_site.py",
    "nightly/test_failures.py",
    "serve/test_api.py",
    "extract/test_faults.py",
    "recommender/test_scoring_changes.py",
    "nightly/test_analysts_and_concurrency.py",
    "nightly/test_published_record.py",
    "recommender/test_nightly.py",
    "nightly/test_status.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """LONGEST_FILES first, in that order, then the rest as collected; each file's tests keep
    their order."""
    tests_dir = Path(__file__).parent

    def rank(item: pytest.Item) -> int:
        name = item.path.relative_to(tests_dir).as_posix()
        return LONGEST_FILES.index(name) if name in LONGEST_FILES else len(LONGEST_FILES)

    items.sort(key=rank)  # stable: the rest, and each file, keep their order


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
