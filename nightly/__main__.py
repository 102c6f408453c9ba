"""`python -m nightly` (`make elt`): extract, load, privacy, dbt build, checks, training, scoring,
publish, under one lock.

Exit codes: 0 success (warnings allowed; the analysts' file was published), 1 a step failed or
the run was interrupted, 2 a data-quality error (a dbt test failed or an anomaly check found an
error), 3 not enough disk space (refused to start, or the disk filled up), 4 DuckDB ran out of
its memory limit, 75 another run holds the lock, 124 the night or a step passed its deadline.
On every code but 0 nothing is published; the last line printed says what happened and what to
do.
"""

from __future__ import annotations

import logging
import sys

from nightly.failures import EXIT_FAILED
from nightly.runner import run_night
from nightly.settings import NightConfig
from nightly.steps import STEPS

log = logging.getLogger("moovitamix.nightly")


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        config = NightConfig.resolve()
    except Exception as exc:  # before the run exists: nothing to record, say what to fix
        log.exception("could not read the settings")
        print(
            f"Nightly run not started: {type(exc).__name__}: {exc}. What to do: fix the setting "
            "it names (environment or .dlt/config.toml), then rerun `make elt`",
            flush=True,
        )
        return EXIT_FAILED
    return run_night(STEPS, config).exit_code


if __name__ == "__main__":
    sys.exit(main())
