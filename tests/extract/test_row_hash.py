"""The record contract on its own, offline: the check that sets bad records aside for
quarantine (with the reason raw.quarantined_records keeps), and the row hash.

The row hash is dlt's scd2 version key: a change in any single API field must change it. If a
field were left out of the hash (or two values hashed alike), an edit to it would never become a
new version in raw. A property test over every field of every endpoint, through both ways a page
is checked (the vectorised path of a sound page, the record-by-record path of a page with a bad
record in it), which must also agree with each other.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dev_api.world import World
from extract.endpoints import ENDPOINTS, LISTEN_HISTORY, ROW_HASH, TRACKS, USERS, Endpoint, row_hash
from extract.source import _redacted

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


USER = {
    "id": 7,
    "first_name": "Ada",
    "last_name": "Byron",
    "email": "ada@example.com",
    "gender": "Female",
    "favorite_genres": "Rock",
    "created_at": "2024-01-02T03:04:05",
    "updated_at": "2024-02-03T04:05:06",
}
LISTENS = {
    "user_id": 7,
    "items": [1, None, 3],
    "created_at": "2024-01-02T03:04:05",
    "updated_at": "2024-02-03T04:05:06",
}
LONG = "x" * 70


@pytest.mark.parametrize(
    ("endpoint", "record", "reason"),
    [
        (USERS, ["not", "a", "dict"], "record is list, not an object"),
        (USERS, {"id": 7}, "missing field(s): first_name, last_name, email, gender, "
                           "favorite_genres, created_at, updated_at"),
        (USERS, {**USER, "id": None}, "field 'id' is null: None"),
        (USERS, {**USER, "id": True}, "field 'id' is not an integer: True"),
        (USERS, {**USER, "email": 0}, "field 'email' is not a string: 0"),
        (USERS, {**USER, "email": None}, "field 'email' is null: None"),
        (USERS, {**USER, "created_at": 20240102}, "field 'created_at' is not a date-time string: "
                                                  "20240102"),
        (USERS, {**USER, "updated_at": "yesterday"}, "field 'updated_at' is not an ISO-8601 "
                                                     "date-time: 'yesterday'"),
        (USERS, {**USER, "last_name": 1.5}, "field 'last_name' is not a string: 1.5"),
        (TRACKS, {**USER, "id": LONG}, "missing field(s): name, artist, songwriters, duration, "
                                       "genres, album"),
        (LISTEN_HISTORY, {**LISTENS, "items": "1,2"}, "field 'items' is not a list: '1,2'"),
        (LISTEN_HISTORY, {**LISTENS, "items": [1, "2"]},
         "field 'items' has a non-integer: [1, '2']"),
        (LISTEN_HISTORY, {**LISTENS, "user_id": None}, "field 'user_id' is null: None"),
        (LISTEN_HISTORY, {**LISTENS, "items": [LONG]}, "field 'items' has a non-integer: "
                                                       + repr([LONG])[:57] + "..."),
    ],
)  # fmt: skip
def test_a_record_that_breaks_the_contract_is_set_aside_with_its_reason(
    endpoint: Endpoint, record: Any, reason: str
) -> None:
    assert endpoint.check(record) == reason
    sound = {USERS: [USER], LISTEN_HISTORY: [LISTENS]}.get(endpoint, [])
    table, bad = endpoint.split([record, *sound])
    assert bad == [(record, reason)]
    assert table.num_rows == len(sound), "the rest of the page loads"
    # a page where every record breaks the contract the same way is set aside whole
    table, bad = endpoint.split([record, record])
    assert (table.num_rows, bad) == (0, [(record, reason)] * 2)


def test_sound_records_pass_including_the_nulls_the_contract_allows() -> None:
    assert USERS.check(USER) is None
    assert LISTEN_HISTORY.check(LISTENS) is None
    assert LISTEN_HISTORY.check({**LISTENS, "items": None}) is None
    table, bad = LISTEN_HISTORY.split([LISTENS, {**LISTENS, "user_id": 8, "items": None}])
    assert bad == []
    assert table.column("items").to_pylist() == [[1, None, 3], None]


def test_a_value_is_quoted_whole_up_to_sixty_characters_then_cut() -> None:
    sixty = ["z" * 56]  # repr: 60 characters
    assert len(repr(sixty)) == 60
    assert LISTEN_HISTORY.check({**LISTENS, "items": sixty}) == (
        f"field 'items' has a non-integer: {sixty!r}"
    )
    longer = ["z" * 57]
    assert LISTEN_HISTORY.check({**LISTENS, "items": longer}) == (
        f"field 'items' has a non-integer: {repr(longer)[:57]}..."
    )


def test_an_arrow_type_without_a_contract_check_is_a_programming_error() -> None:
    odd = Endpoint(
        "odd", "id", pa.schema([pa.field("id", pa.int64()), pa.field("x", pa.float64())])
    )
    with pytest.raises(TypeError, match="no contract check for Arrow type double"):
        odd.check({"id": 1, "x": 1.5})


def test_credentials_in_a_url_are_redacted_from_errors() -> None:
    error = ConnectionError("GET https://user:pa55@api.example.com/users failed; see //x")
    assert _redacted(error) == "GET https://***@api.example.com/users failed; see //x"


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda endpoint: endpoint.name)
def test_a_sound_page_takes_the_vectorised_path_and_matches_the_slow_one(
    endpoint: Endpoint,
) -> None:
    page = World(users=30, tracks=30, seed=3).page(endpoint.name, 1, 20)  # type: ignore[arg-type]
    fast = endpoint._vectorised(page)
    assert fast is not None, "a sound page is checked in one pass"
    assert fast.equals(endpoint._row_by_row(page))
    assert all(len(value) == 32 for value in fast.column(ROW_HASH).to_pylist()), (
        "the version key keeps its size: another would make every record look changed"
    )
