"""Helpers of the nightly tests: run the job as cron does, read its ledger, play an analyst and
a webhook receiver."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from core.paths import Paths
from core.privacy import PrivacySettings
from dev_api.world import World
from extract.settings import SourceSettings
from nightly.ledger import Ledger, RunRecord, StepTiming, TableVolume, new_run_id
from nightly.settings import NightConfig, NightlySettings
from nightly.status import RAW_TABLES
from recommender.settings import Settings as RecommenderSettings
from tests.support import REPO_ROOT

# A small world: each nightly run takes seconds, most of them dbt's.
WORLD = {"users": 200, "tracks": 150, "listens": 5, "seed": 11}
TIMEOUT_SECONDS = 120


def api_world(day: int, **overrides: int) -> World:
    """The tests' world on `day`, optionally resized (e.g. half the users)."""
    world = World(**{**WORLD, **overrides})
    world.day = day
    return world


def job_environment(data_dir: Path, api_url: str | None, **extra: str) -> dict[str, str]:
    """The environment of a cron run: nothing inherited of ours, fast retries, a temp data dir."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("MOOVITAMIX_", "NIGHTLY__", "RUNTIME__"))
    }
    environment |= {
        "MOOVITAMIX_DATA_DIR": str(data_dir),
        "RUNTIME__REQUEST_MAX_ATTEMPTS": "2",
        "RUNTIME__REQUEST_BACKOFF_FACTOR": "0.01",
        "RUNTIME__REQUEST_MAX_RETRY_DELAY": "0.1",
        "RUNTIME__REQUEST_TIMEOUT": "2",
        **extra,
    }
    if api_url:
        environment["MOOVITAMIX_API_URL"] = api_url
    return environment


def run_job(
    data_dir: Path, api_url: str | None, *command: str, **env: str
) -> subprocess.CompletedProcess[str]:
    """`python -m nightly` (or another command) from the repo root, to completion."""
    return subprocess.run(
        list(command) or [sys.executable, "-m", "nightly"],
        cwd=REPO_ROOT,
        env=job_environment(data_dir, api_url, **env),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
    )


def start_job(data_dir: Path, api_url: str | None, **env: str) -> subprocess.Popen[str]:
    """`python -m nightly` in the background."""
    return subprocess.Popen(
        [sys.executable, "-m", "nightly"],
        cwd=REPO_ROOT,
        env=job_environment(data_dir, api_url, **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def status(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run_job(data_dir, None, sys.executable, "-m", "nightly.status", *args, **env)


def records(data_dir: Path) -> list[RunRecord]:
    return Ledger(data_dir / "runs").records()


def current_step(data_dir: Path) -> str | None:
    """The step the newest run is in, as its ledger file says."""
    newest = records(data_dir)[-1]
    return newest.current_step


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@contextmanager
def webhook_receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A local Slack-style webhook: yields (url, the JSON bodies it received)."""
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"path": self.path, **json.loads(body)})
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


ANALYST_SCRIPT = """
import duckdb, json, sys
path = sys.argv[1]
connection = duckdb.connect(path, read_only=True)
for line in sys.stdin:
    if line.strip() == "reconnect":
        connection.close()
        connection = duckdb.connect(path, read_only=True)
    runs = connection.execute("select run_id from ops.pipeline_runs order by run_id").fetchall()
    events = connection.execute("select count(*) from marts.fct_listen_events").fetchone()[0]
    print(json.dumps({"runs": [run for (run,) in runs], "listen_events": events}), flush=True)
"""


class AnalystSession:
    """Another process holding a read-only DuckDB session open on the analysts' file."""

    def __init__(self, path: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", ANALYST_SCRIPT, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def ask(self, command: str = "query") -> dict[str, Any]:
        """What the session sees: the run ids in ops.pipeline_runs and the listen events."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"{command}\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=10)


def past_run(started_at: datetime, status: str = "success") -> RunRecord:
    """A run record as a successful night at `started_at` leaves it: loaded, published."""
    record = RunRecord(run_id=new_run_id(started_at), started_at=started_at, status=status)
    record.steps = [StepTiming("load", started_at, 2.0, "ok")]
    record.volumes = [TableVolume(table, read_rows=10) for table in RAW_TABLES]
    record.finished_at = record.published_at = started_at + timedelta(seconds=30)
    record.exit_code = 0
    return record


def night_config(paths: Paths, **nightly: float) -> NightConfig:
    """A night in `paths` with default settings (none read from the environment), `nightly`
    thresholds overridden: what the in-process runner tests run."""
    return NightConfig(
        paths=paths,
        nightly=NightlySettings(**nightly),
        source=SourceSettings(),
        recommender=RecommenderSettings.from_config(paths),
        privacy=PrivacySettings(),
    )
