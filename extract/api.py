"""Which API tonight's run reads: `MOOVITAMIX_API_URL`, or else the embedded dev API.

With no API configured, the dev API serves its next simulated day on a free loopback port
(day 0 first; the counter lives in the data folder), so a fresh clone shows night after night
of change. The day advances only when the extraction succeeded.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import dlt

from dev_api.server import start_api_process
from extract import settings

log = logging.getLogger("moovitamix.extract")


@contextlib.contextmanager
def tonights_api() -> Iterator[tuple[str, str | None]]:
    """(base URL, bearer token or None) for the length of one extraction."""
    token = dlt.secrets.get("sources.moovitamix.api_token")
    api_url = settings.configured_api_url()
    with contextlib.nullcontext(api_url) if api_url else _embedded_dev_api() as url:
        yield url, token


@contextlib.contextmanager
def _embedded_dev_api() -> Iterator[str]:
    day_file = settings.DEV_API_DAY_FILE
    day = int(day_file.read_text()) if day_file.exists() else 0
    process, url = start_api_process(day=day)
    log.info("no MOOVITAMIX_API_URL set: serving the dev API's day %d at %s", day, url)
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
    day_file.parent.mkdir(parents=True, exist_ok=True)
    day_file.write_text(f"{day + 1}\n")
