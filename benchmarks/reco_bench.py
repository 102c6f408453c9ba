"""`make bench-reco`: every model on the dev API's data, beside the dev API's own taste.

Builds a temporary warehouse the way production does, night after night (dev API day d ->
extractor -> dbt build), so the listen events span several nights and the split is a time split;
then trains and gates the candidates, scores every user, and measures the ceiling: the dev API's
true next-listen distribution (`World.listen_probabilities`) ranked on the same holdout. It also
measures the cold start: what a new user (signed up during the holdout nights, so with no
training listens) is shown, against their held-out tracks, beside the ceiling for those users.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from dev_api.server import start_api_process
from dev_api.world import World
from nightly.runner import EXIT_SUCCESS, run_night
from nightly.settings import NightConfig
from nightly.steps import steps_through
from recommender import RecommenderError
from recommender.data import Split
from recommender.evaluation import Evaluation, K, evaluate
from recommender.scoring import champion_model, cold_start, score
from recommender.settings import Settings
from recommender.training import TrainingReport, train
from recommender.warehouse import read_catalogue, read_users

TARGET_CEILING_SHARE = 0.9  # the champion's recall@10 over the ceiling's, at least


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--users", type=int, default=100_000, help="default: %(default)s")
    parser.add_argument("--tracks", type=int, default=10_000, help="default: %(default)s")
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
        day = args.nights - 1
        data, catalogue_size = report.split, len(report.catalogue)
        ceiling_evaluation = evaluate(
            "ceiling (dev API's taste)", ceiling(world, data, report.rows, day), data,
            report.rows, catalogue_size,
        )  # fmt: skip
        new_users = data.new_user_rows()
        cold = cold_start_evaluation(settings, report, new_users)
        new_ceiling = evaluate(
            "ceiling for new users", ceiling(world, data, new_users, day), data, new_users,
            catalogue_size,
        )  # fmt: skip
        ceiling_seconds = time.monotonic() - started
        for evaluation in (ceiling_evaluation, cold, new_ceiling):
            print(
                f"  {evaluation.name:<34} {evaluation.recall_at_10:>9.4f} "
                f"{evaluation.ndcg_at_10:>8.4f} {evaluation.catalogue_coverage:>8.1%}"
            )
        print(f"  new users (no training listens, held-out tracks): {len(new_users):,}")
        started = time.monotonic()
        print(score(settings).render())
        score_seconds = time.monotonic() - started
    print(
        f"Steps: training run {train_seconds:.1f} s (tune, fit, evaluate, register all models), "
        f"ceiling and cold start {ceiling_seconds:.1f} s, nightly scoring {score_seconds:.1f} s"
    )
    return verdict(report, ceiling_evaluation)


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


def ceiling(world: World, data: Split, rows: np.ndarray, day: int) -> np.ndarray:
    """The dev API's own taste model: its 10 likeliest unplayed tracks for each user at `rows`.

    The distribution depends only on the user's (genre, community) and the day, so it is
    computed once per taste rather than once per user.
    """
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
    return recommended


def cold_start_evaluation(
    settings: Settings, report: TrainingReport, rows: np.ndarray
) -> Evaluation:
    """What the champion shows the users at `rows`, who have no training listens: the cold
    start (its popularity in their favourite genre), measured on their held-out tracks."""
    version = report.champion_after
    assert version is not None, "a training run always leaves a champion"
    model = champion_model(version)
    genres = read_users(settings.duckdb_path)
    users = report.split.train.user_ids[rows]
    tracks, _ = cold_start(
        model,
        [genres.get(int(user)) for user in users],
        read_catalogue(settings.duckdb_path),
        K,
        sp.csr_matrix((len(rows), len(model.track_ids)), dtype=np.float32),
    )
    return evaluate(
        f"cold start for new users ({version.model_name})",
        tracks,
        report.split,
        rows,
        len(report.catalogue),
    )


def verdict(report: TrainingReport, ceiling_evaluation: Evaluation) -> int:
    """Print the champion against the best baseline and the ceiling; 0 if both targets are met."""
    champion = report.champion_after
    if champion is None or ceiling_evaluation.recall_at_10 == 0:
        print("No champion or no ceiling to compare with.")
        return 1
    best_baseline = max(
        (
            (name, metrics["recall_at_10"])
            for name, metrics in champion.baseline_metrics.items()
            if name in ("popularity", "co_listen")
        ),
        key=lambda pair: pair[1],
    )
    share = champion.recall_at_10 / ceiling_evaluation.recall_at_10
    met = champion.recall_at_10 >= best_baseline[1] and share >= TARGET_CEILING_SHARE
    print(
        f"Champion v{champion.model_version} ({champion.model_name}): recall@10 "
        f"{champion.recall_at_10:.4f}, best baseline {best_baseline[0]} {best_baseline[1]:.4f}, "
        f"{share:.1%} of the ceiling's {ceiling_evaluation.recall_at_10:.4f} (target: at least "
        f"the best baseline and {TARGET_CEILING_SHARE:.0%} of the ceiling): "
        f"{'met' if met else 'NOT MET'}"
    )
    return 0 if met else 1


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reco_bench", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
