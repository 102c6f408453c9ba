"""Personal data and secrets: nothing readable that should not be, and a user can be forgotten.

Every check that says "nowhere under the data folder" scans the bytes of every file there
(DuckDB files, dlt's pickles, dbt's logs, the ledger), not only what a query returns.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from core.engine import SparkLayout
from core.paths import Paths
from dev_api.faults import FOREVER, Fault, FaultPlan
from dev_api.server import running_api
from extract import lake
from extract.endpoints import USER_PERSONAL_COLUMNS
from tests.nightly.support import api_world, job_environment, records, run_job, webhook_receiver
from tests.support import REPO_ROOT, query

PERSONAL = ", ".join(USER_PERSONAL_COLUMNS)


def files_holding(data_dir: Path, *needles: str) -> dict[str, list[str]]:
    """needle -> every file under `data_dir` whose bytes contain it."""
    found: dict[str, list[str]] = {needle: [] for needle in needles}
    for path in sorted(data_dir.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            for needle in needles:
                if needle.encode() in data:
                    found[needle].append(str(path.relative_to(data_dir)))
    return found


@contextmanager
def umask(value: int) -> Iterator[None]:
    previous = os.umask(value)
    try:
        yield
    finally:
        os.umask(previous)


def forget(data_dir: Path, user_id: int, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nightly.privacy", "forget", str(user_id), *extra],
        cwd=REPO_ROOT,
        env=job_environment(data_dir, None),
        capture_output=True,
        text=True,
        timeout=120,
    )


def analyst_tables(path: Path) -> dict[str, list[tuple]]:
    """Every marts and features table, sorted, as rows."""
    names = query(
        path,
        "select schema_name, table_name from duckdb_tables() "
        "where schema_name in ('marts', 'features') order by 1, 2",
    )
    return {
        f"{schema}.{name}": sorted(query(path, f"select * from {schema}.{name}"), key=repr)
        for schema, name in names
    }


def test_secrets_are_never_at_rest_after_a_failing_and_a_succeeding_night(data_dir: Path) -> None:
    token, password, hook = "tok-S3CR3T-77e1", "pw-S3CR3T-41c8", "hook-S3CR3T-9f2a"
    outputs = []
    with webhook_receiver() as (receiver, received):
        secrets = {
            "SOURCES__MOOVITAMIX__API_TOKEN": token,
            "NIGHTLY__ALERT_WEBHOOK_URL": f"{receiver}/services/{hook}",
        }
        failing = FaultPlan([Fault("tracks", 2, "status", times=FOREVER, arg=503)])
        with running_api(api_world(day=1), faults=failing) as api:
            url = api.url.replace("http://", f"http://analyst:{password}@")
            outputs.append(run_job(data_dir, url, **secrets))
        with running_api(api_world(day=1)) as api:
            url = api.url.replace("http://", f"http://analyst:{password}@")
            outputs.append(run_job(data_dir, url, **secrets))

    assert [completed.returncode for completed in outputs] == [1, 0], outputs[-1].stderr[-2000:]
    assert [message["path"] for message in received][:1] == [f"/services/{hook}"]  # it was used
    assert (data_dir / "dlt/moovitamix/trace.pickle").exists()
    assert files_holding(data_dir, token, password, hook) == {token: [], password: [], hook: []}
    printed = "".join(completed.stdout + completed.stderr for completed in outputs)
    assert token not in printed and password not in printed and hook not in printed


def test_everything_written_is_private_whatever_the_umask(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    data_dir.chmod(0o755)
    with umask(0o002), running_api(api_world(day=0)) as api:
        completed = run_job(data_dir, api.url)
    assert completed.returncode == 0, completed.stderr[-3000:]

    modes = {
        str(path.relative_to(data_dir)): stat.S_IMODE(path.lstat().st_mode)
        for path in [data_dir, *data_dir.rglob("*")]
    }
    assert modes.pop("analytics.duckdb") == 0o440  # owner and group may read, nobody writes
    assert modes.pop(".") == 0o700
    assert len(modes) > 10
    loose = {name: f"{mode:04o}" for name, mode in modes.items() if mode not in (0o600, 0o700)}
    assert loose == {}


def test_a_data_folder_others_can_write_to_is_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "shared-data"
    data_dir.mkdir()
    data_dir.chmod(0o777)
    with webhook_receiver() as (receiver, received):
        completed = run_job(
            data_dir, "http://127.0.0.1:9", NIGHTLY__ALERT_WEBHOOK_URL=f"{receiver}/hook"
        )
    assert completed.returncode == 78
    assert "can be written by other accounts (mode 0777)" in completed.stderr
    assert "chmod go-w" in completed.stderr
    assert list(data_dir.iterdir()) == []
    assert len(received) == 1 and "can be written by other accounts" in received[0]["text"]


def test_a_forgotten_user_is_gone_from_every_file_and_stays_gone(data_dir: Path) -> None:
    warehouse, analytics = data_dir / "moovitamix.duckdb", data_dir / "analytics.duckdb"
    [(user_id, email)] = query(
        warehouse, "select id, email from raw.users where _dlt_valid_to is null order by id limit 1"
    )
    assert files_holding(data_dir, email)[email] == ["moovitamix.duckdb"]  # the scan can see it
    marts_before = analyst_tables(warehouse)
    events_before = query(
        warehouse, "select count(*) from marts.fct_listen_events where user_id = ?", user_id
    )
    # the Spark engine's copy of raw, as a Spark night leaves it
    lake_raw = SparkLayout.of(Paths.under(data_dir)).lake_raw
    lake.export_raw(Paths.under(data_dir))
    lake.commit(Paths.under(data_dir))
    in_lake = f"select count(*) from read_parquet('{lake_raw}/*/users/*.parquet') where email = ?"
    assert duckdb.execute(in_lake, [email]).fetchall() == [(1,)]

    completed = forget(data_dir, user_id, "--requested-by", "dpo@moovitamix")

    assert completed.returncode == 0, completed.stderr[-3000:]
    assert f"user {user_id}: erased {PERSONAL} from 1 version(s)" in completed.stdout
    assert files_holding(data_dir, email)[email] == []
    assert not lake_raw.exists()
    assert query(
        warehouse,
        f"select count(*), count(coalesce({PERSONAL})) from raw.users where id = ?",
        user_id,
    ) == [(1, 0)]
    assert analyst_tables(warehouse) == marts_before  # gender is not published by default
    assert forget(data_dir, user_id).stdout.count("from 0 version(s)") == 1  # idempotent

    with running_api(api_world(day=1)) as api:
        night = run_job(data_dir, api.url)
    assert night.returncode == 0, night.stderr[-3000:]
    assert files_holding(data_dir, email)[email] == []
    assert query(
        warehouse, f"select count(coalesce({PERSONAL})) from raw.users where id = ?", user_id
    ) == [(0,)]
    assert (
        query(warehouse, "select count(*) from marts.fct_listen_events where user_id = ?", user_id)
        >= events_before
    )
    assert query(
        analytics,
        "select reason, requested_by, versions_erased, erased_columns from ops.erasure_requests "
        "where user_id = ? order by request_id limit 1",
        user_id,
    ) == [("request", "dpo@moovitamix", 1, list(USER_PERSONAL_COLUMNS))]
    assert list((data_dir / "dlt/moovitamix/load/loaded").iterdir()) == []


def first_deleting_day() -> int:
    world = api_world(day=0)
    for day in range(1, 60):
        if set(world.keys("users", day)) - set(world.keys("users", day + 1)):
            return day
    raise AssertionError("the tests' world deletes no user in 60 days")


def test_a_deleted_user_is_erased_after_the_retention_period(data_dir: Path) -> None:
    day = first_deleting_day()
    world = api_world(day=0)
    [deleted, *_] = sorted(set(world.keys("users", day)) - set(world.keys("users", day + 1)))
    with running_api(api_world(day=day)) as api:
        assert run_job(data_dir, api.url, NIGHTLY__MIN_HISTORY_RUNS="100").returncode == 0
    warehouse = data_dir / "moovitamix.duckdb"
    [(email,)] = query(
        warehouse, "select email from raw.users where id = ? and _dlt_valid_to is null", deleted
    )
    with running_api(api_world(day=day + 1)) as api:
        kept = run_job(data_dir, api.url, NIGHTLY__MIN_HISTORY_RUNS="100")
    assert kept.returncode == 0, kept.stderr[-3000:]
    assert files_holding(data_dir, email)[email] == ["moovitamix.duckdb"]  # within retention

    shutil.copytree(data_dir, data_dir.with_name("before-retention"))
    with running_api(api_world(day=day + 1)) as api:
        erased = run_job(
            data_dir, api.url, NIGHTLY__MIN_HISTORY_RUNS="100", PRIVACY__RETENTION_DAYS="0"
        )
    assert erased.returncode == 0, erased.stderr[-3000:]
    assert files_holding(data_dir, email)[email] == []
    assert (
        query(
            warehouse,
            f"select count(*), count(coalesce({PERSONAL})) from raw.users where id = ?",
            deleted,
        )[0][1]
        == 0
    )
    privacy = [f for f in records(data_dir)[-1].findings if f.check == "privacy"]
    assert privacy and "deleted upstream over 0 days ago" in privacy[0].message
    assert query(
        data_dir / "analytics.duckdb",
        "select reason from ops.erasure_requests where user_id = ?",
        deleted,
    ) == [("retention",)]
