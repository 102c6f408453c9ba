"""`make bench-reco-scale`: the recommender at 1,000,000 users and 100,000 tracks, beside its floor.

Synthetic listens of a realistic shape (users x tracks, about 20 listens per user drawn from a
Zipf popularity over the tracks, favourite genres and track genres) are written as the marts the
recommender reads (`marts.fct_listen_events`, `fct_user_tracks`, `dim_users`, `dim_tracks`) into
a DuckDB file with the ml tables dbt's macro defines. Measured, in one run, each recommender step
in a process of its own (wall time and peak memory, the child's own VmHWM):
- training: a whole training run (`recommender.training.train`: read, split, tune, fit every
  contender, evaluate each on `eval_users` users, register, gate); then ALS, the costliest model
  to score, is made champion whatever the gate said;
- first night: scoring everyone (no previous scoring) with that champion;
- typical night: the marts edited at the dev API's daily rates (`dev_api.world`: a user's
  history grows with chance LISTEN_DAY_RATE, SIGNUP_RATE new users, DELETE_RATE deletions),
  then scoring, which re-scores the changed users only;
- quiet night: scoring again with nothing changed;
- the ALS fold-in alone (every user), in this process;
- the floor: the same top-k from the same user factors as one dense NumPy product per batch
  (BLAS on every core), then `np.argpartition` per batch, measured on `--floor-users` users and
  scaled linearly (it is per user).
Prints Markdown tables and writes JSON.
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

from dev_api.world import DELETE_RATE, LISTEN_DAY_RATE, SIGNUP_RATE
from recommender.data import Interactions
from recommender.models import BATCH_USERS, Als, _gram, fold_in, load
from recommender.scoring import score
from recommender.settings import Settings
from recommender.training import train
from recommender.warehouse import champion, model_versions, set_statuses

REPO_ROOT = Path(__file__).resolve().parents[1]
MACRO = REPO_ROOT / "dbt_project/macros/ml/create_ml_tables.sql"
GENRES = ("Rock", "Pop", "Hip Hop", "Jazz", "Electronic", "Classical", "Country", "Folk")
K = 20
FLOOR_BATCH = 1000  # users per dense product in the floor: 1,000 x 100,000 floats = 400 MB
TARGET_PEAK_MB = 2048
TODAY_TYPICAL_SECONDS = 528.0  # issue 16: a typical night's scoring at 1,000,000 users today
EXTRACT_FIRST_NIGHT_SECONDS = 243.0  # issue 16: the first night's extraction, same size


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
    """The marts the recommender reads, and the ml tables as dbt's create_ml_tables macro makes
    them on DuckDB. The listen events of a pair are spread over two loads, so training splits in
    time."""
    rng = np.random.default_rng(seed + 1)
    entries = listens.matrix.tocoo()
    # the DuckDB implementation: create_ml_tables dispatches on the engine since Spark came
    ddl = re.search(r"duckdb__create_ml_tables\(\) -%}(.*?){%-", MACRO.read_text(), re.DOTALL)
    assert ddl is not None, f"{MACRO}: no duckdb__create_ml_tables body"
    counts = entries.data.astype(np.int64)
    loads = np.datetime64("2026-01-01T02:00", "us") + np.array(
        [0, 86_400_000_000], dtype="timedelta64[us]"
    )
    tables = {
        "fct_user_tracks": pa.table(
            {
                "user_id": listens.user_ids[entries.row],
                "track_id": listens.track_ids[entries.col],
                "listen_count": counts,
            }
        ),
        "fct_listen_events": pa.table(
            {
                "user_id": np.repeat(listens.user_ids[entries.row], counts),
                "track_id": np.repeat(listens.track_ids[entries.col], counts),
                "first_seen_at": loads[rng.integers(0, 2, int(counts.sum()))],
            }
        ),
        "dim_users": pa.table(
            {
                "user_id": listens.user_ids,
                "favorite_genre": np.array(GENRES)[
                    rng.integers(0, len(GENRES), len(listens.user_ids))
                ],
            }
        ),
        "dim_tracks": pa.table(
            {
                "track_id": np.arange(1, tracks + 1, dtype=np.int64),
                "genres": pa.array([[GENRES[g]] for g in rng.integers(0, len(GENRES), tracks)]),
            }
        ),
    }
    with duckdb.connect(str(database)) as connection:
        connection.execute("create schema marts")
        for name, table in tables.items():
            connection.register("source", table)
            connection.execute(f"create table marts.{name} as select * from source")
            connection.unregister("source")
        connection.execute(ddl.group(1))


def typical_night(database: Path, tracks: int, seed: int) -> dict[str, int]:
    """Tonight's marts after a day at the dev API's rates: a seeded LISTEN_DAY_RATE of the users
    gain a listen of a track they had not played, SIGNUP_RATE of them sign up (a listen each),
    DELETE_RATE are deleted. The users that changed, by kind."""
    with duckdb.connect(str(database)) as connection:
        connection.execute("select setseed(?)", [((seed % 1000) / 1000.0)])
        connection.execute(
            "create temp table grown as select user_id, "
            f"(hash(user_id, {seed}) % {tracks})::bigint + 1 as track_id from marts.dim_users "
            f"where random() < {LISTEN_DAY_RATE}"
        )
        connection.execute(
            "insert into marts.fct_user_tracks (user_id, track_id, listen_count) "
            "select user_id, track_id, 1 from grown anti join marts.fct_user_tracks "
            "using (user_id, track_id)"
        )
        [(grown,)] = connection.execute("select count(*) from grown").fetchall()
        connection.execute(
            "create temp table signed_up as select max_id + i as user_id from "
            "(select max(user_id) as max_id, count(*) as users from marts.dim_users), "
            f"range(1, (users * {SIGNUP_RATE})::bigint + 1) as r(i)"
        )
        connection.execute(
            "insert into marts.dim_users select user_id, 'Rock' from signed_up; "
            "insert into marts.fct_user_tracks select user_id, 1, 1 from signed_up"
        )
        [(signed_up,)] = connection.execute("select count(*) from signed_up").fetchall()
        connection.execute(
            "create temp table deleted as select user_id from marts.dim_users "
            f"where random() < {DELETE_RATE} and user_id not in (select user_id from grown)"
        )
        for table in ("dim_users", "fct_user_tracks"):
            connection.execute(
                f"delete from marts.{table} where user_id in (select user_id from deleted)"
            )
        [(deleted,)] = connection.execute("select count(*) from deleted").fetchall()
    return {"listens grew": grown, "signed up": signed_up, "deleted": deleted}


def timed(function, *args, **kwargs):
    started = time.monotonic()
    result = function(*args, **kwargs)
    return result, time.monotonic() - started


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


def floor_product(user_factors: np.ndarray, item_factors: np.ndarray) -> float:
    """Seconds of the dense products alone for the given users, BLAS on every core."""
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


def child(step: str, database: Path, models_dir: Path, eval_users: int) -> None:
    """One recommender step in this process (`train` or `score`); prints its outcome as JSON."""
    logging.basicConfig(level=logging.INFO, format="    %(message)s", stream=sys.stderr)
    settings = Settings(duckdb_path=database, models_dir=models_dir, top_k=K, eval_users=eval_users)
    started = time.monotonic()
    if step == "train":
        report = train(settings)
        print(report.render(), file=sys.stderr)
        outcome = {e.name: e.train_seconds for e in report.evaluations}
    else:
        scoring = score(settings)
        print(scoring.render(), file=sys.stderr)
        outcome = {
            "users_rescored": scoring.users_rescored,
            "users_kept": scoring.users_kept,
            "users_removed": scoring.users_removed,
            "rows_written": scoring.rows_written,
        }
    # this process's own peak: after a fork and exec, ru_maxrss still counts the parent's RSS at
    # the fork, VmHWM only this program's memory
    status = Path("/proc/self/status").read_text()
    peak_kb = int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1))  # type: ignore[union-attr]
    print(json.dumps({"seconds": time.monotonic() - started, "peak_mb": peak_kb / 1024, **outcome}))


def in_child(step: str, database: Path, models_dir: Path, eval_users: int) -> dict:
    """The child's JSON (with its peak memory, MB), and the load average."""
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.reco_scale", "--child", step, str(database),
         str(models_dir), str(eval_users)],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    output = process.stdout.read() if process.stdout else ""
    if process.wait() != 0:
        raise SystemExit(f"{step} in the child process failed")
    return {**json.loads(output.splitlines()[-1]), "load_average": os.getloadavg()[0]}


def make_als_champion(database: Path) -> int:
    """ALS, the costliest model to score, becomes champion whatever the gate said."""
    current = champion(database)
    assert current is not None
    [*_, als] = [v for v in model_versions(database) if v.model_kind == "als"]
    if als.model_version != current.model_version:
        set_statuses(
            database,
            {
                current.model_version: ("retired", "benchmark: ALS scores"),
                als.model_version: ("champion", "benchmark: the costliest model to score"),
            },
        )
    return als.model_version


def run(args: argparse.Namespace, work: Path) -> dict:
    print(
        f"Recommender at scale: {args.users:,} users, {args.tracks:,} tracks, about "
        f"{args.listens} listens per user (synthetic, Zipf 1.1), seed {args.seed}; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    listens, seconds = timed(synthetic_listens, args.users, args.tracks, args.listens, args.seed)
    print(f"  listens: {listens.matrix.nnz:,} (user, track) pairs in {seconds:.1f} s")
    database, models_dir = work / "scale.duckdb", work / "models"
    _, seconds = timed(write_marts, database, listens, args.tracks, args.seed)
    print(f"  marts written in {seconds:.1f} s", flush=True)

    steps: dict[str, dict] = {}
    steps["training"] = in_child("train", database, models_dir, args.eval_users)
    print(f"  training: {steps['training']['seconds']:.1f} s", flush=True)
    als_version = make_als_champion(database)
    steps["first night"] = in_child("score", database, models_dir, args.eval_users)
    print(f"  first night's scoring: {steps['first night']['seconds']:.1f} s", flush=True)
    changes = typical_night(database, args.tracks, args.seed)
    steps["typical night"] = in_child("score", database, models_dir, args.eval_users)
    print(f"  typical night's scoring: {steps['typical night']['seconds']:.1f} s", flush=True)
    steps["quiet night"] = in_child("score", database, models_dir, args.eval_users)
    print(f"  quiet night's scoring: {steps['quiet night']['seconds']:.1f} s", flush=True)

    als = load(models_dir / str(als_version))
    assert isinstance(als, Als)
    user_factors, fold_seconds = timed(fold_in_all, als, listens)
    item_factors = als.model.item_factors
    floor_users = min(args.floor_users, len(user_factors))
    users = len(listens.user_ids)
    scale = users / floor_users
    product_seconds = floor_product(user_factors[:floor_users], item_factors) * scale
    floor_seconds = floor_top_k(user_factors[:floor_users], item_factors) * scale
    print(f"  fold-in {fold_seconds:.1f} s; floor: products {product_seconds:.1f} s, with top-k "
          f"{floor_seconds:.1f} s (x{scale:g} of {floor_users:,} users)")  # fmt: skip

    first, typical, quiet = steps["first night"], steps["typical night"], steps["quiet night"]
    rows = [
        ("training run (fit, evaluate, gate)", steps["training"], None),
        ("first night: score everyone (ALS)", first, floor_seconds),
        (f"typical night: re-score the changed ({typical['users_rescored']:,})", typical,
         floor_seconds * typical["users_rescored"] / users),
        ("quiet night: nothing changed", quiet, None),
    ]  # fmt: skip
    print(
        f"\n| {users:,} users x {args.tracks:,} tracks, top {K} | seconds | users re-scored "
        "| peak memory | load average | x floor (same users) |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for name, step, floor in rows:
        ratio = f"{step['seconds'] / floor:.2f}" if floor else ""
        print(
            f"| {name} | {step['seconds']:.1f} | {step.get('users_rescored', '')} "
            f"| {step['peak_mb']:,.0f} MB | {step['load_average']:.1f} "
            f"| {ratio} |"
        )
    print(f"| fold-in alone (every user) | {fold_seconds:.1f} | {users:,} | | | |")
    print(f"| floor: dense products (BLAS, all cores) | {product_seconds:.1f} | {users:,} | | | |")
    print(f"| floor: products + np.argpartition | {floor_seconds:.1f} | {users:,} | | | |")
    print("\n| training: model | fit seconds |\n| --- | --- |")
    for name, seconds in steps["training"].items():
        if name not in ("seconds", "peak_mb", "load_average"):
            print(f"| {name} | {seconds:.1f} |")
    scoring_peak = max(step["peak_mb"] for step in (first, typical, quiet))
    first_night = steps["training"]["seconds"] + first["seconds"]
    print(
        f"\nTonight's changes: {changes}. Scoring peak memory {scoring_peak:,.0f} MB (target <= "
        f"{TARGET_PEAK_MB:,}); typical night {typical['seconds']:.1f} s (target < "
        f"{TODAY_TYPICAL_SECONDS / 10:.1f} s); first night (training + scoring everyone) "
        f"{first_night:.1f} s (target < extraction, {EXTRACT_FIRST_NIGHT_SECONDS:.0f} s measured "
        f"in issue 16); quiet night re-scored {quiet['users_rescored']} users"
    )
    met = (
        scoring_peak <= TARGET_PEAK_MB
        and typical["seconds"] < TODAY_TYPICAL_SECONDS / 10
        and first_night < EXTRACT_FIRST_NIGHT_SECONDS
        and quiet["users_rescored"] == 0
    )
    return {
        "users": users,
        "tracks": args.tracks,
        "pairs": int(listens.matrix.nnz),
        "changes": changes,
        "steps": steps,
        "fold_in_seconds": fold_seconds,
        "floor_products_seconds": product_seconds,
        "floor_seconds": floor_seconds,
        "floor_users_measured": floor_users,
        "scoring_peak_mb": scoring_peak,
        "target_met": met,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--tracks", type=int, default=100_000)
    parser.add_argument("--listens", type=int, default=20)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--eval-users", type=int, default=Settings(Path(), Path()).eval_users)
    parser.add_argument("--floor-users", type=int, default=50_000)
    parser.add_argument("--json", type=Path, default=Path("data/bench-reco-scale.json"))
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        step, database, models_dir, eval_users = args.child
        child(step, Path(database), Path(models_dir), int(eval_users))
        return 0
    with tempfile.TemporaryDirectory(prefix="moovitamix-reco-scale-") as tmp:
        result = run(args, Path(tmp))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(f"JSON: {args.json}")
    return 0 if result["target_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
