"""`python -m extract` (`make extract`): load the MooVitamix API into the raw schema, alone.

It takes the run lock, since DuckDB allows one writer. With no API configured it serves the dev
API's next day (like the nightly job). Exit codes: 0 loaded, 1 extraction failed (nothing
merged), 2 the dev API did not start, 75 a run holds the lock, 78 the data folder is open to
other accounts (nothing written).
"""

from __future__ import annotations

import contextlib
import logging
import sys

from core.lock import LockHeld, exclusive
from core.paths import DataDirError, Paths
from dev_api.server import DevApiNotStarted, serve_next_day
from extract.pipeline import make_pipeline, run_extraction
from extract.settings import SourceSettings
from extract.source import ExtractionError

log = logging.getLogger("moovitamix.extract")

EXIT_FAILED = 1
EXIT_NO_DEV_API = 2
EXIT_LOCKED = 75
EXIT_UNSAFE = 78


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    paths, source = Paths.resolve(), SourceSettings.resolve()
    api = (
        contextlib.nullcontext(source.api_url)
        if source.api_url
        else serve_next_day(paths.dev_api_day_file)
    )
    try:
        paths.prepare()
        with exclusive(paths.lock_file), api as url:
            pipeline = make_pipeline(paths.warehouse, paths.pipelines_dir)
            summary = run_extraction(pipeline, url, source.api_token)
    except LockHeld as exc:
        log.error("%s; try again when it has finished", exc)
        return EXIT_LOCKED
    except DataDirError as exc:
        log.error("%s", exc)
        return EXIT_UNSAFE
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
