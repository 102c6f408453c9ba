"""Every fault kind shows over HTTP, counts down per request, then the page answers again."""

import http.client
import json
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest

from dev_api import DevApiServer, Fault, FaultPlan, World, running_api

SMALL_WORLD = {"users": 30, "tracks": 30, "listens": 5}


@contextmanager
def api_with(*faults: Fault, rate: float = 0.1) -> Iterator[DevApiServer]:
    with running_api(faults=FaultPlan(faults, rate=rate), **SMALL_WORLD) as api:
        yield api


def expected_page(endpoint: str, page: int) -> list[dict[str, Any]]:
    return World(**SMALL_WORLD).page(endpoint, page, 10)  # type: ignore[arg-type]


def test_status_fault_fails_times_then_recovers(client_for: Any) -> None:
    with api_with(Fault("users", 2, "status", times=2, arg=503)) as api:
        client = client_for(api.url)
        answers = [client.get("/users?page=2&size=10") for _ in range(3)]
        assert [answer.status for answer in answers] == [503, 503, 200]
        assert answers[0].json() == {"detail": "Service Unavailable"}
        assert answers[2].json()["items"] == expected_page("users", 2)
        assert client.get("/users?page=1&size=10").status == 200  # other pages are untouched
        assert (
            api.request_count("users", 2),
            api.request_count("users"),
            api.request_count("tracks"),
        ) == (3, 4, 0)


def test_rate_limit_sends_retry_after(client_for: Any) -> None:
    with api_with(Fault("tracks", 1, "rate_limit", arg=2)) as api:
        client = client_for(api.url)
        limited = client.get("/tracks?size=10")
        assert (limited.status, limited.headers["retry-after"], limited.json()) == (
            429,
            "2",
            {"detail": "Too Many Requests"},
        )
        assert client.get_json("/tracks?size=10")["items"] == expected_page("tracks", 1)


def test_slow_fault_delays_a_correct_answer(client_for: Any) -> None:
    with api_with(Fault("users", 1, "slow", arg=0.3)) as api:
        client = client_for(api.url)
        start = time.perf_counter()
        page = client.get_json("/users?size=10")
        assert time.perf_counter() - start >= 0.3 and page["items"] == expected_page("users", 1)


def test_timeout_fault_outlasts_a_short_client_timeout(client_for: Any) -> None:
    with api_with(Fault("users", 1, "timeout", arg=5)) as api:
        with pytest.raises(TimeoutError):
            client_for(api.url, timeout=0.3).get("/users?size=10")
        assert client_for(api.url).get_json("/users?size=10")["items"] == expected_page("users", 1)


def test_drop_fault_closes_the_connection_without_an_answer(client_for: Any) -> None:
    with api_with(Fault("listen_history", 1, "drop")) as api:
        client = client_for(api.url)
        with pytest.raises(http.client.RemoteDisconnected):
            client.get("/listen_history?size=10")
        client.connection.close()
        assert client.get_json("/listen_history?size=10")["items"] == expected_page(
            "listen_history", 1
        )


def test_malformed_fault_truncates_the_json(client_for: Any) -> None:
    with api_with(Fault("users", 1, "malformed")) as api:
        response = client_for(api.url).get("/users?size=10")
        assert response.status == 200 and response.body.startswith(b'{"items":[{"id":')
        with pytest.raises(json.JSONDecodeError):
            response.json()


@pytest.mark.parametrize(
    ("fault", "damaged"),
    [
        (Fault("users", 1, "missing_field"), lambda record: "updated_at" not in record),
        (Fault("tracks", 1, "missing_field", arg="name"), lambda record: "name" not in record),
        (Fault("users", 1, "wrong_type"), lambda record: record["id"] == "abc"),
        (Fault("listen_history", 1, "wrong_type"), lambda record: record["items"] == "abc"),
        (Fault("listen_history", 1, "null_user_id"), lambda record: record["user_id"] is None),
        (Fault("*", 1, "null_items"), lambda record: record["items"] is None),
        (Fault("listen_history", 1, "null_item"), lambda record: None in record["items"]),
    ],
)
def test_record_faults_damage_exactly_one_record(
    fault: Fault, damaged: Any, client_for: Any
) -> None:
    endpoint = "listen_history" if fault.endpoint == "*" else fault.endpoint
    with api_with(fault) as api:
        client = client_for(api.url)
        items = client.get_json(f"/{endpoint}?size=10")["items"]
        intact = expected_page(endpoint, 1)
        assert damaged(items[0]) and items[1:] == intact[1:]
        assert client.get_json(f"/{endpoint}?size=10")["items"] == intact


def test_duplicate_id_repeats_the_previous_pages_last_record(client_for: Any) -> None:
    with api_with(Fault("users", 2, "duplicate_id"), Fault("users", 1, "duplicate_id")) as api:
        client = client_for(api.url)
        first, second = (client.get_json(f"/users?page={page}&size=10")["items"] for page in (1, 2))
        assert (
            second[0] == expected_page("users", 1)[-1]
            and second[1:] == expected_page("users", 2)[1:]
        )
        assert first[0] == first[-1]  # page 1 has no previous page: it repeats one of its own
        assert len({user["id"] for user in first + second}) == 18


@pytest.mark.parametrize(
    ("fault", "envelope_check"),
    [
        (
            Fault("users", 1, "total_change", arg=5),
            lambda page: (page["total"], page["pages"]) == (35, 4),
        ),
        (Fault("users", 1, "empty_page"), lambda page: page["items"] == [] and page["total"] == 30),
        (
            Fault("users", 1, "drop_record"),
            lambda page: (
                page["items"] == expected_page("users", 1)[:-1]
                and (page["total"], page["pages"]) == (30, 3)
            ),
        ),
        (
            Fault("users", 1, "null_pages"),
            lambda page: page["pages"] is None and page["items"] == expected_page("users", 1),
        ),
        (
            Fault("users", 1, "bad_total", arg="negative"),
            lambda page: page["total"] == -1 and page["items"] == expected_page("users", 1),
        ),
        (
            Fault("users", 1, "bad_total"),
            lambda page: page["total"] == "250" and page["items"] == expected_page("users", 1),
        ),
        (
            Fault("users", 1, "missing_items_key"),
            lambda page: list(page) == ["total", "page", "size", "pages"],
        ),
    ],
)
def test_envelope_faults(fault: Fault, envelope_check: Any, client_for: Any) -> None:
    with api_with(fault) as api:
        client = client_for(api.url)
        assert envelope_check(client.get_json("/users?size=10"))
        assert client.get_json("/users?size=10") == {
            "items": expected_page("users", 1),
            "total": 30,
            "page": 1,
            "size": 10,
            "pages": 3,
        }


def test_random_page_faults_follow_the_rate_and_times(client_for: Any) -> None:
    with api_with(Fault("*", None, "status", times=2, arg=500), rate=1.0) as api:
        client = client_for(api.url)
        statuses = [
            client.get(path).status
            for path in ("/tracks?page=3", "/users?page=2", "/users?page=2", "/tracks")
        ]
        assert statuses == [500, 500, 200, 200]
    with api_with(Fault("*", None, "status", times=-1, arg=500), rate=0.3) as api:
        client = client_for(api.url)
        failures = sum(
            client.get(f"/users?page={page % 5 + 1}").status == 500 for page in range(200)
        )
        assert 30 < failures < 90


def test_fault_counting_is_thread_safe(client_for: Any) -> None:
    with api_with(Fault("users", 1, "status", times=5, arg=503)) as api:

        def status(_: int) -> int:
            return client_for(api.url).get("/users?size=10").status

        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = Counter(pool.map(status, range(24)))
        assert statuses == {503: 5, 200: 19} and api.request_count("users", 1) == 24


def test_fault_specs_parse_like_the_cli() -> None:
    assert Fault.parse("users:3:status:503x2") == Fault("users", 3, "status", times=2, arg=503)
    assert Fault.parse("*:*:status:500") == Fault("*", None, "status", times=-1, arg=500)
    assert Fault.parse("listen_history:1:null_items") == Fault("listen_history", 1, "null_items")
    assert Fault.parse("tracks:2:slow:1.5x-1") == Fault("tracks", 2, "slow", times=-1, arg=1.5)
    assert Fault.parse("users:4:missing_field:emailx3") == Fault(
        "users", 4, "missing_field", times=3, arg="email"
    )
    for bad in (
        "users:3",
        "songs:1:drop",
        "users:0:drop",
        "users:1:explode",
        "users:1:null_items",
        "users:1:status:999",
    ):
        with pytest.raises(ValueError):
            Fault.parse(bad)
