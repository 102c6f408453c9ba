"""`python -m extract` as cron and a newcomer run it: no configuration, then a configured API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dev_api.faults import FOREVER, Fault, FaultPlan
from dev_api.server import running_api
from extract.endpoints import ENDPOINTS, LISTEN_HISTORY, USERS
from tests.support import CONTRACT_DIR, REPO_ROOT, query


def run_cli(data_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MOOVITAMIX_")}
    environment |= {"MOOVITAMIX_DATA_DIR": str(data_dir), **env}
    return subprocess.run(
        [sys.executable, "-m", "extract"],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_unconfigured_runs_serve_the_dev_api_one_day_further_each_time(tmp_path: Path) -> None:
    first = run_cli(tmp_path)
    second = run_cli(tmp_path)

    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    database = tmp_path / "moovitamix.duckdb"
    [(loaded_users, loaded_tracks, loaded_lists)] = query(
        database,
        """select
            (select count(*) from raw.users where _dlt_load_id = min_load),
            (select count(*) from raw.tracks where _dlt_load_id = min_load),
            (select count(*) from raw.listen_history where _dlt_load_id = min_load)
        from (select min(load_id) as min_load from raw._dlt_loads)""",
    )
    assert (loaded_users, loaded_tracks, loaded_lists) == (1000, 1000, 1000)
    assert "users               1,000  1,000  1,000" in first.stdout
    # The second night writes day 1's changes only: far fewer rows than a full copy.
    [(second_night_rows,)] = query(
        database,
        """select count(*) from (
            select _dlt_load_id from raw.users union all select _dlt_load_id from raw.tracks
            union all select _dlt_load_id from raw.listen_history)
        where _dlt_load_id = (select max(load_id) from raw._dlt_loads)""",
    )
    assert 0 < second_night_rows < 1000
    assert (tmp_path / "dev_api_day").read_text().strip() == "2"


def test_a_configured_api_is_used_and_a_failure_exits_non_zero_without_the_token(
    tmp_path: Path,
) -> None:
    token = "s3cr3t-token-never-logged"
    plan = FaultPlan([Fault("tracks", 2, "status", times=FOREVER, arg=503)])
    with running_api(users=150, tracks=150, listens=4, seed=3, faults=plan) as api:
        failed = run_cli(
            tmp_path,
            MOOVITAMIX_API_URL=api.url,
            SOURCES__MOOVITAMIX__API_TOKEN=token,
            RUNTIME__REQUEST_MAX_ATTEMPTS="2",
            RUNTIME__REQUEST_BACKOFF_FACTOR="0.01",
        )
        attempts = api.request_count("tracks", 2)

    assert failed.returncode == 1
    assert "tracks page 2" in failed.stderr
    assert "raw tables unchanged" in failed.stderr
    assert token not in failed.stdout + failed.stderr
    assert attempts == 2
    assert not (tmp_path / "dev_api_day").exists()


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_the_contract_samples_pass_the_record_check(endpoint) -> None:
    sample = json.loads(
        (CONTRACT_DIR / "samples" / f"{endpoint.name}_page1_size3.json").read_text()
    )
    assert [endpoint.check(record) for record in sample["items"]] == [None, None, None]
    table, bad = endpoint.split(sample["items"])
    assert (table.num_rows, bad) == (3, [])


def test_the_record_check_names_what_is_wrong() -> None:
    user = json.loads((CONTRACT_DIR / "samples/users_page1_size3.json").read_text())["items"][0]
    assert USERS.check({**user, "id": None}) == "field 'id' is null: None"
    assert USERS.check({**user, "updated_at": "yesterday"}) == (
        "field 'updated_at' is not an ISO-8601 date-time: 'yesterday'"
    )
    assert (
        USERS.check({k: v for k, v in user.items() if k != "gender"}) == "missing field(s): gender"
    )
    assert LISTEN_HISTORY.check(
        {
            "user_id": 1,
            "items": [1, "2"],
            "created_at": user["created_at"],
            "updated_at": user["updated_at"],
        }
    ) == ("field 'items' has a non-integer: [1, '2']")
    assert (
        LISTEN_HISTORY.check(
            {
                "user_id": 1,
                "items": None,
                "created_at": user["created_at"],
                "updated_at": user["updated_at"],
            }
        )
        is None
    )


def test_a_bad_record_anywhere_on_a_page_is_caught_and_hashes_do_not_depend_on_the_path() -> None:
    sample = json.loads((CONTRACT_DIR / "samples/listen_history_page1_size3.json").read_text())
    sound = sample["items"]
    missing_items = {k: v for k, v in sound[1].items() if k != "items"}
    table, bad = LISTEN_HISTORY.split([sound[0], missing_items, sound[2]])
    assert table.column("user_id").to_pylist() == [sound[0]["user_id"], sound[2]["user_id"]]
    assert bad == [(missing_items, "missing field(s): items")]

    # A field outside the contract sends the page down the record-by-record path; the record's
    # version hash must be the one the one-pass path gives, or scd2 would see a change.
    with_extra = {**sound[1], "mood": "happy"}
    slow, _ = LISTEN_HISTORY.split([sound[0], with_extra, sound[2]])
    fast, _ = LISTEN_HISTORY.split(sound)
    assert slow.column("_row_hash").to_pylist() == fast.column("_row_hash").to_pylist()
