"""The run lock, the alert decision and the publish swap, each on its own (no night is run).

These are the decisions that protect the data when a night goes wrong; the end-to-end tests in
this folder run them inside whole nights, these pin each rule so a planted defect fails fast
(`make mutation` runs them for every mutant of core/lock.py, nightly/alerts.py, nightly/publish.py).
"""

from __future__ import annotations

import grp
import json
import logging
import os
import stat
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from core.lock import ACQUIRE_PATIENCE_SECONDS, LockHeld, exclusive, is_held
from nightly.alerts import MAX_FINDING_LINES, compose, send
from nightly.ledger import ERROR, FAILED, REFUSED, SUCCESS, WARNED, WARNING, Finding, RunRecord
from nightly.privacy import ERASURE_SCHEMA
from nightly.publish import _check_snapshot, publish
from tests.support import query

STARTED = datetime(2026, 1, 1, 2, tzinfo=UTC)


# The run lock ----------------------------------------------------------------------------------


def test_a_second_holder_is_refused_while_the_first_holds_the_lock(tmp_path: Path) -> None:
    lock_file = tmp_path / "data" / "nightly.lock"
    assert not is_held(lock_file)
    with exclusive(lock_file) as descriptor:
        assert descriptor >= 0 and is_held(lock_file)
        started = time.monotonic()
        with pytest.raises(LockHeld, match="another nightly run holds"), exclusive(lock_file):
            pass
        assert time.monotonic() - started >= ACQUIRE_PATIENCE_SECONDS
        assert is_held(lock_file), "probing must not release the holder's lock"
    assert not is_held(lock_file)
    assert stat.S_IMODE(lock_file.stat().st_mode) == 0o600
    with exclusive(lock_file):  # released: the next run takes it
        assert is_held(lock_file)


def test_a_lock_released_within_the_patience_is_taken(tmp_path: Path) -> None:
    lock_file = tmp_path / "nightly.lock"
    holder_has_it, release = threading.Event(), threading.Event()

    def hold() -> None:
        with exclusive(lock_file):
            holder_has_it.set()
            release.wait()
            time.sleep(ACQUIRE_PATIENCE_SECONDS / 5)

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    assert holder_has_it.wait(timeout=5)
    release.set()
    started = time.monotonic()
    with exclusive(lock_file):
        waited = time.monotonic() - started
        assert is_held(lock_file)
    holder.join(timeout=5)
    # polled often: taken soon after the release, well within the patience
    assert waited < ACQUIRE_PATIENCE_SECONDS


# The alert decision ----------------------------------------------------------------------------


def run(status: str, findings: list[Finding] = (), **fields: object) -> RunRecord:  # type: ignore[assignment]
    record = RunRecord(run_id="20260101T020000Z", started_at=STARTED, status=status)
    record.findings = list(findings)
    for name, value in fields.items():
        setattr(record, name, value)
    return record


def finding(level: str, number: int) -> Finding:
    return Finding("volume", level, f"raw.t{number}", f"raw.t{number}: {number} rows")


def test_only_failed_refused_and_warned_runs_alert() -> None:
    assert compose(run(SUCCESS), alert_on_warning=True) is None
    assert compose(run(WARNED, [finding(WARNING, 1)]), alert_on_warning=False) is None
    for status in (FAILED, REFUSED):
        assert compose(run(status), alert_on_warning=False) is not None
    warned = compose(run(WARNED, [finding(WARNING, 1)]), alert_on_warning=True)
    assert warned is not None and "WARNING raw.t1: 1 rows" in warned.splitlines()


def test_a_failed_run_alert_says_where_how_and_that_nothing_was_published() -> None:
    text = compose(
        run(FAILED, failing_step="extract", exit_code=1, error_message="users page 2: 503"),
        alert_on_warning=False,
    )
    assert text == (
        "MooVitamix nightly run 20260101T020000Z: FAILED at step extract (exit 1); "
        "nothing published\nusers page 2: 503"
    )
    published = compose(run(WARNED, [finding(WARNING, 1)], published_at=STARTED), True)
    assert published is not None
    assert published.splitlines()[0].endswith("; analysts' file published")


def test_exactly_the_maximum_of_findings_is_not_cut() -> None:
    findings = [finding(ERROR, n) for n in range(MAX_FINDING_LINES)]
    text = compose(run(FAILED, findings), False)
    assert text is not None and len(text.splitlines()) == 1 + MAX_FINDING_LINES
    assert "more (ops.run_findings)" not in text


def test_error_findings_replace_the_summary_and_come_first_then_are_cut() -> None:
    findings = [finding(WARNING, 0)] + [finding(ERROR, n) for n in range(1, MAX_FINDING_LINES + 3)]
    text = compose(run(FAILED, findings, error_message="summary", exit_code=2), False)
    assert text is not None
    lines = text.splitlines()
    assert "summary" not in lines
    assert lines[1:] == [
        *[f"ERROR raw.t{n}: {n} rows" for n in range(1, MAX_FINDING_LINES + 1)],
        "... and 3 more (ops.run_findings)",
    ]


def test_a_failed_run_names_free_space_and_what_to_do_and_a_warned_run_neither(
    tmp_path: Path,
) -> None:
    report = tmp_path / "runs" / "20260101T020000Z.md"
    sick = {"free_bytes": 2_345_678_901, "action": "free space on the disk of /data"}
    failed = compose(run(FAILED, **sick), False, report)
    refused = compose(run(REFUSED, **sick), False)
    warned = compose(run(WARNED, [finding(WARNING, 1)], **sick), True)

    assert failed is not None and refused is not None and warned is not None
    assert failed.splitlines()[1:] == [
        "Free space in the data folder: 2,345.7 MB",
        "What to do: free space on the disk of /data",
        f"Run report: {report.resolve()}",
    ]
    # a refused run did not fail for want of space: what to do, without the free space
    assert refused.splitlines()[1:] == ["What to do: free space on the disk of /data"]
    assert warned.splitlines()[1:] == ["WARNING raw.t1: 1 rows"]


class Webhook:
    """A Slack-style incoming webhook on loopback that records what it receives."""

    def __init__(self, status: int) -> None:
        received: list[dict] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append({"type": self.headers["Content-Type"], **json.loads(body)})
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/secret-token"


@pytest.fixture
def webhook_at() -> Iterator:
    servers = []

    def start(status: int) -> Webhook:
        hook = Webhook(status)
        threading.Thread(target=hook.server.serve_forever, daemon=True).start()
        servers.append(hook.server)
        return hook

    yield start
    for server in servers:
        server.shutdown()


def test_an_alert_is_posted_as_slack_json_and_logged(
    webhook_at, caplog: pytest.LogCaptureFixture
) -> None:
    hook = webhook_at(200)
    with caplog.at_level(logging.INFO, logger="moovitamix.nightly"):
        assert send("run failed", hook.url) is True
    assert hook.received == [{"type": "application/json", "text": "run failed"}]
    assert caplog.messages == ["ALERT run failed"]
    assert "secret-token" not in caplog.text


def test_a_webhook_that_is_down_or_unset_never_fails_the_run(
    webhook_at, caplog: pytest.LogCaptureFixture
) -> None:
    hook = webhook_at(500)
    with caplog.at_level(logging.INFO, logger="moovitamix.nightly"):
        assert send("run failed", hook.url) is False
        assert send("run failed", None) is False
    assert len(hook.received) == 1
    assert caplog.messages == [
        "ALERT run failed",
        "could not post the alert to the webhook (HTTP 500); it is in the log",
        "ALERT run failed",
        "no NIGHTLY__ALERT_WEBHOOK_URL configured: the alert is in the log only",
    ]


def test_an_unreachable_webhook_is_named_by_its_error_kind_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="moovitamix.nightly"):
        assert send("run failed", "http://user:secret-token@127.0.0.1:9/hook") is False
    assert caplog.messages[-1] == (
        "could not post the alert to the webhook (URLError); it is in the log"
    )
    assert "secret-token" not in caplog.text


# The publish swap ------------------------------------------------------------------------------


def small_warehouse(path: Path, users: int) -> None:
    with duckdb.connect(str(path)) as connection:
        connection.execute("create schema if not exists raw; create schema if not exists marts")
        connection.execute(
            "create or replace table raw.users as select range as id from range(?)", [users]
        )
        connection.execute(
            "create or replace table marts.dim_users as select range as user_id from range(?)",
            [users],
        )
        connection.execute(
            "create or replace view marts.first_users as from marts.dim_users where user_id < 3"
        )


def free_and_total_blocks(path: Path) -> tuple[int, int]:
    with duckdb.connect(str(path), read_only=True) as connection:
        return connection.execute(
            "select free_blocks, total_blocks from pragma_database_size()"
        ).fetchone()


def test_publish_keeps_the_unchanged_tables_of_the_previous_file(tmp_path: Path) -> None:
    warehouse, target = tmp_path / "warehouse.duckdb", tmp_path / "analytics.duckdb"
    erasures = pa.Table.from_pylist([], schema=ERASURE_SCHEMA)
    small_warehouse(warehouse, 5)
    with duckdb.connect(str(warehouse)) as connection:
        connection.execute("create table marts.retired as select 1 as x")
    # no previous file: nothing to keep, whatever the caller says
    first = publish(
        warehouse, target, [run(SUCCESS)], erasures, unchanged=frozenset({"marts.dim_users"})
    )
    assert first.shared == 0
    assert query(target, "select count(*) from marts.retired") == [(1,)]
    with duckdb.connect(str(warehouse)) as connection:
        connection.execute(
            "create table marts.dim_tracks as select range as track_id from range(4)"
        )
        connection.execute("insert into marts.dim_users values (100)")  # not rebuilt, says caller
        connection.execute(
            "create or replace view marts.first_users as from marts.dim_users where user_id < 4"
        )
        connection.execute("drop table marts.retired")

    publication = publish(
        warehouse, target, [run(SUCCESS)], erasures, unchanged=frozenset({"marts.dim_users"})
    )

    assert publication.shared == 1
    # a relation gone from the warehouse is gone from the file, even when the file was copied
    assert query(target, "select count(*) from duckdb_tables() where table_name = 'retired'") == [
        (0,)
    ]
    assert "1 unchanged, kept from the previous file" in publication.render()
    # dim_users came from the previous file (the caller said it did not change), the rest anew
    assert query(target, "select count(*) from marts.dim_users") == [(5,)]
    assert query(target, "select count(*) from marts.first_users") == [(4,)]
    assert query(target, "select count(*) from marts.dim_tracks") == [(4,)]
    assert query(target, "select count(*) from ops.pipeline_runs") == [(1,)]
    assert stat.S_IMODE(target.stat().st_mode) == 0o440
    [version] = query(
        target,
        "select tags['storage_version'] from duckdb_databases() where database_name = 'analytics'",
    )
    assert version == ("v1.0.0+",)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["analytics.duckdb", "warehouse.duckdb"]


def test_publish_writes_afresh_when_what_it_replaces_fills_the_file(tmp_path: Path) -> None:
    # a night that replaces most of the file writes a compact one, for the quiet nights after
    # (bulk: 24 MB, over the free blocks a file may always be left with)
    warehouse, target = tmp_path / "warehouse.duckdb", tmp_path / "analytics.duckdb"
    erasures = pa.Table.from_pylist([], schema=ERASURE_SCHEMA)
    small_warehouse(warehouse, 5)
    with duckdb.connect(str(warehouse)) as connection:
        connection.execute("create table marts.bulk as select hash(range) as h from range(3000000)")
    publish(warehouse, target, [run(SUCCESS)], erasures)
    assert free_and_total_blocks(target)[0] == 0  # compact: only what tonight replaces decides
    with duckdb.connect(str(warehouse)) as connection:
        connection.execute("create or replace table marts.bulk as select 1 as h")

    publication = publish(
        warehouse, target, [run(SUCCESS)], erasures, unchanged=frozenset({"marts.dim_users"})
    )

    assert publication.shared == 0
    assert query(target, "select count(*) from marts.bulk") == [(1,)]
    assert query(target, "select count(*) from marts.dim_users") == [(5,)]
    free, total = free_and_total_blocks(target)
    assert free <= 0.25 * total
    # and the quiet night after it shares: bulk is most of nothing now, dim_users is kept
    again = publish(
        warehouse,
        target,
        [run(SUCCESS)],
        erasures,
        unchanged=frozenset({"marts.dim_users", "marts.bulk", "marts.first_users"}),
    )
    assert again.shared == 3


def test_publish_copies_the_analyst_schemas_only_read_only_with_no_leftovers(
    tmp_path: Path,
) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    target = tmp_path / "new" / "folder" / "analytics.duckdb"
    small_warehouse(warehouse, 5)
    record = run(SUCCESS)
    erasures = pa.Table.from_pylist([], schema=ERASURE_SCHEMA)

    publication = publish(warehouse, target, [record], erasures)

    assert (publication.path, publication.tables, publication.rows) == (target, 2, 8)
    assert publication.bytes == target.stat().st_size > 0
    assert 0 < publication.seconds < 60
    assert publication.render() == (
        f"Published 2 tables (8 rows) and the run record (ops) to {target} in "
        f"{publication.seconds:.1f} s: {publication.bytes / 1e6:,.1f} MB"
    )
    assert stat.S_IMODE(target.stat().st_mode) == 0o440
    assert sorted(p.name for p in target.parent.iterdir()) == ["analytics.duckdb"]
    tables = query(
        target, "select table_schema, table_name, table_type from information_schema.tables"
    )
    assert ("marts", "dim_users", "BASE TABLE") in tables
    assert ("marts", "first_users", "BASE TABLE") in tables, "views are published as tables"
    assert not [t for t in tables if t[0] == "raw"], "raw holds personal data: never published"
    assert query(target, "select count(*) from marts.first_users") == [(3,)]
    assert query(target, "select run_id from ops.pipeline_runs") == [(record.run_id,)]

    small_warehouse(warehouse, 7)  # the next night replaces the file, for the analysts' group
    group = grp.getgrgid(os.getgid())
    publish(warehouse, target, [record], erasures, mode=0o400, group=group.gr_name)
    assert query(target, "select count(*) from marts.dim_users") == [(7,)]
    assert stat.S_IMODE(target.stat().st_mode) == 0o400
    assert (target.stat().st_uid, target.stat().st_gid) == (os.getuid(), group.gr_gid)


def test_the_new_file_is_refused_unless_1x_clients_can_open_it_with_every_row(
    tmp_path: Path,
) -> None:
    files = {version: tmp_path / f"{version}.duckdb" for version in ("v1.0.0", "v1.2.0")}
    with duckdb.connect() as connection:
        for version, path in files.items():
            connection.execute(f"attach '{path}' as f (storage_version '{version}')")
            connection.execute("create table f.t as select * from range(3)")
            connection.execute("detach f")

    _check_snapshot(files["v1.0.0"], {"t": 3})
    with pytest.raises(RuntimeError) as newer:
        _check_snapshot(files["v1.2.0"], {"t": 3})
    with pytest.raises(RuntimeError) as short:
        _check_snapshot(files["v1.0.0"], {"t": 4})
    assert str(newer.value) == (
        "the new file has storage version v1.2.0+, not v1.0.0: DuckDB 1.x clients could not open it"
    )
    assert str(short.value) == "t has 3 rows in the new file, 4 copied"


def test_a_publish_that_fails_leaves_the_old_file_and_no_leftovers(tmp_path: Path) -> None:
    warehouse, target = tmp_path / "warehouse.duckdb", tmp_path / "analytics.duckdb"
    small_warehouse(warehouse, 4)
    erasures = pa.Table.from_pylist([], schema=ERASURE_SCHEMA)
    publish(warehouse, target, [run(SUCCESS)], erasures)
    before = target.read_bytes()
    (tmp_path / ".analytics.duckdb.publishing").write_text("left by a killed publish")

    with pytest.raises(KeyError):  # no such group: fails after the snapshot, before the swap
        publish(warehouse, target, [run(SUCCESS)], erasures, group="no-such-group-here")

    assert target.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["analytics.duckdb", "warehouse.duckdb"]


def test_publish_starts_afresh_from_a_previous_file_mostly_free_blocks(tmp_path: Path) -> None:
    warehouse, target = tmp_path / "warehouse.duckdb", tmp_path / "analytics.duckdb"
    erasures = pa.Table.from_pylist([], schema=ERASURE_SCHEMA)
    small_warehouse(warehouse, 5)
    publish(warehouse, target, [run(SUCCESS)], erasures)
    target.chmod(0o640)
    with duckdb.connect(str(target)) as connection:  # a file that once held far more
        connection.execute("create table marts.bulk as select random() as x from range(3000000)")
        connection.execute("checkpoint")
        connection.execute("create table marts.tail as select range as x from range(1000)")
        connection.execute("checkpoint")  # blocks after bulk's: its own are freed, not cut off
        connection.execute("drop table marts.bulk")
        connection.execute("checkpoint")
        free, total = connection.execute(
            "select free_blocks, total_blocks from pragma_database_size()"
        ).fetchone()
    assert free > 0.25 * total

    publication = publish(
        warehouse, target, [run(SUCCESS)], erasures, unchanged=frozenset({"marts.dim_users"})
    )

    assert publication.shared == 0  # copying it would carry the free blocks on
    assert query(target, "select count(*) from marts.dim_users") == [(5,)]
    free, total = free_and_total_blocks(target)
    assert free <= 0.25 * total
