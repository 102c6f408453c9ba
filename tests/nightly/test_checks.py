"""The health-check rules on numbers alone: volumes, listens, duration, dbt warnings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from nightly.checks import duration_finding, listens_finding, new_test_warnings, volume_findings
from nightly.ledger import ERROR, INFO, WARNING, Finding, NodeResult, RunRecord, TableVolume
from nightly.settings import NightlySettings

SETTINGS = NightlySettings(min_history_runs=3)
START = datetime(2026, 1, 1, 2, tzinfo=UTC)


def history(*users: int, seconds: float = 60.0) -> list[RunRecord]:
    """Successful runs, one night apart, with raw.users counts `users`."""
    runs = []
    for night, count in enumerate(users):
        run = RunRecord(run_id=f"run{night}", started_at=START + timedelta(days=night))
        run.status, run.finished_at = "success", run.started_at + timedelta(seconds=seconds)
        run.volumes = [TableVolume("raw.users", table_rows=count)]
        runs.append(run)
    return runs


def levels(findings: list) -> list[tuple[str, str]]:
    return [(finding.level, finding.subject) for finding in findings]


def test_volume_checks_wait_for_enough_history_and_say_so() -> None:
    findings = volume_findings({"raw.users": 10}, history(1000, 1000), SETTINGS)
    assert findings == [
        Finding(
            "volume",
            INFO,
            "history",
            "volume checks wait for 3 successful runs of history (2 so far): only empty tables "
            "are errors until then",
        )
    ]


def test_zero_rows_where_there_were_some_is_an_error_even_without_history() -> None:
    assert levels(volume_findings({"raw.users": 0}, history(1000), SETTINGS)) == [
        (ERROR, "raw.users"),
        (INFO, "history"),
    ]
    assert volume_findings({"ml.recommendations": 0}, history(*[1000] * 3), SETTINGS) == []


def test_a_drop_beyond_the_error_share_is_an_error() -> None:
    past = history(1000, 1010, 990, 1005)
    [finding] = volume_findings({"raw.users": 790}, past, SETTINGS)
    assert (finding.level, finding.observed, finding.usual) == (ERROR, 790, 1002.5)
    assert finding.message == (
        "raw.users: 790 rows, usual 1,002 (-21%): more than 20% below the median"
    )
    assert volume_findings({"raw.users": 810}, past, SETTINGS)[0].level == WARNING


def test_a_count_outside_the_band_warns_and_inside_is_silent() -> None:
    past = history(1000, 1100, 1200, 1300, 1400)  # growing 100 a night: spread ~148
    assert volume_findings({"raw.users": 1500}, past, SETTINGS) == []
    [finding] = volume_findings({"raw.users": 2000}, past, SETTINGS)
    assert finding.level == WARNING
    assert "outside the usual ±445" in finding.message
    # a table that never moved warns only beyond the minimum share (5%), not on one row
    flat = history(1000, 1000, 1000)
    assert volume_findings({"raw.users": 1001}, flat, SETTINGS) == []
    assert levels(volume_findings({"raw.users": 1060}, flat, SETTINGS)) == [(WARNING, "raw.users")]


def test_an_accepted_drop_is_a_warning() -> None:
    settings = NightlySettings(min_history_runs=3, accept_volume_drop=True)
    [finding] = volume_findings({"raw.users": 500}, history(1000, 1000, 1000), settings)
    assert finding.level == WARNING
    assert finding.message.endswith("(accepted: NIGHTLY__ACCEPT_VOLUME_DROP)")


def test_listens_may_shrink_only_by_those_of_retired_users() -> None:
    assert listens_finding(900, 100, previous=1000) is None
    assert listens_finding(1200, 0, previous=1000) is None
    assert listens_finding(5, 0, previous=None) is None  # the first measured night
    finding = listens_finding(880, 100, previous=1000)
    assert finding is not None and finding.level == ERROR
    assert finding.message == (
        "raw.listen_history: 880 listens, 1,000 at the previous load: 20 lost beyond the 100 "
        "of retired users"
    )


def test_a_run_much_slower_than_usual_warns() -> None:
    past = history(1, 1, 1, seconds=100)
    assert duration_finding(190, past, SETTINGS) is None  # under 2x
    assert duration_finding(250, past, SETTINGS) is not None
    quick = history(1, 1, 1, seconds=10)
    assert duration_finding(50, quick, SETTINGS) is None  # 5x, but only 40 s slower
    assert duration_finding(1000, past[:2], SETTINGS) is None  # not enough history


def test_only_dbt_warnings_new_tonight_are_findings() -> None:
    def node(name: str, status: str) -> NodeResult:
        return NodeResult(f"test.moovitamix.{name}.1", "test", name, status, 0.1, 3, "Got 3")

    previous = history(1)[0]
    previous.nodes = [node("known_quirk", "warn"), node("fine", "pass")]
    tonight = [node("known_quirk", "warn"), node("fine", "warn")]
    assert levels(new_test_warnings(tonight, [previous])) == [(WARNING, "fine")]
    assert new_test_warnings(tonight, []) == []
    # a night that skipped both tests (nothing they read changed) says nothing of them: the
    # status they had the last time they ran counts
    quiet = history(1)[0]
    quiet.nodes = [node("known_quirk", "skipped"), node("fine", "skipped")]
    assert levels(new_test_warnings(tonight, [previous, quiet])) == [(WARNING, "fine")]
    assert new_test_warnings(tonight, [quiet]) == []


# The findings land in ops.run_findings and the alert whole: every field is part of the rule.


def test_every_volume_finding_is_recorded_whole_for_each_table() -> None:
    past = history(1000, 1000, 1000)
    for run in past:
        run.volumes.append(TableVolume("marts.dim_users", table_rows=500))
    findings = volume_findings({"raw.users": 0, "marts.dim_users": 1000}, past, SETTINGS)
    assert findings == [
        Finding("volume", ERROR, "raw.users", "raw.users: 0 rows, usual 1,000 (-100%): is empty",
                0.0, 1000.0),
        Finding("volume", WARNING, "marts.dim_users",
                "marts.dim_users: 1,000 rows, usual 500 (+100%): outside the usual ±25",
                1000.0, 500.0),
    ]  # fmt: skip


def test_a_table_that_used_to_be_empty_says_no_change_share() -> None:
    past = history(0, 0, 0)
    [finding] = volume_findings({"raw.users": 100}, past, SETTINGS)
    assert finding.message == "raw.users: 100 rows, usual 0: outside the usual ±0"


def test_the_volume_bounds_are_exclusive() -> None:
    flat = history(1000, 1000, 1000)
    assert volume_findings({"raw.users": 800}, flat, SETTINGS)[0].level == WARNING  # exactly -20%
    assert volume_findings({"raw.users": 1050}, flat, SETTINGS) == []  # exactly the 5% band


def test_a_listens_finding_is_recorded_whole() -> None:
    assert listens_finding(880, 100, previous=1000) == Finding(
        "listens",
        ERROR,
        "raw.listen_history",
        "raw.listen_history: 880 listens, 1,000 at the previous load: 20 lost beyond the 100 "
        "of retired users",
        880.0,
        1000.0,
    )
    assert listens_finding(900, 99, previous=1000) is not None  # one listen short is lost


def test_a_duration_finding_is_recorded_whole_and_its_bounds_are_exact() -> None:
    past = history(1, 1, 1, seconds=100)
    assert duration_finding(250, past, SETTINGS) == Finding(
        "duration", WARNING, "run", "the run took 250 s, usual 100 s (2.5x)", 250, 100
    )
    assert duration_finding(200, past, SETTINGS) is None  # exactly 2x is not slower than 2x
    assert duration_finding(200.5, past, SETTINGS) is not None
    quick = history(1, 1, 1, seconds=50)
    assert duration_finding(110, quick, SETTINGS) is not None  # exactly 60 s slower warns


def test_a_new_dbt_warning_is_recorded_whole() -> None:
    def node(name: str, status: str, failures: int | None, message: str | None) -> NodeResult:
        return NodeResult(f"test.moovitamix.{name}.1", "test", name, status, 0.1, failures, message)

    previous = history(1)[0]
    previous.nodes = [node("fine", "pass", 0, None)]
    tonight = [node("fine", "warn", 3, None), node("other", "warn", None, "Got 2 results")]
    assert new_test_warnings(tonight, [previous]) == [
        Finding("dbt_test", WARNING, "fine", "dbt test fine warns since tonight: 3", 3.0),
        Finding("dbt_test", WARNING, "other", "dbt test other warns since tonight: Got 2 results",
                0.0),
    ]  # fmt: skip
