"""`make bench-reco`: every model on the dev API's data, beside the dev API's own taste.

Builds a temporary warehouse the way production does, night after night (dev API day d ->
extractor -> dbt build), so the listen events span several nights and the split is a time split;
then trains and gates the candidates, scores every user, and measures the ceiling: the dev API's
true next-listen distribution (`World.listen_probabilities`) ranked on the same holdout.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from dev_api.server import start_api_process
from dev_api.world import World
from nightly.runner import EXIT_SUCCESS, run_night
from nightly.settings import NightConfig
from nightly.steps import steps_through
from recommender import RecommenderError
from recommender.evaluation import Evaluation, K, evaluate
from recommender.scoring import score
from recommender.settings import Settings
from recommender.training import TrainingReport, train

TARGET_LIFT = 2.0  # the learned champion's recall@10 over the popularity baseline's


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--users", type=int, default=100_000, help="default: %(default)s")
    parser.add_argument("--tracks", type=int, default=1000, help="default: %(default)s")
    parser.add_argument("--listens", type=int, default=20, help="default: %(default)s")
    parser.add_argument("--seed", type=int, default=42, help="default: %(default)s")
    parser.add_argument(
        "--nights", type=int, default=5, help="dev API days 0..N-1 loaded (default: %(default)s)"
    )
    parser.add_argument(
        "--work-dir", type=Path, help="build the warehouse here and keep it (default: a temp dir)"
    )


def run(args: argparse.Namespace) -> int:
    """Build, train, score and measure; 0 when the champion's recall@10 is 2x popularity's."""
    print(
        f"Recommender bench: dev API with {args.users:,} users, {args.tracks:,} tracks, "
        f"{args.listens} listens per user, seed {args.seed}, days 0..{args.nights - 1}"
    )
    with contextlib.ExitStack() as stack:
        work = args.work_dir or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="moovitamix-reco-bench-"))
        )
        work.mkdir(parents=True, exist_ok=True)
        if any(work.iterdir()):
            raise RecommenderError(f"{work} is not empty: give a new --work-dir")
        settings = build_warehouse(args, work)
        started = time.monotonic()
        report = train(settings)
        train_seconds = time.monotonic() - started
        print(report.render())
        started = time.monotonic()
        world = World(seed=args.seed, users=args.users, tracks=args.tracks, listens=args.listens)
        ceiling_evaluation = ceiling(world, report, day=args.nights - 1)
        ceiling_seconds = time.monotonic() - started
        print(
            f"  {ceiling_evaluation.name:<34} {ceiling_evaluation.recall_at_10:>9.4f} "
            f"{ceiling_evaluation.ndcg_at_10:>8.4f} {ceiling_evaluation.catalogue_coverage:>8.1%}"
        )
        started = time.monotonic()
        print(score(settings).render())
        score_seconds = time.monotonic() - started
    print(
        f"Steps: training run {train_seconds:.1f} s (fit, evaluate, register all models), "
        f"ceiling {ceiling_seconds:.1f} s, nightly scoring {score_seconds:.1f} s"
    )
    return verdict(report)


def build_warehouse(args: argparse.Namespace, work: Path) -> Settings:
    """One production night per dev API day, through the nightly job's own steps (extract, load,
    dbt build) in the data folder `work`; returns the recommender's settings on it."""
    for day in range(args.nights):
        process, url = start_api_process(
            users=args.users, tracks=args.tracks, listens=args.listens, seed=args.seed, day=day
        )
        try:
            config = NightConfig.for_data_dir(work, api_url=url)
            outcome = run_night(steps_through("dbt_build"), config)
        finally:
            process.terminate()
            process.wait()
        if outcome.exit_code != EXIT_SUCCESS:
            raise RecommenderError(
                f"night {day} failed ({outcome.record.failing_step}): "
                f"{outcome.record.error_message}"
            )
        seconds = {step.step: step.seconds for step in outcome.record.steps}
        print(
            f"  night {day}: extract {seconds['extract']:.1f} s, load {seconds['load']:.1f} s, "
            f"dbt build {seconds['dbt_build']:.1f} s"
        )
    return config.recommender


def ceiling(world: World, report: TrainingReport, day: int) -> Evaluation:
    """The dev API's own taste model on the holdout: its 10 likeliest unplayed tracks per user.

    The distribution depends only on the user's (genre, community) and the day, so it is
    computed once per taste rather than once per user.
    """
    data, rows = report.split, report.rows
    ranking_by_taste: dict[tuple[str, int], np.ndarray] = {}
    recommended = np.full((len(rows), K), -1, dtype=np.int64)
    for position, row in enumerate(rows):
        user_id = int(data.train.user_ids[row])
        taste = world.taste_of(user_id)
        if taste not in ranking_by_taste:
            probabilities = world.listen_probabilities(user_id, day)
            ranking_by_taste[taste] = np.array(
                sorted(probabilities, key=lambda track: -probabilities[track])
            )
        ranking = ranking_by_taste[taste]
        played = data.train.track_ids[data.train.matrix[row].indices]
        recommended[position] = ranking[~np.isin(ranking, played)][:K]
    return evaluate("ceiling (dev API's taste)", recommended, data, rows, len(report.catalogue))


def verdict(report: TrainingReport) -> int:
    """Print the champion's lift over popularity against the target; 0 if met."""
    champion = report.champion_after
    popularity = report.evaluations[0]
    if champion is None or popularity.recall_at_10 == 0:
        print("No champion or no popularity recall to compare with.")
        return 1
    lift = champion.recall_at_10 / popularity.recall_at_10
    met = champion.model_kind != "popularity" and lift >= TARGET_LIFT
    print(
        f"Champion v{champion.model_version} ({champion.model_name}): recall@10 "
        f"{champion.recall_at_10:.4f} = {lift:.2f}x popularity's {popularity.recall_at_10:.4f} "
        f"(target: a learned model at {TARGET_LIFT:g}x or more): {'met' if met else 'NOT MET'}"
    )
    return 0 if met else 1


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reco_bench", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
