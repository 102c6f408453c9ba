"""`make bench-spark`: the dbt layer on DuckDB and on Spark (local mode) over the same raw data.

For each dev API day (default 100,000 users, 10,000 tracks, two days: a first build, then an
incremental one), the nightly job extracts and loads the day into one data folder; the warehouse
file is then copied into a second folder, so both engines read the very same raw rows, and the
benchmark times side by side, in one run: DuckDB's `dbt build`, and the Spark engine's build as
the nightly job runs it (raw exported to the Parquet lake, `dbt build` on Spark, the marts read
back into DuckDB), each part on its own. It prints seconds, the Spark/DuckDB ratio and the cost
per listen (the listens of marts.fct_listens), the numbers the README's sizing table starts from.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from core.dbt import DbtRun, run_dbt
from core.engine import SPARK
from core.paths import Paths
from core.warehouse import connect
from dev_api.server import start_api_process
from extract import lake
from nightly import engine
from nightly.runner import EXIT_SUCCESS, run_night
from nightly.settings import NightConfig
from nightly.steps import steps_through

T = TypeVar("T")


def timed(action: Callable[..., T], *args: object) -> tuple[T, float]:
    """`action(*args)` and its wall time in seconds."""
    started = time.perf_counter()
    result = action(*args)
    return result, time.perf_counter() - started


def spark_build(paths: Paths) -> dict[str, float]:
    """The Spark engine's build as nightly/engine.py runs it, each part timed."""
    os.environ["MOOVITAMIX_ENGINE"] = SPARK
    try:
        _, export = timed(lake.export_raw, paths)
        build, seconds = timed(run_dbt, paths, "build")
        check(build, "spark")
        _, back = timed(engine.import_marts, paths, engine.built_models(build))
        views, view_seconds = timed(
            run_dbt, paths, "build", "--target", engine.DUCKDB_TARGET, "-s", engine.DUCKDB_MODELS
        )
        check(views, "duckdb views")
        lake.commit(paths)
    finally:
        del os.environ["MOOVITAMIX_ENGINE"]
    return {"export": export, "dbt": seconds, "import": back, "views": view_seconds}


def check(build: DbtRun, engine_name: str) -> None:
    if build.returncode != 0 or build.failed():
        failed = ", ".join(node.name for node in build.failed())
        raise SystemExit(f"dbt build on {engine_name} failed (exit {build.returncode}): {failed}")


def run(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="bench-spark-"))
    duck_paths, spark_paths = Paths.under(work / "duckdb"), Paths.under(work / "spark")
    print(
        f"dbt layer, DuckDB vs Spark local[*] on {os.cpu_count()} cores: {args.users:,} users, "
        f"{args.tracks:,} tracks, {args.nights} night(s), data in {work}"
    )
    rows = []
    try:
        for day in range(args.nights):
            process, url = start_api_process(
                users=args.users, tracks=args.tracks, seed=args.seed, day=day
            )
            try:
                config = NightConfig.for_data_dir(duck_paths.data_dir, api_url=url)
                outcome = run_night(steps_through("load"), config)
            finally:
                process.terminate()
                process.wait()
            if outcome.exit_code != EXIT_SUCCESS:
                raise SystemExit(f"night {day}: {outcome.record.error_message}")
            spark_paths.prepare()
            shutil.copyfile(duck_paths.warehouse, spark_paths.warehouse)
            duck, duck_seconds = timed(run_dbt, duck_paths, "build")
            check(duck, "duckdb")
            spark = spark_build(spark_paths)
            with connect(duck_paths.warehouse, read_only=True) as connection:
                listens = connection.execute("select count(*) from marts.fct_listens").fetchone()[0]
            spark_total = sum(spark.values())
            rows.append((day, listens, duck_seconds, spark, spark_total))
            print(
                f"  night {day}: {listens:,} listens; DuckDB dbt build {duck_seconds:.1f} s; "
                f"Spark {spark_total:.1f} s (lake export {spark['export']:.1f}, dbt build "
                f"{spark['dbt']:.1f}, marts back to DuckDB {spark['import']:.1f}, "
                f"fct_recommendations on DuckDB {spark['views']:.1f}); "
                f"Spark/DuckDB {spark_total / duck_seconds:.1f}x"
            )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print("\nPer listen (the dbt layer's cost follows the listens):")
    for day, listens, duck_seconds, spark, spark_total in rows:
        print(
            f"  night {day}: DuckDB {duck_seconds / listens * 1e6:.2f} us, Spark dbt build "
            f"{spark['dbt'] / listens * 1e6:.2f} us, Spark night total "
            f"{spark_total / listens * 1e6:.2f} us"
        )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.spark_bench", description=__doc__)
    parser.add_argument("--users", type=int, default=100_000, help="default: %(default)s")
    parser.add_argument("--tracks", type=int, default=10_000, help="default: %(default)s")
    parser.add_argument("--nights", type=int, default=2, help="default: %(default)s")
    parser.add_argument("--seed", type=int, default=42, help="default: %(default)s")
    parser.add_argument("--keep", action="store_true", help="keep the data folders")
    return run(parser.parse_args())


if __name__ == "__main__":
    raise SystemExit(main())
