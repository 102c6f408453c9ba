"""The dev API honours the MooVitamix contract (dev_api/contract/), checked over real HTTP."""

import re
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from dev_api.world import ENDPOINTS

PAGE_SCHEMAS = {
    "users": "PageCustomized_UsersOut_",
    "tracks": "PageCustomized_TracksOut_",
    "listen_history": "PageCustomized_ListenHistoryOut_",
}
PAGE_SAMPLES = {
    "users": "users_page1_size3.json",
    "tracks": "tracks_page1_size3.json",
    "listen_history": "listen_history_page1_size3.json",
}
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}")
GENDERS = {
    "Male",
    "Female",
    "Non-binary",
    "Genderqueer",
    "Genderfluid",
    "Agender",
    "Bigender",
    "Gender questioning",
    "Gender nonconforming",
}
GENRES = {
    "Rock", "Pop", "Hip Hop", "Jazz", "Electronic", "Classical", "Country", "Blues", "R&B",
    "Reggae", "Folk", "Metal", "Punk", "Funk", "Indie", "Alternative", "Techno",
}  # fmt: skip


def validator(openapi: dict[str, Any], schema_name: str) -> Draft202012Validator:
    """Validator for a component schema, its #/components refs resolved against the document."""
    return Draft202012Validator(
        {"$ref": f"#/components/schemas/{schema_name}", "components": openapi["components"]}
    )


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_every_page_validates_against_the_openapi_schema(
    endpoint: str, client: Any, openapi: dict[str, Any]
) -> None:
    page_validator = validator(openapi, PAGE_SCHEMAS[endpoint])
    pages = [client.get_json(f"/{endpoint}?page={page}") for page in range(1, 12)]
    for page in pages:
        page_validator.validate(page)
    assert [len(page["items"]) for page in pages] == [100] * 10 + [0]
    assert {(page["total"], page["size"], page["pages"]) for page in pages} == {(1000, 100, 10)}


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_envelope_and_records_have_the_samples_keys_and_types(
    endpoint: str, client: Any, sample: Any
) -> None:
    expected = sample(PAGE_SAMPLES[endpoint])
    page = client.get_json(f"/{endpoint}?page=1&size=3")
    assert list(page) == list(expected)
    assert {key: page[key] for key in ("total", "page", "size", "pages")} == {
        "total": 1000,
        "page": 1,
        "size": 3,
        "pages": 334,
    }
    expected_types = {key: type(value) for key, value in expected["items"][0].items()}
    for record in page["items"]:
        assert list(record) == list(expected_types)
        assert {key: type(value) for key, value in record.items()} == expected_types
        assert TIMESTAMP.fullmatch(record["created_at"]) and TIMESTAMP.fullmatch(
            record["updated_at"]
        )


def test_field_values_follow_the_contract(client: Any) -> None:
    users, tracks, histories = (client.read_all(endpoint) for endpoint in ENDPOINTS)
    user_ids, track_ids = [user["id"] for user in users], [track["id"] for track in tracks]
    assert (
        len(set(user_ids)) == len(user_ids) == 1000
        and len(set(track_ids)) == len(track_ids) == 1000
    )
    assert all(1 <= id_ <= 100_000 for id_ in user_ids + track_ids)
    assert {user["gender"] for user in users} <= GENDERS
    assert {user["favorite_genres"] for user in users} == GENRES
    assert all(re.fullmatch(r"\d\d:[0-5]\d", track["duration"]) for track in tracks)
    assert [history["user_id"] for history in histories] == user_ids  # one row per user, same order
    assert {track_id for history in histories for track_id in history["items"]} <= set(track_ids)


def test_422_bodies_equal_the_samples(client: Any, sample: Any) -> None:
    page_zero, size_too_large = client.get("/users?page=0"), client.get("/tracks?size=101")
    assert (page_zero.status, size_too_large.status) == (422, 422)
    assert page_zero.json() == sample("error_422_page_zero.json")
    assert size_too_large.json() == sample("error_422_size_too_large.json")
    assert page_zero.headers["content-type"] == "application/json"


def test_422_lists_every_invalid_parameter(client: Any, openapi: dict[str, Any]) -> None:
    response = client.get("/listen_history?page=abc&size=0")
    assert response.status == 422
    validator(openapi, "HTTPValidationError").validate(response.json())
    assert response.json() == {
        "detail": [
            {
                "type": "int_parsing",
                "loc": ["query", "page"],
                "msg": "Input should be a valid integer, unable to parse string as an integer",
                "input": "abc",
            },
            {
                "type": "greater_than_equal",
                "loc": ["query", "size"],
                "msg": "Input should be greater than or equal to 1",
                "input": "0",
                "ctx": {"ge": 1},
            },
        ]
    }


def test_page_past_the_end_equals_the_sample(client: Any, sample: Any) -> None:
    response = client.get("/users?page=400&size=3")
    assert response.status == 200
    assert response.json() == sample("users_page_past_end.json")


def test_defaults_are_page_1_of_100(client: Any) -> None:
    page = client.get_json("/tracks")
    assert (page["page"], page["size"], page["pages"], len(page["items"])) == (1, 100, 10, 100)
    assert page["items"] == client.get_json("/tracks?page=1&size=100")["items"]


def test_root_redirects_to_docs(client: Any) -> None:
    response = client.get("/")
    assert (response.status, response.headers["location"], response.body) == (307, "/docs", b"")
    assert client.get("/docs").status == 200


def test_openapi_json_is_the_contract_document(client: Any, contract: Path) -> None:
    response = client.get("/openapi.json")
    assert response.status == 200 and response.headers["content-type"] == "application/json"
    assert response.body == (contract / "openapi.json").read_bytes()


def test_unknown_path_is_404(client: Any) -> None:
    response = client.get("/songs?page=1")
    assert (response.status, response.json()) == (404, {"detail": "Not Found"})


def test_connection_is_kept_alive(client: Any) -> None:
    client.get_json("/users?size=1")
    socket_after_first = client.connection.sock
    second = client.get("/users?page=2&size=1")
    assert socket_after_first is not None and client.connection.sock is socket_after_first
    assert second.status == 200 and second.headers["content-type"] == "application/json"
    assert int(second.headers["content-length"]) == len(second.body)
