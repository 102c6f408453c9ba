"""The ml tables as dbt's pre-hook creates them match the recommender's own definition."""

from __future__ import annotations

import duckdb

from recommender.warehouse import ML_SCHEMA_DDL
from tests.recommender.conftest import BuiltWarehouse
from tests.support import query

COLUMNS = (
    "select table_name, column_name, data_type, is_nullable from information_schema.columns "
    "where table_schema = 'ml' order by table_name, ordinal_position"
)


def test_dbt_creates_the_ml_tables_the_recommender_defines(
    built_warehouse: BuiltWarehouse,
) -> None:
    with duckdb.connect(":memory:") as connection:
        connection.execute(ML_SCHEMA_DDL)
        defined = connection.execute(COLUMNS).fetchall()
    assert len(defined) == 29
    assert query(built_warehouse.duckdb_file, COLUMNS) == defined
    assert query(built_warehouse.duckdb_file, "select count(*) from ml.recommendations") == [(0,)]
