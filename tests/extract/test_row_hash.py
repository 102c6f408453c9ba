"""The row hash is dlt's scd2 version key: a change in any single API field must change it.

If a field were left out of the hash (or two values hashed alike), an edit to it would never
become a new version in raw. A property test over every field of every endpoint, through both
ways a page is checked (the vectorised path of a sound page, the record-by-record path of a page
with a bad record in it), which must also agree with each other.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from extract.endpoints import ENDPOINTS, ROW_HASH, Endpoint, row_hash

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)


def values(endpoint: Endpoint, field: pa.Field) -> st.SearchStrategy[Any]:
    """Values the contract accepts for `field`."""
    if pa.types.is_integer(field.type):
        strategy = INT64
    elif pa.types.is_string(field.type):
        strategy = st.text(max_size=30)
    elif pa.types.is_timestamp(field.type):
        strategy = st.datetimes().map(lambda moment: moment.isoformat())
    else:  # a list of track ids, nulls allowed
        strategy = st.lists(st.none() | INT64, max_size=5)
    if field.nullable and field.name != endpoint.key:
        strategy = st.none() | strategy
    return strategy


def records(endpoint: Endpoint) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({field.name: values(endpoint, field) for field in endpoint.schema})


def page_hashes(endpoint: Endpoint, page: list[Any]) -> list[str]:
    """The hashes `Endpoint.split` gives the sound records of `page`."""
    table, _ = endpoint.split(page)
    return table.column(ROW_HASH).to_pylist()


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda endpoint: endpoint.name)
@settings(max_examples=150, deadline=None, database=None)
@given(data=st.data())
def test_changing_any_single_field_changes_the_row_hash(endpoint: Endpoint, data: Any) -> None:
    record = data.draw(records(endpoint), label="record")
    field = data.draw(st.sampled_from(list(endpoint.schema)), label="field")
    new_value = data.draw(
        values(endpoint, field).filter(lambda value: value != record[field.name]), label="value"
    )
    changed = {**record, field.name: new_value}
    not_a_record = "not a record"  # puts the page on the record-by-record path

    sound_page = page_hashes(endpoint, [record, changed])
    checked_one_by_one = page_hashes(endpoint, [record, changed, not_a_record])

    assert len(set(sound_page)) == 2, f"{endpoint.name}.{field.name} is not in the row hash"
    assert checked_one_by_one == sound_page, "both paths must give a record the same version"
    assert row_hash(record, endpoint.fields) == sound_page[0]
    # The hash is of the content, not of the order the API sends the fields in.
    assert page_hashes(endpoint, [dict(reversed(record.items()))]) == sound_page[:1]
