"""The analyst queries in README.md run as written against a built warehouse and return rows."""

from __future__ import annotations

import re

import pytest

from tests.dbt.support import Warehouse
from tests.support import REPO_ROOT, query

pytestmark = pytest.mark.dbt


def readme_mart_queries() -> list[str]:
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("### Querying the marts", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sql\n(.*?)```", section, flags=re.DOTALL)


def test_the_readme_has_analyst_queries() -> None:
    assert len(readme_mart_queries()) >= 4


@pytest.mark.parametrize("sql", readme_mart_queries(), ids=lambda sql: sql.splitlines()[0])
def test_a_readme_query_answers_with_rows(sql: str, warehouse: Warehouse) -> None:
    rows = query(warehouse.duckdb_file, sql)
    assert rows, "the query should return rows on two nights of dev API data"
    assert all(value is not None for row in rows for value in row[:2])
