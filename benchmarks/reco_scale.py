"""`make bench-reco-scale`: the recommender at 1,000,000 users and 100,000 tracks, beside its floor.

Synthetic listens of a realistic shape (users x tracks, about 20 listens per user drawn from a
Zipf popularity over the tracks, favourite genres and track genres) are written as the marts the
recommender reads (`marts.fct_user_tracks`, `dim_users`, `dim_tracks`) into a DuckDB file with
the ml tables dbt's macro defines. Measured, in one run:
- training: the fit of each model and its evaluation on `eval_users` users (as a run does);
- the ALS fold-in alone (every user), and fold-in + top-k (scoring without the write);
- nightly scoring end to end in its own process (read the marts, score every user, write
  ml.recommendations in one transaction): wall time and peak memory (the child's ru_maxrss);
- the floor: the same top-k from the same user factors as one dense NumPy product per batch
  (BLAS on every core), then `np.argpartition` per batch; the selection is measured on a sample
  of `--floor-users` users and scaled linearly (it is per user), the product on every user.
Prints a Markdown table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
from threadpoolctl import threadpool_limits

from recommender.data import Interactions
from recommender.models import (
    BATCH_USERS,
    MODEL_KINDS,
    Als,
    Model,
    _gram,
    fold_in,
    load,
    recommend,
    recommend_batches,
)
from recommender.progress import Progress
from recommender.scoring import recommendation_batches
from recommender.settings import DEFAULT_CANDIDATES, Settings
from recommender.warehouse import replace_recommendations

REPO_ROOT = Path(__file__).resolve().parents[1]
MACRO = REPO_ROOT / "dbt_project/macros/ml/create_ml_tables.sql"
GENRES = ("Rock", "Pop", "Hip Hop", "Jazz", "Electronic", "Classical", "Country", "Folk")
K = 20
FLOOR_BATCH = 1000  # users per dense product in the floor: 1,000 x 100,000 floats = 400 MB
TARGET_RATIO, TARGET_PEAK_MB = 2.0, 2048


def synthetic_listens(users: int, tracks: int, listens: int, seed: int) -> Interactions:
    """About `listens` listens per user, tracks drawn from a Zipf(1.1) popularity (repeats add)."""
    rng = np.random.default_rng(seed)
    per_user = np.maximum(rng.poisson(listens, users), 1)
    popularity = 1.0 / np.arange(1, tracks + 1) ** 1.1
    track_of_rank = rng.permutation(tracks) + 1
    ranks = np.searchsorted(
        np.cumsum(popularity / popularity.sum()), rng.random(per_user.sum()), side="right"
    ).clip(max=tracks - 1)
    user_ids = np.repeat(np.arange(1, users + 1, dtype=np.int64), per_user)
    return Interactions.from_pairs(
        user_ids, track_of_rank[ranks].astype(np.int64), np.ones(len(user_ids), dtype=np.float32)
    )


def write_marts(database: Path, listens: Interactions, tracks: int, seed: int) -> None:
    """The marts scoring reads, and the ml tables as dbt's create_ml_tables macro makes them."""
    rng = np.random.default_rng(seed + 1)
    entries = listens.matrix.tocoo()
    ddl = re.search(r"-%}(.*){%-", MACRO.read_text(), re.DOTALL)
    assert ddl is not None, f"{MACRO}: no macro body"
    with duckdb.connect(str(database)) as connection:
        connection.execute("create schema marts")
        user_tracks = pa.table(
            {
                "user_id": listens.user_ids[entries.row],
                "track_id": listens.track_ids[entries.col],
                "listen_count": entries.data.astype(np.int64),
            }
        )
        users = pa.table(
            {
                "user_id": listens.user_ids,
                "favorite_genre": np.array(GENRES)[
                    rng.integers(0, len(GENRES), len(listens.user_ids))
                ],
            }
        )
        catalogue = pa.table(
            {
                "track_id": np.arange(1, tracks + 1, dtype=np.int64),
                "genres": pa.array([[GENRES[g]] for g in rng.integers(0, len(GENRES), tracks)]),
            }
        )
        for name, table in (
            ("fct_user_tracks", user_tracks),
            ("dim_users", users),
            ("dim_tracks", catalogue),
        ):
            connection.register("source", table)
            connection.execute(f"create table marts.{name} as select * from source")
            connection.unregister("source")
        connection.execute(ddl.group(1))


def timed(function, *args, **kwargs):
    started = time.monotonic()
    result = function(*args, **kwargs)
    return result, time.monotonic() - started


def fit_model(kind: str, params: dict, listens: Interactions) -> tuple[Model, float]:
    model = MODEL_KINDS[kind](params)
    _, seconds = timed(model.fit, listens)
    return model, seconds


def fold_in_all(model: Als, listens: Interactions) -> np.ndarray:
    """Every user's factors, batch by batch, as scoring computes them."""
    user_items = listens.on_tracks(model.track_ids)
    weighted = model._weighted(user_items)
    item_factors = model.model.item_factors
    gram = _gram(item_factors, model.model.regularization)
    factors = np.empty((user_items.shape[0], item_factors.shape[1]), dtype=item_factors.dtype)
    with threadpool_limits(1, "blas"):
        for start in range(0, len(factors), BATCH_USERS):
            rows = slice(start, start + BATCH_USERS)
            factors[rows] = fold_in(item_factors, gram, weighted[rows])
    return factors


def score_all(model: Model, listens: Interactions) -> int:
    rows = np.arange(len(listens.user_ids))
    return sum(
        len(batch) for batch, _ in recommend_batches(model, listens, rows, K, listens.track_ids)
    )


def floor_product(user_factors: np.ndarray, item_factors: np.ndarray) -> float:
    """Seconds of the dense products alone, every user, BLAS on every core."""
    started = time.monotonic()
    with threadpool_limits(os.cpu_count() or 1, "blas"):
        for start in range(0, len(user_factors), FLOOR_BATCH):
            user_factors[start : start + FLOOR_BATCH] @ item_factors.T
    return time.monotonic() - started


def floor_top_k(user_factors: np.ndarray, item_factors: np.ndarray) -> float:
    """Seconds of product + np.argpartition top k (then sorted) for the given users."""
    started = time.monotonic()
    with threadpool_limits(os.cpu_count() or 1, "blas"):
        for start in range(0, len(user_factors), FLOOR_BATCH):
            scores = user_factors[start : start + FLOOR_BATCH] @ item_factors.T
            best = np.argpartition(scores, -K, axis=1)[:, -K:]
            order = np.argsort(-np.take_along_axis(scores, best, axis=1), axis=1)
            np.take_along_axis(best, order, axis=1)
    return time.monotonic() - started


def score_child(database: Path, artifact: Path) -> None:
    """Nightly scoring's work, in this process: read the marts, score, write ml."""
    logging.basicConfig(level=logging.INFO, format="    %(message)s", stream=sys.stderr)
    settings = Settings(duckdb_path=database, models_dir=artifact.parent, top_k=K)
    started = time.monotonic()
    model = load(artifact)
    batches = recommendation_batches(model, 1, settings, Progress())
    replace_recommendations(database, batches)
    with duckdb.connect(str(database), read_only=True) as connection:
        [(rows,)] = connection.execute("select count(*) from ml.recommendations").fetchall()
    print(json.dumps({"rows": rows, "seconds": time.monotonic() - started}))


def score_in_child(database: Path, artifact: Path) -> tuple[int, float, float]:
    """(rows written, seconds, peak MB) of scoring in a process of its own."""
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "benchmarks.reco_scale",
            "--score-child",
            str(database),
            str(artifact),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    output = child.stdout.read() if child.stdout else ""
    _, status, usage = os.wait4(child.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit("scoring in the child process failed")
    result = json.loads(output.splitlines()[-1])
    return result["rows"], result["seconds"], usage.ru_maxrss / 1024


def run(args: argparse.Namespace, work: Path) -> dict:
    print(
        f"Recommender at scale: {args.users:,} users, {args.tracks:,} tracks, about "
        f"{args.listens} listens per user (synthetic, Zipf 1.1), seed {args.seed}"
    )
    listens, seconds = timed(synthetic_listens, args.users, args.tracks, args.listens, args.seed)
    print(f"  listens: {listens.matrix.nnz:,} (user, track) pairs in {seconds:.1f} s")
    database = work / "scale.duckdb"
    _, seconds = timed(write_marts, database, listens, args.tracks, args.seed)
    print(f"  marts written in {seconds:.1f} s")
    sample = np.sort(
        np.random.default_rng(args.seed).choice(
            len(listens.user_ids), size=min(args.eval_users, len(listens.user_ids)), replace=False
        )
    )
    steps: dict[str, float] = {}
    models = {
        "popularity": ("popularity", {}),
        "co_listen (200 neighbours, tilted)": (
            "co_listen",
            {"neighbours": 200, "popularity_exponent": 0.2},
        ),
        "als (48 factors, 3 iterations)": (
            "als",
            {k: v for k, v in DEFAULT_CANDIDATES["als"].items() if k != "kind"},
        ),
    }
    fitted: dict[str, Model] = {}
    for name, (kind, params) in models.items():
        fitted[name], steps[f"fit {name}"] = fit_model(kind, params, listens)
        print(f"  fit {name}: {steps[f'fit {name}']:.1f} s", flush=True)
        _, steps[f"evaluate {name} ({len(sample):,} users)"] = timed(
            recommend, fitted[name], listens, sample, 10, listens.track_ids
        )
    als = fitted["als (48 factors, 3 iterations)"]
    assert isinstance(als, Als)
    artifact = work / "als"
    als.save(artifact)

    user_factors, fold_seconds = timed(fold_in_all, als, listens)
    print(f"  fold-in: {fold_seconds:.1f} s", flush=True)
    _, score_seconds = timed(score_all, als, listens)
    print(f"  fold-in + top-k: {score_seconds:.1f} s", flush=True)
    rows, child_seconds, peak_mb = score_in_child(database, artifact)
    print(f"  scoring end to end: {child_seconds:.1f} s, {rows:,} rows, {peak_mb:,.0f} MB peak")

    item_factors = als.model.item_factors
    product_seconds = floor_product(user_factors, item_factors)
    floor_users = min(args.floor_users, len(user_factors))
    sample_seconds = floor_top_k(user_factors[:floor_users], item_factors)
    floor_seconds = sample_seconds * len(user_factors) / floor_users
    print(f"  floor: products {product_seconds:.1f} s, with top-k {floor_seconds:.1f} s")

    users = len(listens.user_ids)
    table = [
        ("fold-in (every user)", fold_seconds, None),
        ("fold-in + top-k (scoring without the write)", score_seconds, None),
        ("scoring end to end: read, score, write DuckDB", child_seconds, peak_mb),
        ("floor: dense products alone (BLAS, all cores)", product_seconds, None),
        (f"floor: products + np.argpartition (x{users / floor_users:g} of {floor_users:,})",
         floor_seconds, None),
    ]  # fmt: skip
    print(
        f"\n| {users:,} users x {args.tracks:,} tracks, top {K} | seconds | users/s "
        "| peak memory | x products | x floor |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for name, seconds, peak in table:
        print(
            f"| {name} | {seconds:.1f} | {users / seconds:,.0f} | "
            f"{f'{peak:,.0f} MB' if peak else ''} | {seconds / product_seconds:.2f} "
            f"| {seconds / floor_seconds:.2f} |"
        )
    print("\n| training step | seconds |\n| --- | --- |")
    for name, seconds in steps.items():
        print(f"| {name} | {seconds:.1f} |")
    ratio = child_seconds / floor_seconds
    met = ratio <= TARGET_RATIO and peak_mb <= TARGET_PEAK_MB
    print(
        f"\nScoring end to end: {ratio:.2f}x the floor (target <= {TARGET_RATIO:g}x), "
        f"{child_seconds / product_seconds:.2f}x the products alone, peak {peak_mb:,.0f} MB "
        f"(target <= {TARGET_PEAK_MB:,} MB): {'met' if met else 'NOT MET'}"
    )
    return {
        "users": users,
        "tracks": args.tracks,
        "pairs": int(listens.matrix.nnz),
        "rows_written": rows,
        "fold_in_seconds": fold_seconds,
        "fold_in_top_k_seconds": score_seconds,
        "scoring_seconds": child_seconds,
        "scoring_peak_mb": peak_mb,
        "floor_products_seconds": product_seconds,
        "floor_seconds": floor_seconds,
        "floor_users_measured": floor_users,
        "training_steps_seconds": steps,
        "target_met": met,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--tracks", type=int, default=100_000)
    parser.add_argument("--listens", type=int, default=20)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--eval-users", type=int, default=Settings().eval_users)
    parser.add_argument("--floor-users", type=int, default=50_000)
    parser.add_argument("--json", type=Path, default=Path("data/bench-reco-scale.json"))
    parser.add_argument("--score-child", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.score_child:
        score_child(*args.score_child)
        return 0
    with tempfile.TemporaryDirectory(prefix="moovitamix-reco-scale-") as tmp:
        result = run(args, Path(tmp))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(f"JSON: {args.json}")
    return 0 if result["target_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
