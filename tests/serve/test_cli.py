"""`python -m serve` as make serve runs it: configuration from dlt, refusal to bind openly."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from serve.settings import ServeSettings
from tests.support import REPO_ROOT

TOKEN = "cli-s3cret-9f2"


def serve_environment(**extra: str) -> dict[str, str]:
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("SERVE__", "NIGHTLY__", "MOOVITAMIX_"))
    }
    return environment | extra


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVE__HOST", "127.0.0.2")
    monkeypatch.setenv("SERVE__PORT", "8123")
    monkeypatch.setenv("SERVE__TOKEN", TOKEN)
    monkeypatch.setenv("NIGHTLY__STALE_AFTER_HOURS", "3.5")
    settings = ServeSettings.from_config()
    assert (settings.host, settings.port, settings.token) == ("127.0.0.2", 8123, TOKEN)
    assert settings.stale_after_hours == 3.5
    assert TOKEN not in repr(settings)
    monkeypatch.delenv("SERVE__TOKEN")
    assert ServeSettings.from_config().token is None


def test_a_non_loopback_address_without_a_token_is_refused() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "serve"],
        cwd=REPO_ROOT,
        env=serve_environment(SERVE__HOST="0.0.0.0"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 2
    assert "'0.0.0.0' is not a loopback address and no serve.token is set" in completed.stderr
    ServeSettings(host="0.0.0.0", token=TOKEN).check_bind()  # with a token it may
    with pytest.raises(ValueError, match="not a loopback address"):
        ServeSettings(host="192.168.1.10").check_bind()


def test_make_serve_answers_with_the_token_and_never_logs_it(published: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "serve"],
        cwd=REPO_ROOT,
        env=serve_environment(
            SERVE__PORT=str(port), SERVE__TOKEN=TOKEN, MOOVITAMIX_ANALYTICS_PATH=str(published)
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/health"
        deadline = time.monotonic() + 30
        while True:
            try:
                unauthorised = requests.get(url, timeout=5)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.1)
        assert unauthorised.status_code == 401
        authorised = requests.get(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
        assert authorised.status_code == 200
        assert authorised.json()["status"] == "ok"
    finally:
        process.terminate()
        stdout, stderr = process.communicate(timeout=20)
    output = stdout + stderr
    assert f"on http://127.0.0.1:{port}" in output
    assert "serving night " in output  # the switch to the published night is logged
    assert '"GET /health HTTP/1.1" 401' in output  # uvicorn's access log...
    assert TOKEN not in output  # ...never the token
