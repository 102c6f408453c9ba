"""`python -m recommender {score,train}` (`make recommend`, `make train`).

`score` on a warehouse with no champion yet trains one first (what `train` does), then scores:
the nightly job does the same in two steps, `training` then `scoring`.

Exit codes: 0 done, 1 an error the recommender cannot work around (printed), 2 scoring refused
because the dbt build failed (`score --build-failed`; yesterday's recommendations stay), 75 the
nightly job (or another score/train) holds the run lock: DuckDB takes one writer at a time.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from core.config import SettingsError
from core.lock import LockHeld, exclusive
from core.paths import DataDirError, Paths
from recommender import RecommenderError
from recommender.scoring import score
from recommender.settings import Settings
from recommender.training import train
from recommender.warehouse import champion

EXIT_ERROR = 1
EXIT_REFUSED = 2
EXIT_LOCKED = 75


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recommender", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    scoring = commands.add_parser(
        "score", help="replace ml.recommendations with the champion's (trains one if none yet)"
    )
    scoring.add_argument(
        "--build-failed",
        action="store_true",
        help="tonight's dbt build failed: score nothing, keep yesterday's recommendations",
    )
    scoring.add_argument(
        "--full",
        action="store_true",
        help="re-score every user, not only those whose listens changed (recommender.full_rescore)",
    )
    commands.add_parser("train", help="fit and evaluate every model, then run the promotion gate")
    commands.add_parser(
        "bench", help="deprecated: use `make bench-reco` (python -m benchmarks.reco_bench)"
    )
    args, rest = parser.parse_known_args(argv)
    if args.command == "bench":
        return _deprecated_bench(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        paths = Paths.resolve()
        given = {"full_rescore": True} if args.command == "score" and args.full else {}
        settings = Settings.from_config(paths, **given)
        paths.prepare()
        with exclusive(paths.lock_file):
            if args.command == "train":
                print(train(settings).render())
                return 0
            refused = "tonight's dbt build failed" if args.build_failed else None
            if refused is None and champion(settings.duckdb_path) is None:
                print(f"No champion yet: training one first.\n{train(settings).render()}")
            report = score(settings, refused)
        print(report.render())
        return 0 if report.scored else EXIT_REFUSED
    except LockHeld as error:
        print(f"recommender: {error}; try again when it has finished", file=sys.stderr)
        return EXIT_LOCKED
    except (RecommenderError, SettingsError, DataDirError) as error:
        print(f"recommender: {error}", file=sys.stderr)
        return EXIT_ERROR


def _deprecated_bench(arguments: list[str]) -> int:
    """`python -m recommender bench` moved to benchmarks/ (it runs whole nights): still works."""
    print(
        "recommender: `python -m recommender bench` is deprecated and will be removed: use "
        "`make bench-reco` or `python -m benchmarks.reco_bench`",
        file=sys.stderr,
    )
    command = [sys.executable, "-m", "benchmarks.reco_bench", *arguments]
    return subprocess.run(command, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
