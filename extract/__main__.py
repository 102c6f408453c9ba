"""`python -m extract` (`make extract`): load the MooVitamix API into the raw schema, alone.

It takes the nightly run lock, since DuckDB allows one writer. Exit codes: 0 loaded,
1 extraction failed (nothing merged), 2 the dev API did not start, 75 a run holds the lock.
"""

from __future__ import annotations

import logging
import sys

from dev_api.server import DevApiNotStarted
from extract import settings
from extract.api import tonights_api
from extract.pipeline import make_pipeline, run_extraction
from extract.source import ExtractionError
from nightly.lock import LockHeld, exclusive

log = logging.getLogger("moovitamix.extract")

EXIT_FAILED = 1
EXIT_NO_DEV_API = 2
EXIT_LOCKED = 75


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        with exclusive(settings.NIGHTLY_LOCK_FILE), tonights_api() as (url, token):
            pipeline = make_pipeline(settings.DUCKDB_PATH, settings.PIPELINES_DIR)
            summary = run_extraction(pipeline, url, token)
    except LockHeld as exc:
        log.error("%s; try again when it has finished", exc)
        return EXIT_LOCKED
    except ExtractionError as exc:
        log.error("extraction failed, raw tables unchanged: %s", exc)
        return EXIT_FAILED
    except DevApiNotStarted as exc:
        log.error("%s", exc)
        return EXIT_NO_DEV_API
    print(summary.render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
