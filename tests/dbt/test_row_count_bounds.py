"""Each model's volume test uses the bounds of its grain, read from the key dbt tests on it.

`row_count_between` takes its bounds by name from the `row_count_bounds` var: a model with one
row per user or track is bounded by `entities`, one with one row per listen by `listens`.
A model with a wider bound than its grain (e.g. raw_versions, up to 400 million rows, on a
model of one row per user) would let a runaway join pass unnoticed.
"""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.dbt

# the key a model's unique test names -> the row_count_bounds entry of that grain
BOUNDS_OF_GRAIN = {
    ("user_id",): "entities",
    ("track_id",): "entities",
    ("user_id", "listen_position"): "listens",
    ("user_id", "listen_position", "track_id"): "listens",
    ("user_id", "track_id"): "listens",
    ("user_id", "genre"): "user_genres",
}
# views whose volume test lives on a table of the same rows (a test of the view would rank every
# raw version again): the view -> that table
BOUNDED_ELSEWHERE = {
    "model.moovitamix.base_moovitamix__listen_history": (
        "model.moovitamix.stg_moovitamix__listen_history"
    ),
}


def model_tests(manifest: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Model unique id -> the generic tests attached to it (name and arguments)."""
    tests: dict[str, list[dict[str, Any]]] = {}
    for node in manifest["nodes"].values():
        if node["resource_type"] == "test" and node.get("test_metadata"):
            # a source's test is attached to no model
            tests.setdefault(node["attached_node"] or "", []).append(node["test_metadata"])
    return tests


def keys(tests: list[dict[str, Any]]) -> set[tuple[str, ...]]:
    """The keys the tests declare unique: a column's `unique`, a unique combination."""
    found = set()
    for test in tests:
        if test["name"] == "unique":
            found.add((test["kwargs"]["column_name"],))
        elif test["name"] == "unique_combination_of_columns":
            found.add(tuple(test["kwargs"]["combination_of_columns"]))
    return found


def test_every_model_of_a_known_grain_is_bounded_by_it(manifest: dict[str, Any]) -> None:
    checked, wrong = [], []
    tests_of = model_tests(manifest)
    for unique_id, tests in tests_of.items():
        grains = [BOUNDS_OF_GRAIN[key] for key in keys(tests) if key in BOUNDS_OF_GRAIN]
        if not unique_id.startswith("model.") or not grains:
            continue
        checked.append(unique_id)
        bounded = tests_of[BOUNDED_ELSEWHERE.get(unique_id, unique_id)]
        bounds = [t["kwargs"].get("bounds") for t in bounded if t["name"] == "row_count_between"]
        if bounds != grains:
            wrong.append(f"{unique_id}: row_count_between bounds {bounds}, grain {grains}")
    assert not wrong, "\n".join(wrong)
    assert "model.moovitamix.dim_users" in checked and "model.moovitamix.fct_listens" in checked
