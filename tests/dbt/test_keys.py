"""Keys and relationships are enforced like docs: every mart declares its primary key's tests and
every id that names a dimension its `relationships` test, read from dbt's manifest.

Deleting a key or relationships test from a mart's YAML fails here, before any data is built.
A mart whose key is not in PRIMARY_KEYS fails too: a new mart states its grain.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

pytestmark = pytest.mark.dbt

PACKAGE = "moovitamix"

# Each mart's grain: one column (tested `unique` + `not_null`) or several (tested
# `unique_combination_of_columns` + `not_null` on each).
PRIMARY_KEYS: dict[str, tuple[str, ...]] = {
    "dim_users": ("user_id",),
    "dim_tracks": ("track_id",),
    "fct_listens": ("user_id", "listen_position"),
    "fct_user_tracks": ("user_id", "track_id"),
    "fct_listen_events": ("user_id", "listen_position", "track_id"),
    "user_features": ("user_id",),
    "track_features": ("track_id",),
    "user_genre_affinity": ("user_id", "genre"),
    "fct_recommendations": ("user_id", "rank"),
    "fct_track_similarities": ("track_id", "similarity_rank"),
}

# Columns that name a dimension (`<x>_id` with a mart `dim_<x>s`) but deliberately have no
# relationships test, and why.
NO_RELATIONSHIP: dict[tuple[str, str], str] = {
    ("fct_listen_events", "user_id"): (
        "append-only history: keeps the listens of users deleted upstream, who leave dim_users"
    ),
    ("fct_listen_events", "track_id"): (
        "append-only history: keeps listens of tracks /tracks no longer (or never) lists"
    ),
}


def marts(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Model name -> node, for every model under models/marts (features and ml included)."""
    return {
        node["name"]: node
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model"
        and node["package_name"] == PACKAGE
        and node["fqn"][1] == "marts"
    }


def data_tests(manifest: dict[str, Any], model_id: str) -> list[dict[str, Any]]:
    """The generic data tests attached to a model: name, column, arguments."""
    return [
        {
            "name": node["test_metadata"]["name"],
            "column": node.get("column_name"),
            "kwargs": node["test_metadata"]["kwargs"],
            "refs": set(node["depends_on"]["nodes"]),
        }
        for node in manifest["nodes"].values()
        if node["resource_type"] == "test"
        and node.get("attached_node") == model_id
        and node.get("test_metadata")
    ]


def key_problems(
    manifest: dict[str, Any],
    primary_keys: dict[str, tuple[str, ...]] = PRIMARY_KEYS,
    no_relationship: dict[tuple[str, str], str] = NO_RELATIONSHIP,
) -> list[str]:
    """What the marts' YAML lacks: key tests, relationships to dimensions, declared grains."""
    models = marts(manifest)
    dimensions = {name[len("dim_") : -1]: name for name in models if name.startswith("dim_")}
    problems = [f"{name}: no primary key in PRIMARY_KEYS" for name in models.keys() - primary_keys]
    for name, node in sorted(models.items()):
        tests = data_tests(manifest, node["unique_id"])
        on = {(test["name"], test["column"]) for test in tests}
        key = primary_keys.get(name, ())
        problems += [
            f"{name}.{column}: no not_null" for column in key if ("not_null", column) not in on
        ]
        if len(key) == 1 and ("unique", key[0]) not in on:
            problems.append(f"{name}.{key[0]}: no unique")
        if len(key) > 1 and not any(
            test["name"] == "unique_combination_of_columns"
            and tuple(test["kwargs"]["combination_of_columns"]) == key
            for test in tests
        ):
            problems.append(f"{name}: no unique_combination_of_columns on {', '.join(key)}")
        for column in node["columns"]:
            dimension = dimensions.get(column.removesuffix("_id"))
            if not column.endswith("_id") or dimension in (None, name):
                continue
            if (name, column) in no_relationship:
                continue
            if not any(
                test["name"] == "relationships"
                and test["column"] == column
                and test["kwargs"].get("field") == column
                and models[dimension]["unique_id"] in test["refs"]
                for test in tests
            ):
                problems.append(f"{name}.{column}: no relationships test to {dimension}")
    return problems


def test_every_mart_key_and_dimension_id_is_tested(manifest: dict[str, Any]) -> None:
    models = marts(manifest)
    assert set(PRIMARY_KEYS) <= models.keys(), "PRIMARY_KEYS names a mart that is gone"
    assert {model for model, _ in NO_RELATIONSHIP} <= models.keys()
    problems = key_problems(manifest)
    assert not problems, "\n".join(problems)


def without_test(manifest: dict[str, Any], model: str, name: str, column: str | None) -> dict:
    """A copy of the manifest with one test of `model` removed, as if deleted from its YAML."""
    changed = copy.deepcopy(manifest)
    model_id = marts(changed)[model]["unique_id"]
    doomed = [
        unique_id
        for unique_id, node in changed["nodes"].items()
        if node["resource_type"] == "test"
        and node.get("attached_node") == model_id
        and node.get("test_metadata", {}).get("name") == name
        and node.get("column_name") == column
    ]
    assert len(doomed) == 1, f"{model} should have exactly one {name} test on {column}"
    del changed["nodes"][doomed[0]]
    return changed


@pytest.mark.parametrize(
    ("model", "test", "column", "problem"),
    [
        (
            "fct_listens",
            "relationships",
            "user_id",
            "fct_listens.user_id: no relationships test to dim_users",
        ),
        (
            "fct_user_tracks",
            "relationships",
            "track_id",
            "fct_user_tracks.track_id: no relationships test to dim_tracks",
        ),
        ("dim_users", "unique", "user_id", "dim_users.user_id: no unique"),
        ("track_features", "not_null", "track_id", "track_features.track_id: no not_null"),
        (
            "fct_listens",
            "unique_combination_of_columns",
            None,
            "fct_listens: no unique_combination_of_columns on user_id, listen_position",
        ),
    ],
)
def test_the_checker_reports_a_deleted_key_or_relationships_test(
    manifest: dict[str, Any], model: str, test: str, column: str | None, problem: str
) -> None:
    assert key_problems(without_test(manifest, model, test, column)) == [problem]


def test_the_checker_reports_a_mart_with_no_declared_key_and_honours_the_allow_list(
    manifest: dict[str, Any],
) -> None:
    keys = {name: key for name, key in PRIMARY_KEYS.items() if name != "dim_tracks"}
    assert key_problems(manifest, primary_keys=keys) == [
        "dim_tracks: no primary key in PRIMARY_KEYS"
    ]
    reported = key_problems(manifest, no_relationship={})
    assert sorted(reported) == sorted(
        f"{model}.{column}: no relationships test to dim_{column.removesuffix('_id')}s"
        for model, column in NO_RELATIONSHIP
    )
    assert reported, "the allow-list must be needed"
