"""Headless Chromium (Debian's `chromium`, driven by the `playwright` package pinned in the lock)
and three published nights of the dev API, for the tests that look at pages as people do.

`.ci/run` installs chromium when it is missing, so CI never skips these tests; on a machine
without it they are skipped, saying why. `SAVE_SCREENSHOTS=1` makes them save the screenshots the
README shows into docs/images/.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from dev_api.server import running_api
from tests.nightly.support import api_world, run_job
from tests.support import REPO_ROOT

CHROMIUM = Path("/usr/bin/chromium")
# No sandbox (CI runs as root in a container), nothing fetched from the network, no GPU.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS_DIR = REPO_ROOT / "docs" / "images"
NIGHTS = 3
# The volume check's band needs this many successful nights of history: two, so that the third
# of three nights is drawn inside its band.
MIN_HISTORY_RUNS = "2"


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip(f"no {CHROMIUM}: install Debian's chromium (.ci/run does) to run this test")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    yield context.new_page()
    context.close()


@pytest.fixture(scope="session")
def three_nights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder after three successful nights of the dev API (days 0, 1, 2)."""
    data_dir = tmp_path_factory.mktemp("three_nights")
    for day in range(NIGHTS):
        with running_api(api_world(day=day)) as api:
            completed = run_job(data_dir, api.url, NIGHTLY__MIN_HISTORY_RUNS=MIN_HISTORY_RUNS)
        assert completed.returncode == 0, completed.stderr[-3000:]
    return data_dir


def screenshot(page: Page, name: str, full_page: bool = False) -> None:
    """Save `page` as docs/images/<name>.png when SAVE_SCREENSHOTS is set."""
    if os.environ.get("SAVE_SCREENSHOTS"):
        SCREENSHOTS_DIR.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS_DIR / f"{name}.png"), full_page=full_page)
