"""The ml tables dbt creates (macro create_ml_tables) are the ones the recommender writes."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from recommender import RecommenderError
from recommender.warehouse import (
    _VERSION_FIELDS,
    RECOMMENDATION_COLUMNS,
    SCORED_USER_COLUMNS,
    next_model_version,
    read_scored_users,
)
from tests.recommender.conftest import BuiltWarehouse
from tests.support import query


def test_dbt_creates_the_ml_tables_with_the_columns_the_recommender_writes(
    built_warehouse: BuiltWarehouse,
) -> None:
    columns = query(
        built_warehouse.duckdb_file,
        "select table_name, list(column_name order by ordinal_position) "
        "from information_schema.columns where table_schema = 'ml' group by 1 order by 1",
    )
    assert columns == [
        ("model_versions", list(_VERSION_FIELDS)),
        ("recommendations", list(RECOMMENDATION_COLUMNS)),
        ("scored_users", list(SCORED_USER_COLUMNS)),
    ]


def test_writing_to_a_warehouse_dbt_has_not_built_says_so(tmp_path: Path) -> None:
    unbuilt = tmp_path / "unbuilt.duckdb"
    duckdb.connect(str(unbuilt)).close()
    with pytest.raises(RecommenderError, match="run `dbt build`"):
        next_model_version(unbuilt)


def test_scoring_a_warehouse_built_before_ml_scored_users_existed_says_to_rebuild(
    built_warehouse: BuiltWarehouse, tmp_path: Path
) -> None:
    copy = built_warehouse.copy(tmp_path)
    with duckdb.connect(str(copy)) as connection:
        connection.execute("drop table ml.scored_users")
    with pytest.raises(RecommenderError, match=r"no ml\.scored_users .* run `dbt build`"):
        read_scored_users(copy)
