"""A publish while clients keep asking: no error, every response from one night, the switch."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import requests

from core.paths import Paths
from nightly.ledger import Ledger
from nightly.privacy import ErasureLog
from nightly.publish import publish
from tests.serve.conftest import Nights
from tests.serve.support import served
from tests.support import query

CLIENTS = 4


def recommendations_by_user(path: Path, users: list[int]) -> dict[int, list[int]]:
    rows = query(
        path,
        "select user_id, track_id from marts.fct_recommendations "
        "where user_id in (select unnest(?)) and rank <= 10 order by user_id, rank",
        users,
    )
    tracks: dict[int, list[int]] = {user: [] for user in users}
    for user, track in rows:
        tracks[user].append(track)
    return tracks


def published_run(path: Path) -> str:
    [(run_id,)] = query(
        path,
        "select run_id from ops.pipeline_runs where published_at is not null "
        "order by published_at desc limit 1",
    )
    return run_id


def test_a_publish_under_steady_requests_switches_nights_without_a_failure(
    nights: Nights, tmp_path: Path
) -> None:
    night0_file = nights.night0 / "analytics.duckdb"
    night1_file = nights.night1 / "analytics.duckdb"
    common = sorted(
        set(u for (u,) in query(night0_file, "select user_id from marts.dim_users"))
        & set(u for (u,) in query(night1_file, "select user_id from marts.dim_users"))
    )[:40]
    expected = {
        published_run(night0_file): recommendations_by_user(night0_file, common),
        published_run(night1_file): recommendations_by_user(night1_file, common),
    }
    assert len(expected) == 2
    night0, night1 = published_run(night0_file), published_run(night1_file)
    # the items differ between the nights for some users, so a mixed answer would show
    assert any(expected[night0][u] != expected[night1][u] for u in common)

    target = tmp_path / "analytics.duckdb"
    shutil.copy(night0_file, target)
    responses: list[list[tuple[int, str | None, str | None, int, list[int]]]] = [
        [] for _ in range(CLIENTS)
    ]
    stop = threading.Event()
    failures: list[BaseException] = []

    def client(number: int, url: str) -> None:
        session = requests.Session()
        try:
            for request in range(100_000):
                if stop.is_set():
                    return
                user = common[(request * CLIENTS + number) % len(common)]
                response = session.get(f"{url}/users/{user}/recommendations", timeout=10)
                body = response.json() if response.status_code == 200 else {}
                responses[number].append(
                    (
                        response.status_code,
                        body.get("night"),
                        response.headers.get("x-moovitamix-night"),
                        user,
                        [item["track_id"] for item in body.get("items", [])],
                    )
                )
        except BaseException as error:  # the test asserts on it below
            failures.append(error)

    with served(target) as url:
        threads = [threading.Thread(target=client, args=(n, url)) for n in range(CLIENTS)]
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        # the nightly job's own publish step, with night 1's warehouse and run record
        publish(
            nights.night1 / "moovitamix.duckdb",
            target,
            Ledger(nights.night1 / "runs").records(),
            ErasureLog(Paths.under(nights.night1)).table(),
        )
        deadline = time.monotonic() + 20
        while not any(r and r[-1][1] == night1 for r in responses):
            assert time.monotonic() < deadline, "the service never switched to the new night"
            time.sleep(0.05)
        time.sleep(1.0)
        stop.set()
        for thread in threads:
            thread.join(timeout=20)

    assert failures == []
    answered = [answer for client_answers in responses for answer in client_answers]
    assert len(answered) > 200
    for status, night, header, user, tracks in answered:
        assert status == 200
        assert night == header and night in expected
        assert tracks == expected[night][user]  # all of it from the night it names
    for client_answers in responses:
        seen = [night for _, night, *_ in client_answers]
        assert seen[0] == night0 and seen[-1] == night1
        switch = seen.index(night1)
        assert set(seen[:switch]) == {night0} and set(seen[switch:]) == {night1}
    # no hard link of the switch is left beside the published file
    assert sorted(path.name for path in tmp_path.iterdir()) == ["analytics.duckdb"]
