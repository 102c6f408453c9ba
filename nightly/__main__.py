"""`python -m nightly` (`make elt`): extract the API into raw, then `dbt build` models and tests.

Exit codes: 0 success (warnings allowed), 1 extraction failed (raw unchanged, dbt not run),
2 dbt build failed (a model or an error-level test failed).
"""

from __future__ import annotations

import sys

from extract import settings
from extract.__main__ import main as extract_main
from nightly.dbt_build import build

EXIT_EXTRACT_FAILED = 1
EXIT_BUILD_FAILED = 2


def main() -> int:
    if extract_main() != 0:
        return EXIT_EXTRACT_FAILED
    summary = build(str(settings.DUCKDB_PATH))
    print(summary.render())
    return 0 if summary.success else EXIT_BUILD_FAILED


if __name__ == "__main__":
    sys.exit(main())
