"""`python -m recommender {score,train,bench}`.

Exit codes: 0 done, 1 an error the recommender cannot work around (printed), 2 scoring refused
because the dbt build failed (`score --build-failed`; yesterday's recommendations stay), 75 the
nightly job (or another score/train) holds the run lock: DuckDB takes one writer at a time.
"""

from __future__ import annotations

import argparse
import sys

from extract.settings import NIGHTLY_LOCK_FILE
from nightly.lock import LockHeld, exclusive
from recommender import RecommenderError, bench
from recommender.scoring import score
from recommender.settings import Settings
from recommender.training import train

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
    commands.add_parser("train", help="fit and evaluate every model, then run the promotion gate")
    bench.add_arguments(
        commands.add_parser("bench", help="measure every model and the ceiling on dev API data")
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "bench":
            return bench.run(args)
        settings = Settings.from_env()
        with exclusive(NIGHTLY_LOCK_FILE):
            if args.command == "train":
                print(train(settings).render())
                return 0
            report = score(settings, build_succeeded=not args.build_failed)
        print(report.render())
        return 0 if report.scored else EXIT_REFUSED
    except LockHeld as error:
        print(f"recommender: {error}; try again when it has finished", file=sys.stderr)
        return EXIT_LOCKED
    except RecommenderError as error:
        print(f"recommender: {error}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
