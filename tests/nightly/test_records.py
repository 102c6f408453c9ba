"""The run record: its ledger file, the ops tables and their docs, the alert, the settings."""

from __future__ import annotations

import json
import logging
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
import yaml

from core.paths import Paths
from nightly import alerts
from nightly.ledger import (
    ERROR,
    Finding,
    Ledger,
    NodeResult,
    RunRecord,
    StepTiming,
    TableVolume,
)
from nightly.ops_tables import OPS_TABLE_SCHEMAS, write_ops_tables
from nightly.privacy import ErasureLog
from nightly.settings import NightlySettings
from tests.nightly.support import webhook_receiver
from tests.support import REPO_ROOT

START = datetime(2026, 1, 1, 2, tzinfo=UTC)


def night(number: int, *test_statuses: str) -> RunRecord:
    """A finished run on night `number` whose build ran one test per status given."""
    started = START + timedelta(days=number)
    record = RunRecord(run_id=f"2026010{number}T020000Z-0000", started_at=started)
    record.status, record.exit_code = "success", 0
    record.finished_at = started + timedelta(seconds=42)
    record.steps = [StepTiming("load", started, 1.5, "ok"), StepTiming("scoring", started, 2, "ok")]
    record.volumes = [TableVolume("raw.users", table_rows=10, read_rows=10, listens=None)]
    record.nodes = [
        NodeResult("test.moovitamix.not_null_x.1", "test", "not_null_x", status, 0.1, 0, None)
        for status in test_statuses
    ]
    return record


def test_a_record_survives_its_ledger_file(tmp_path: Path) -> None:
    record = night(1, "warn")
    record.findings = [Finding("volume", ERROR, "raw.users", "raw.users: 0 rows", 0.0, 10.0, "x")]
    ledger = Ledger(tmp_path / "runs")
    ledger.write(record)
    ledger.write(record)  # replaced, not appended
    assert ledger.records() == [record]
    assert [path.name for path in (tmp_path / "runs").iterdir()] == [f"{record.run_id}.json"]
    assert record.loaded_at == START + timedelta(days=1, seconds=1.5)


def test_ops_tables_say_since_when_a_test_has_not_passed(tmp_path: Path) -> None:
    nights = [night(1, "pass"), night(2, "warn"), night(3, "skipped"), night(4, "fail")]
    nights.append(night(5, "pass"))
    with duckdb.connect() as connection:
        write_ops_tables(connection, "memory", nights, ErasureLog(Paths.under(tmp_path)).table())
        rows = connection.execute(
            "select run_id, status, failing_since from ops.test_results order by run_id"
        ).fetchall()
        [(scoring_seconds, load_seconds)] = connection.execute(
            "select scoring_seconds, load_seconds from ops.pipeline_runs limit 1"
        ).fetchall()
    naive = [n.started_at.replace(tzinfo=None) for n in nights]
    assert [(status, since) for _, status, since in rows] == [
        ("pass", None),
        ("warn", naive[1]),
        ("skipped", naive[1]),
        ("fail", naive[1]),
        ("pass", None),
    ]
    assert (scoring_seconds, load_seconds) == (2.0, 1.5)


def test_the_ops_source_documents_every_ops_column() -> None:
    source_file = REPO_ROOT / "dbt_project/models/ops/_ops__sources.yml"
    [source] = yaml.safe_load(source_file.read_text())["sources"]
    documented = {
        table["name"]: [column["name"] for column in table["columns"]] for table in source["tables"]
    }
    assert documented == {
        name: [field.name for field in schema] for name, schema in OPS_TABLE_SCHEMAS.items()
    }
    assert all(table["description"].strip() for table in source["tables"])


def test_the_alert_says_what_failed_where_and_the_counts_against_usual() -> None:
    record = night(1)
    record.status, record.exit_code, record.failing_step = "failed", 1, "extract"
    record.error_message = "extraction failed, raw tables unchanged: tracks page 2: 503"
    assert alerts.compose(record, alert_on_warning=True) == (
        f"MooVitamix nightly run {record.run_id}: FAILED at step extract (exit 1); "
        "nothing published\nextraction failed, raw tables unchanged: tracks page 2: 503"
    )
    warned = night(2)
    warned.status, warned.published_at = "warned", warned.finished_at
    warned.findings = [
        Finding("volume", "warning", "raw.users", "raw.users: 13 rows, usual 10 (+30%): ...")
    ]
    assert alerts.compose(warned, alert_on_warning=False) is None
    assert alerts.compose(warned, alert_on_warning=True) == (
        f"MooVitamix nightly run {warned.run_id}: WARNED (exit 0); analysts' file published\n"
        "WARNING raw.users: 13 rows, usual 10 (+30%): ..."
    )
    assert alerts.compose(night(3), alert_on_warning=True) is None


def test_the_webhook_gets_slack_json_and_one_that_is_down_fails_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = "/services/T0/B0/secret-token"
    with webhook_receiver() as (url, received):
        assert alerts.send("the run failed", url + secret) is True
    assert received == [{"path": secret, "text": "the run failed"}]
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        down = f"http://127.0.0.1:{closed.getsockname()[1]}{secret}"
    with caplog.at_level(logging.INFO):
        assert alerts.send("the run failed", down) is False
        assert alerts.send("the run failed", "not-a-url" + secret) is False
        assert alerts.send("the run failed", None) is False
    assert "ALERT the run failed" in caplog.text
    assert "could not post the alert to the webhook (URLError)" in caplog.text
    assert "secret-token" not in caplog.text


def test_settings_come_from_the_environment_the_dlt_way(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NIGHTLY__MIN_HISTORY_RUNS", "2")
    monkeypatch.setenv("NIGHTLY__ALERT_ON_WARNING", "false")
    monkeypatch.setenv("NIGHTLY__ALERT_WEBHOOK_URL", "http://127.0.0.1:9/hook")
    settings = NightlySettings.from_config()
    assert (settings.min_history_runs, settings.alert_on_warning) == (2, False)
    assert settings.volume_error_drop == 0.2
    assert settings.alert_webhook_url == "http://127.0.0.1:9/hook"
    assert "hook" not in repr(settings)


def test_a_damaged_record_is_skipped_and_another_version_of_the_record_still_reads(
    tmp_path: Path,
) -> None:
    ledger = Ledger(tmp_path / "runs")
    ledger.write(night(1))
    (tmp_path / "runs" / "20260102T020000Z-dead.json").write_text('{"run_id": ')
    older = json.loads(night(3).to_json()) | {"pid": 4242}  # a field this version dropped
    del older["alert"]  # a field this version added
    (tmp_path / "runs" / f"{night(3).run_id}.json").write_text(json.dumps(older))
    assert [record.run_id for record in ledger.records()] == [night(1).run_id, night(3).run_id]
    assert ledger.records()[1] == night(3)
