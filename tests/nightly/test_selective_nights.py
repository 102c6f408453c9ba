"""Nights that build only what their new data reaches (nightly/changes.py) leave the same marts
and features as a full rebuild, and a night that builds nothing still records, checks and
publishes."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import duckdb

from core.dbt import run_dbt
from core.paths import Paths
from core.warehouse import ANALYST_SCHEMAS
from dev_api.faults import FOREVER, Fault, FaultPlan
from dev_api.server import running_api
from nightly.changes import Manifest
from nightly.ledger import RunRecord
from nightly.measure import analyst_relations
from tests.nightly.support import api_world, records, run_job

COMPARED_SCHEMAS = ("marts", "features")
QUARANTINE_TEST = "stg_moovitamix__quarantined_records_in_latest_load"


def night(data_dir: Path, day: int, **env: str) -> tuple[RunRecord, int]:
    """Run the job on `day` of the API: its record, and how many tables publish kept from the
    previous analysts' file."""
    with running_api(api_world(day=day)) as api:
        completed = run_job(data_dir, api.url, **env)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    shared = re.findall(r"; (\d+) unchanged, kept from the previous file", completed.stdout)
    return records(data_dir)[-1], int(shared[0]) if shared else 0


def statuses(record: RunRecord) -> dict[str, str]:
    return {node.name: node.status for node in record.nodes if node.resource_type == "model"}


def relations(path: Path, schemas: tuple[str, ...]) -> list[str]:
    with duckdb.connect(str(path), read_only=True) as connection:
        return [
            f"{schema}.{name}"
            for schema, name in analyst_relations(connection)
            if schema in schemas
        ]


def differences(left: Path, right: Path, relation: str) -> tuple[int, int]:
    """Rows of `relation` in `left` and not in `right`, and the other way (EXCEPT ALL)."""
    with duckdb.connect(":memory:") as connection:
        connection.execute(f"attach '{left}' as l (read_only)")
        connection.execute(f"attach '{right}' as r (read_only)")
        return tuple(
            connection.execute(
                f"select count(*) from (from {a}.{relation} except all from {b}.{relation})"
            ).fetchone()[0]
            for a, b in (("l", "r"), ("r", "l"))
        )


def assert_same_tables(left: Path, right: Path, schemas: tuple[str, ...]) -> None:
    names = relations(left, schemas)
    assert names == relations(right, schemas)
    assert names, f"no table in {schemas} of {left}"
    different = {name: diff for name in names if (diff := differences(left, right, name)) != (0, 0)}
    assert different == {}, f"{left} and {right} differ (rows only left, only right): {different}"


def assert_full_rebuild_agrees(data_dir: Path, copy_dir: Path) -> None:
    """A full rebuild of a copy of the warehouse gives every mart and feature the same rows."""
    paths, copy = Paths.under(data_dir), Paths.under(copy_dir)
    copy.data_dir.mkdir()
    shutil.copyfile(paths.warehouse, copy.warehouse)
    rebuilt = run_dbt(copy, "build", "--full-refresh", capture=True)
    assert rebuilt.returncode == 0, rebuilt.output[-3000:]
    assert_same_tables(paths.warehouse, copy.warehouse, COMPARED_SCHEMAS)


def assert_published_matches_warehouse(data_dir: Path, record: RunRecord) -> None:
    paths = Paths.under(data_dir)
    assert_same_tables(paths.warehouse, paths.analytics, ANALYST_SCHEMAS)
    with duckdb.connect(str(paths.analytics), read_only=True) as connection:
        published_runs = {
            row[0] for row in connection.execute("select run_id from ops.pipeline_runs").fetchall()
        }
    assert record.run_id in published_runs
    assert paths.analytics.stat().st_mode & 0o777 == 0o440


def test_selective_and_quiet_nights_equal_a_full_rebuild(data_dir: Path, tmp_path: Path) -> None:
    paths = Paths.under(data_dir)
    typical, _ = night(data_dir, day=1)
    assert "success" in statuses(typical).values()

    # one track's current version retired by hand: the next load brings it back, and only
    # /tracks changed, so only what reads tracks is built
    with duckdb.connect(str(paths.warehouse)) as connection:
        [track_id] = connection.execute(
            "select min(id) from raw.tracks where _dlt_valid_to is null"
        ).fetchone()
        connection.execute(
            "update raw.tracks set _dlt_valid_to = now() where id = ? and _dlt_valid_to is null",
            [track_id],
        )
    tracks_only, shared = night(data_dir, day=1)
    built = statuses(tracks_only)
    assert built["dim_tracks"] == "success"
    assert built["int_track_features"] == "success"
    assert built["dim_users"] == "skipped"
    assert built["fct_listens"] == "skipped"
    assert built["fct_track_similarities"] == "skipped"
    skipped_tests = [n for n in tracks_only.nodes if n.resource_type == "test"]
    assert any(n.status == "skipped" for n in skipped_tests)
    assert any(n.status == "pass" for n in skipped_tests)
    assert_full_rebuild_agrees(data_dir, tmp_path / "full_after_tracks")
    assert_published_matches_warehouse(data_dir, tracks_only)
    assert shared >= 4  # dim_users, fct_listens, fct_user_tracks, fct_track_similarities...

    quiet, _ = night(data_dir, day=1)
    assert set(statuses(quiet).values()) == {"skipped"}
    assert all(node.status == "skipped" for node in quiet.nodes)
    assert quiet.published_at is not None
    fct_listens = quiet.volume("marts.fct_listens")
    assert (
        fct_listens is not None
        and fct_listens.table_rows == tracks_only.volume("marts.fct_listens").table_rows
    )
    assert_full_rebuild_agrees(data_dir, tmp_path / "full_after_quiet")
    assert_published_matches_warehouse(data_dir, quiet)
    with duckdb.connect(str(paths.analytics), read_only=True) as connection:
        [as_of] = connection.execute("select max(as_of_at) from features.user_features").fetchone()
    with duckdb.connect(str(paths.warehouse), read_only=True) as connection:
        [load] = connection.execute(
            "select max(inserted_at) from raw._dlt_loads where status = 0"
        ).fetchone()
    # the days count to the quiet night's own load, though no model was built
    assert as_of.replace(tzinfo=None) == load.replace(tzinfo=None)

    full, shared_full = night(data_dir, day=1, NIGHTLY__FULL_REBUILD="true")
    assert set(statuses(full).values()) == {"success"}
    assert shared_full == 0
    assert_published_matches_warehouse(data_dir, full)

    # a quiet night after it (the file the full night wrote is compact, so publish starts from
    # a copy of it): what reads the load stamp is written again; everything else, the
    # recommender's tables and the view over them included (scoring re-scored nobody), is kept
    again, shared_again = night(data_dir, day=1)
    assert_published_matches_warehouse(data_dir, again)
    manifest = Manifest(paths.dbt_target_dir / "manifest.json")
    stamped = {
        relation
        for relation, uid in manifest.model_relations().items()
        if "_dlt_loads" in manifest.upstream_sources(uid)
    }
    published = set(relations(paths.analytics, ANALYST_SCHEMAS))
    assert {"features.user_features", "ml.recommendations", "marts.fct_recommendations"} <= (
        published
    )
    assert "features.user_features" in stamped
    assert shared_again == len(published - stamped)


def test_a_night_that_quarantines_a_record_runs_the_quarantine_warning(data_dir: Path) -> None:
    # the quarantine feeds only a view; its warning test is what tells the on-call engineer
    faults = FaultPlan([Fault("users", 2, "missing_field", arg="email", times=FOREVER)])
    with running_api(api_world(day=1), faults=faults) as api:
        completed = run_job(data_dir, api.url)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    record = records(data_dir)[-1]
    [test] = [n for n in record.nodes if n.name == QUARANTINE_TEST]
    assert (test.status, test.failures) == ("warn", 1)
    assert QUARANTINE_TEST in {f.subject for f in record.findings if f.check == "dbt_test"}

    # the next night quarantines nothing new: the test is not run, and is not news
    with running_api(api_world(day=1)) as api:
        completed = run_job(data_dir, api.url)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    record = records(data_dir)[-1]
    [test] = [n for n in record.nodes if n.name == QUARANTINE_TEST]
    assert test.status in ("skipped", "pass")
    assert QUARANTINE_TEST not in {f.subject for f in record.findings if f.check == "dbt_test"}
