"""`python -m dev_api` as a child process: announces its URL, serves, injects faults, exits."""

import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dev_api import World, start_api_process

WORLD = {"users": 50, "tracks": 20, "listens": 3, "day": 2, "seed": 9}


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_process_serves_the_world_and_stops_on_signal(
    stop_signal: signal.Signals, client_for: Any
) -> None:
    process, url = start_api_process(faults=["users:1:status:503"], **WORLD)
    with process:  # closes the stdout pipe on exit
        try:
            assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)
            client = client_for(url)
            assert client.get("/users?size=10").status == 503
            page = client.get_json("/users?size=10")
            world = World(**WORLD)
            assert page["total"] == world.total("users")
            assert page["items"] == world.page("users", 1, 10)
            history = client.get_json("/listen_history?page=2&size=10")["items"]
            assert history == world.page("listen_history", 2, 10)
        finally:
            process.send_signal(stop_signal)
            assert process.wait(timeout=5) == 0
            # The URL line was the only output.
            assert process.stdout is not None and process.stdout.read() == ""


def test_bad_fault_spec_is_a_usage_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dev_api", "--port", "0", "--fault", "users:1:explode"],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert (
        result.returncode == 2
        and "unknown fault kind 'explode'" in result.stderr
        and result.stdout == ""
    )
