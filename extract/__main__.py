"""`python -m extract`: load the MooVitamix API into the raw schema of the DuckDB file.

With no API configured it serves the embedded dev API on a free loopback port, one simulated day
further each successful run (day 0 first), so a fresh clone shows night after night of change.
Exit codes: 0 loaded, 1 extraction failed (nothing merged), 2 the dev API did not start.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator

import dlt

from dev_api.server import start_api_process
from extract import settings
from extract.pipeline import make_pipeline, run_extraction
from extract.source import ExtractionError

log = logging.getLogger("moovitamix.extract")


@contextlib.contextmanager
def embedded_dev_api() -> Iterator[str]:
    """Serve the dev API's next simulated day for one run; advance the day only on success."""
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


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    api_url = settings.configured_api_url()
    token = dlt.secrets.get("sources.moovitamix.api_token")
    pipeline = make_pipeline(settings.DUCKDB_PATH, settings.PIPELINES_DIR)
    try:
        with contextlib.nullcontext(api_url) if api_url else embedded_dev_api() as url:
            summary = run_extraction(pipeline, url, token)
    except ExtractionError as exc:
        log.error("extraction failed, raw tables unchanged: %s", exc)
        return 1
    print(summary.render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
