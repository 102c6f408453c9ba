"""Faults injected by the dev API: retried ones end in a complete load, the rest fail loudly and
leave the raw tables exactly as they were; contract-breaking records are quarantined and counted."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dlt
import pytest
from dlt.common.configuration import resolve_configuration
from dlt.common.configuration.specs import RuntimeConfiguration

from dev_api.faults import FOREVER, Fault, FaultPlan
from dev_api.server import running_api
from dev_api.world import World
from extract import source
from extract.pipeline import run_extraction
from extract.source import ExtractionError, moovitamix_source
from tests.support import query

WORLD = {"users": 250, "tracks": 120, "listens": 6, "seed": 11}
RAW_TABLES = ("users", "tracks", "listen_history", "_dlt_loads")


def raw_snapshot(path: Path) -> dict[str, list[tuple]]:
    return {table: query(path, f"select * from raw.{table} order by all") for table in RAW_TABLES}


def current_counts(path: Path) -> tuple[int, int, int]:
    return tuple(
        query(path, f"select count(*) from raw.{table} where _dlt_valid_to is null")[0][0]
        for table in ("users", "tracks", "listen_history")
    )


RECOVERABLE = [
    Fault("users", 2, "status", times=2, arg=503),
    Fault("tracks", 1, "status", times=1, arg=500),
    Fault("listen_history", 3, "rate_limit", times=2, arg=1),
    Fault("users", 3, "drop", times=1),
    Fault("tracks", 2, "timeout", times=1, arg=3),
    Fault("listen_history", 2, "slow", times=1, arg=0.3),
]


@pytest.mark.parametrize("fault", RECOVERABLE, ids=lambda f: f"{f.endpoint}-{f.kind}")
def test_transient_faults_are_retried_into_a_complete_load(
    fault: Fault, pipeline: dlt.Pipeline, duckdb_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # dlt caps Retry-After at the largest backoff delay, which the fast test settings shrink.
    monkeypatch.setenv("RUNTIME__REQUEST_MAX_RETRY_DELAY", "5")
    with running_api(**WORLD, faults=FaultPlan([fault])) as api:
        started = time.monotonic()
        summary = run_extraction(pipeline, api.url)
        elapsed = time.monotonic() - started
        attempts = api.request_count(fault.endpoint, fault.page)

    expected_attempts = 1 if fault.kind == "slow" else fault.times + 1
    assert attempts == expected_attempts
    assert current_counts(duckdb_path) == (250, 120, 250)
    assert [t.read for t in summary.tables] == [250, 120, 250]
    report = {t.endpoint: t for t in summary.tables}[fault.endpoint]
    assert report.quarantined == 0
    # every failed attempt that dlt retried is counted, 429s apart (ops.run_volumes keeps them)
    assert (report.error_responses, report.rate_limited) == (
        attempts - 1,
        fault.times if fault.kind == "rate_limit" else 0,
    )
    assert sum(t.error_responses for t in summary.tables) == attempts - 1
    if fault.kind == "rate_limit":
        assert elapsed >= fault.times, "each Retry-After: 1 header must be waited out"


FATAL = [
    (
        Fault("tracks", 2, "status", times=FOREVER, arg=500),
        r"tracks page 2: request failed after retries: 500 Server Error",
    ),
    (Fault("users", 2, "malformed"), r"users page 2: response is not valid JSON"),
    (
        Fault("listen_history", 2, "empty_page"),
        r"listen_history page 2/3: a page before the last one is empty",
    ),
    (Fault("listen_history", 3, "empty_page"), r"listen_history page 3/3: the last page is empty"),
    (Fault("users", 1, "missing_items_key"), r"users page 1: response has no 'items' list"),
    (
        Fault("tracks", 2, "bad_total", arg="null"),
        r"tracks page 2: response has no valid 'total' \(None\)",
    ),
    (
        Fault("users", 1, "bad_total", arg="negative"),
        r"users page 1: response has no valid 'total' \(-1\)",
    ),
    (
        Fault("users", 1, "bad_total", arg="text"),
        r"users page 1: response has no valid 'total' \('250'\)",
    ),
    (Fault("users", 2, "total_change", times=FOREVER), r"users page 2/3: total/pages changed"),
    (Fault("tracks", 2, "duplicate_id", times=FOREVER), r"tracks page 2/2: a id already read"),
]


@pytest.mark.parametrize(("fault", "message"), FATAL, ids=lambda f: getattr(f, "kind", ""))
def test_unrecoverable_faults_fail_with_endpoint_and_page_and_change_nothing(
    fault: Fault, message: str, pipeline: dlt.Pipeline, duckdb_path: Path
) -> None:
    with running_api(**WORLD) as api:
        run_extraction(pipeline, api.url)
        before = raw_snapshot(duckdb_path)
        api.set_day(1)
        api.faults = FaultPlan([fault])
        with pytest.raises(ExtractionError, match=message):
            run_extraction(pipeline, api.url)

    assert raw_snapshot(duckdb_path) == before
    assert not pipeline.has_pending_data


def test_a_read_one_record_short_is_refused_by_the_row_count_guard(
    pipeline: dlt.Pipeline, duckdb_path: Path
) -> None:
    # No page is empty and total never moves: only the count of records read can see it.
    with running_api(**WORLD) as api:
        run_extraction(pipeline, api.url)
        before = raw_snapshot(duckdb_path)
        api.set_day(1)
        total = api.world.total("users")
        api.faults = FaultPlan([Fault("users", 2, "drop_record", times=FOREVER)])
        with pytest.raises(ExtractionError) as failure:
            run_extraction(pipeline, api.url)

    assert total > 200
    assert str(failure.value).startswith(
        f"users: the API announced {total} records but {total - 1} were read over 3 pages"
    )
    assert raw_snapshot(duckdb_path) == before
    assert not pipeline.has_pending_data


@pytest.mark.parametrize("kind", ["total_change", "duplicate_id"])
def test_an_answer_that_moved_once_is_read_again_and_loaded(
    kind: str, pipeline: dlt.Pipeline, duckdb_path: Path
) -> None:
    with running_api(**WORLD, faults=FaultPlan([Fault("users", 2, kind)])) as api:
        run_extraction(pipeline, api.url)
        first_page_reads = api.request_count("users", 1)

    assert first_page_reads == 2
    assert current_counts(duckdb_path) == (250, 120, 250)


def test_an_endpoint_larger_than_a_batch_loads_every_record_once(
    pipeline: dlt.Pipeline, duckdb_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(source, "BATCH_ROWS", 120)  # users: batches of 200, then the last 50
    with running_api(**WORLD) as api:
        summary = run_extraction(pipeline, api.url)
        users = set(api.world.keys("users"))

    assert [t.read for t in summary.tables] == [250, 120, 250]
    rows = query(duckdb_path, "select id from raw.users")
    assert len(rows) == len(users) == 250
    assert {row[0] for row in rows} == users


def test_contract_breaking_records_are_quarantined_counted_and_the_rest_loaded(
    pipeline: dlt.Pipeline, duckdb_path: Path
) -> None:
    faults = FaultPlan(
        [
            Fault("users", 2, "missing_field", arg="email"),
            Fault("tracks", 1, "wrong_type", arg="id"),
            Fault("listen_history", 1, "null_user_id"),
            Fault("listen_history", 2, "null_items"),
            Fault("listen_history", 3, "null_item"),
        ]
    )
    with running_api(**WORLD, faults=faults) as api:
        summary = run_extraction(pipeline, api.url)

    assert {t.endpoint: t.quarantined for t in summary.tables} == {
        "users": 1,
        "tracks": 1,
        "listen_history": 1,
    }
    assert current_counts(duckdb_path) == (249, 119, 249)
    reasons = query(
        duckdb_path, "select endpoint, page, reason from raw.quarantined_records order by 1"
    )
    [(kept,)] = query(
        duckdb_path, "select record from raw.quarantined_records where endpoint = 'users'"
    )
    assert "email" not in json.loads(kept) and json.loads(kept)["id"] in api.world.keys("users")
    assert reasons == [
        ("listen_history", 1, "field 'user_id' is null: None"),
        ("tracks", 1, "field 'id' is not an integer: " + reasons[1][2].split(": ", 1)[1]),
        ("users", 2, "missing field(s): email"),
    ]
    assert "quarantined_records" in summary.render()
    columns = query(
        duckdb_path,
        "select column_name from information_schema.columns "
        "where table_schema = 'raw' and table_name = 'quarantined_records'",
    )
    assert {"endpoint", "page", "reason", "record"} <= {name for (name,) in columns}
    # Null lists and null ids inside a list are valid by the contract: loaded as sent.
    [(null_lists,)] = query(
        duckdb_path, "select count(*) from raw.listen_history where items is null"
    )
    [(lists_with_null,)] = query(
        duckdb_path,
        "select count(*) from raw.listen_history "
        "where list_count(items::bigint[]) < len(items::bigint[])",
    )
    assert (null_lists, lists_with_null) == (1, 1)


def test_a_run_after_a_crash_loads_the_verified_package_before_tonight(
    pipeline: dlt.Pipeline, duckdb_path: Path
) -> None:
    with running_api(**WORLD) as api:
        # Night 0 died after its package was verified and normalised, before the load.
        pipeline.extract(moovitamix_source(api_url=api.url), loader_file_format="parquet")
        pipeline.normalize()
        day0_users = set(api.world.keys("users"))
        api.set_day(1)
        summary = run_extraction(pipeline, api.url)
        day1_users = set(api.world.keys("users"))

    assert summary.recovered_packages == 1
    assert query(duckdb_path, "select count(*) from raw._dlt_loads") == [(2,)]
    assert {
        r[0] for r in query(duckdb_path, "select id from raw.users where _dlt_valid_to is null")
    } == day1_users
    [(loaded_on_night_0,)] = query(
        duckdb_path,
        "select count(*) from raw.users "
        "where _dlt_load_id = (select min(load_id) from raw._dlt_loads)",
    )
    assert loaded_on_night_0 == len(day0_users)


def test_an_unverified_package_of_a_crashed_extract_is_discarded(
    pipeline: dlt.Pipeline, duckdb_path: Path
) -> None:
    with running_api(**WORLD) as api:
        # The process died during extraction: the package on disk may be a partial read.
        pipeline.extract(moovitamix_source(api_url=api.url), loader_file_format="parquet")
        api.set_day(1)
        summary = run_extraction(pipeline, api.url)
        day1_users = set(api.world.keys("users"))

    assert summary.recovered_packages == 0
    assert query(duckdb_path, "select count(*) from raw._dlt_loads") == [(1,)]
    assert {r[0] for r in query(duckdb_path, "select id from raw.users")} == day1_users


def test_an_endpoint_announcing_no_records_is_refused(pipeline: dlt.Pipeline) -> None:
    with (
        running_api(users=0, tracks=50, listens=2, seed=5) as api,
        pytest.raises(ExtractionError, match="users: the API announced 0 records"),
    ):
        run_extraction(pipeline, api.url)

    assert not pipeline.has_pending_data


def test_the_api_token_is_sent_as_a_bearer_header_and_json_is_asked_for() -> None:
    seen: list[dict[str, str]] = []

    class Recorder(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(dict(self.headers))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/users"
        runtime = resolve_configuration(RuntimeConfiguration())
        for token in ("s3cret", None):
            source._client(runtime, token, source.EndpointReport("users")).get(url)
    finally:
        server.shutdown()

    assert [(h.get("Authorization"), h.get("Accept")) for h in seen] == [
        ("Bearer s3cret", "application/json"),
        (None, "application/json"),
    ]


def test_a_null_pages_count_is_computed_from_total(
    pipeline: dlt.Pipeline, duckdb_path: Path
) -> None:
    endpoints = ("users", "tracks", "listen_history")
    faults = FaultPlan([Fault(endpoint, 1, "null_pages", times=FOREVER) for endpoint in endpoints])
    with running_api(**WORLD, faults=faults) as api:
        summary = run_extraction(pipeline, api.url)
        reads = {(e, page): api.request_count(e, page) for e in endpoints for page in (3, 4)}

    assert [t.read for t in summary.tables] == [250, 120, 250]
    assert current_counts(duckdb_path) == (250, 120, 250)
    # ceil(250 / 100) = 3 pages and ceil(120 / 100) = 2: each read, and none past the end
    assert reads == {
        ("users", 3): 1, ("users", 4): 0, ("tracks", 3): 0, ("tracks", 4): 0,
        ("listen_history", 3): 1, ("listen_history", 4): 0,
    }  # fmt: skip


def test_a_smaller_page_size_is_asked_for_on_every_page_and_progress_logged_per_tenth(
    pipeline: dlt.Pipeline,
    duckdb_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # 12 is not the API's default size (100): a page asked without it would come back larger
    monkeypatch.setenv("SOURCES__MOOVITAMIX__PAGE_SIZE", "12")
    caplog.set_level(logging.INFO, logger=source.log.name)
    endpoints = ("users", "tracks", "listen_history")
    with running_api(**WORLD) as api:
        summary = run_extraction(pipeline, api.url)
        requests = {e: [api.request_count(e, page) for page in range(1, 24)] for e in endpoints}

    assert [t.read for t in summary.tables] == [250, 120, 250]
    assert current_counts(duckdb_path) == (250, 120, 250)
    # 250 records are 21 pages of 12 and 120 are 10: each asked once, none past the end
    assert requests == {
        "users": [1] * 21 + [0] * 2,
        "tracks": [1] * 10 + [0] * 13,
        "listen_history": [1] * 21 + [0] * 2,
    }
    logged: dict[str, list[int]] = {}
    for record in caplog.records:
        if progress := re.match(r"(\w+): page (\d+)/(\d+)", record.getMessage()):
            logged.setdefault(progress[1], []).append(int(progress[2]))
    # a progress line per tenth of the pages, in whole pages: every 2nd of 21, each one of 10
    assert logged == {
        "users": list(range(2, 22, 2)),
        "tracks": list(range(1, 11)),
        "listen_history": list(range(2, 22, 2)),
    }


def test_dlt_s_configured_attempts_and_timeout_apply(pipeline: dlt.Pipeline) -> None:
    # the fixture configures 4 attempts (dlt's default is 5) and a 1 s timeout (default 60 s)
    faults = FaultPlan(
        [
            Fault("users", 1, "slow", times=1, arg=1.5),
            Fault("tracks", 2, "status", times=FOREVER, arg=503),
        ]
    )
    with running_api(**WORLD, faults=faults) as api:
        with pytest.raises(ExtractionError, match="tracks page 2: request failed after retries"):
            run_extraction(pipeline, api.url)
        attempts = (api.request_count("users", 1), api.request_count("tracks", 2))

    assert attempts == (2, 4)  # the slow answer timed out once; the 503 was tried 4 times


def test_a_refused_request_is_counted_once_and_not_retried(pipeline: dlt.Pipeline) -> None:
    reports: dict[str, source.EndpointReport] = {}
    faults = FaultPlan([Fault("users", 2, "status", times=FOREVER, arg=400)])
    with running_api(**WORLD, faults=faults) as api:
        with pytest.raises(Exception, match="users page 2: request failed after retries: 400"):
            pipeline.extract(moovitamix_source(api.url, None, reports))
        attempts = api.request_count("users", 2)

    assert attempts == 1
    assert (reports["users"].error_responses, reports["users"].rate_limited) == (1, 0)


def test_an_endpoint_with_no_page_read_is_refused_by_name() -> None:
    with pytest.raises(ExtractionError) as refused:
        source.EndpointReport("tracks").check_complete()

    assert str(refused.value) == "tracks: no page was read"


class ExtraFields(World):
    """Serves fields the contract does not name: one on page 1 of /users, another on page 3."""

    def page(self, endpoint, page, size, day=None):  # type: ignore[no-untyped-def]
        records = super().page(endpoint, page, size, day)
        extra = {1: "nickname", 3: "locale"}.get(page) if endpoint == "users" else None
        if extra:
            records[0] = {**records[0], extra: "x"}
        return records


def test_fields_outside_the_contract_are_ignored_and_every_one_listed(
    pipeline: dlt.Pipeline, duckdb_path: Path
) -> None:
    with running_api(ExtraFields(**WORLD)) as api:
        summary = run_extraction(pipeline, api.url)

    assert summary.unknown_fields == {"users": frozenset({"nickname", "locale"})}
    assert current_counts(duckdb_path) == (250, 120, 250)
