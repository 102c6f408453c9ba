"""`python -m nightly` (`make elt`): extract, load, dbt build, checks, publish, under one lock.

Exit codes: 0 success (warnings allowed; the analysts' file was published), 1 a step failed or
the run was interrupted, 2 a data-quality error (a dbt test failed or an anomaly check found an
error), 75 another run holds the lock. On 1 and 2 nothing is published.
"""

from __future__ import annotations

import logging
import sys

from nightly.runner import run_night
from nightly.settings import NightConfig
from nightly.steps import STEPS


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    return run_night(STEPS, NightConfig.resolve()).exit_code


if __name__ == "__main__":
    sys.exit(main())
