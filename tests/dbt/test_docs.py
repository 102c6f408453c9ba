"""`dbt docs generate` documents everything: every model and every real column has a description.

The catalog lists the columns as they are in the warehouse, so a column added to the SQL but
not to the YAML fails here, and so does a YAML column that no longer exists.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.dbt.support import Warehouse, run_dbt
from tests.support import REPO_ROOT

pytestmark = pytest.mark.dbt


@pytest.fixture(scope="module")
def docs(
    warehouse: Warehouse, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, Any], dict[str, Any]]:
    work_dir = tmp_path_factory.mktemp("docs")
    run = run_dbt(warehouse.copy(work_dir), work_dir, "docs", "generate")
    assert run.returncode == 0, run.output[-3000:]
    target = work_dir / "target"
    manifest = json.loads((target / "manifest.json").read_text())
    catalog = json.loads((target / "catalog.json").read_text())
    return manifest, catalog


def undocumented_columns(node: dict[str, Any], catalog_entry: dict[str, Any]) -> list[str]:
    documented = {
        name.lower(): column.get("description", "").strip()
        for name, column in node["columns"].items()
    }
    return [name for name in catalog_entry["columns"] if not documented.get(name.lower())]


def test_every_model_and_column_has_a_description(
    docs: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    manifest, catalog = docs
    models = {
        unique_id: node
        for unique_id, node in manifest["nodes"].items()
        if node["resource_type"] == "model" and node["package_name"] == "moovitamix"
    }
    model_files = {path.stem for path in (REPO_ROOT / "dbt_project" / "models").rglob("*.sql")}
    assert {node["name"] for node in models.values()} == model_files
    missing = [unique_id for unique_id in models if unique_id not in catalog["nodes"]]
    assert not missing, f"models not in the warehouse's catalog: {missing}"
    problems = [
        f"{unique_id}: no description"
        for unique_id, node in models.items()
        if not node["description"].strip()
    ]
    for unique_id, node in models.items():
        problems += [
            f"{unique_id}.{column}: no description"
            for column in undocumented_columns(node, catalog["nodes"][unique_id])
        ]
    stale = [
        f"{unique_id}.{name}: documented but not in the table"
        for unique_id, node in models.items()
        for name in node["columns"]
        if name.lower() not in {c.lower() for c in catalog["nodes"][unique_id]["columns"]}
    ]
    assert not problems + stale, "\n".join(problems + stale)


def test_every_source_table_and_column_has_a_description(
    docs: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    manifest, catalog = docs
    problems = []
    for unique_id, source in manifest["sources"].items():
        if not source["description"].strip():
            problems.append(f"{unique_id}: no description")
        if unique_id in catalog["sources"]:  # quarantined_records exists only once used
            problems += [
                f"{unique_id}.{column}: no description"
                for column in undocumented_columns(source, catalog["sources"][unique_id])
            ]
    assert not problems, "\n".join(problems)


def test_every_model_is_tested_and_every_macro_documented(
    docs: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    manifest, _ = docs
    tested = {
        parent
        for node in manifest["nodes"].values()
        if node["resource_type"] in ("test", "unit_test")
        for parent in node["depends_on"]["nodes"]
    }
    untested = [
        unique_id
        for unique_id, node in manifest["nodes"].items()
        if node["resource_type"] == "model" and unique_id not in tested
    ]
    assert not untested, f"models without a data test: {untested}"
    undocumented = [
        macro["name"]
        for macro in manifest["macros"].values()
        if macro["package_name"] == "moovitamix"
        and not macro["description"].strip()
        and not macro["name"].startswith(("default__", "duckdb__", "spark__"))
    ]
    assert not undocumented, f"macros without a description: {undocumented}"
    assert "doc.moovitamix.__overview__" in manifest["docs"]
